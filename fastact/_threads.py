"""Threads of the compiled kernels.

A build without OpenMP runs on one thread whatever is asked. By default a large call uses OpenMP's thread count (``omp_get_max_threads``), which
follows OMP_NUM_THREADS and ``threadpoolctl.threadpool_limits``; FASTACT_NUM_THREADS,
``set_num_threads`` and ``threads`` override it. Small arrays always run on one thread.
"""
import contextlib
import numbers
import os
import warnings

from . import _backend


def _check(n):
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"number of threads must be a positive integer, got {n!r}")
    return int(n)


def get_num_threads():
    """Threads a large call uses now."""
    runner = _backend._runner
    return 1 if runner is None else runner.get_num_threads()


def set_num_threads(n):
    """Use n threads for large calls from now on (all Python threads share the setting)."""
    n = _check(n)
    if _backend._runner is not None:
        _backend._runner.set_num_threads(n)


@contextlib.contextmanager
def threads(n):
    """``with fastact.threads(n):`` runs the block's calls on n threads."""
    n = _check(n)
    runner = _backend._runner
    if runner is None:
        yield
        return
    previous = runner.get_thread_setting()
    runner.set_num_threads(n)
    try:
        yield
    finally:
        runner.set_num_threads(previous)


def _init():
    runner = _backend._runner
    if runner is None:
        return
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=runner.after_fork_in_child)
    value = os.environ.get("FASTACT_NUM_THREADS", "").strip()
    if value:
        try:
            set_num_threads(int(value))
        except ValueError:
            warnings.warn(f"ignoring FASTACT_NUM_THREADS={value!r}: not a positive integer",
                          RuntimeWarning, stacklevel=3)


_init()
