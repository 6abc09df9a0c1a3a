"""Threads of the compiled kernels.

A build without OpenMP runs on one thread whatever is asked. Large calls run on
fastact's own thread pool (fastact/_src/fa_pool.h); a forked child starts a new one on
its first large call. By default a large call uses OpenMP's thread count (``omp_get_max_threads``), which
follows OMP_NUM_THREADS and ``threadpoolctl.threadpool_limits``; FASTACT_NUM_THREADS,
``set_num_threads`` and ``threads`` override it. Small arrays always run on one thread.
"""
import contextlib
import numbers
import os
import threading

from . import _backend


_MAX = 2**31 - 1                        # the runner's C int


class ThreadCountTypeError(TypeError, ValueError):
    """A thread count that is not an integer: a TypeError, as NumPy and PyTorch raise for
    a wrong type, and a ValueError, as fastact raised before."""


def _check(n):
    what = f"number of threads must be a positive integer up to {_MAX}, got {n!r}"
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise ThreadCountTypeError(what)
    if not 1 <= n <= _MAX:
        raise ValueError(what)
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


# The `threads` blocks in effect, innermost last (any Python thread may add one), and
# the setting from before the first of them: the setting is process-wide, so a block
# that ends restores the innermost block still open, or that first setting.
_lock = threading.Lock()
_blocks = []
_outside = None


@contextlib.contextmanager
def threads(n):
    """``with fastact.threads(n):`` runs the block's calls on n threads. The setting is
    process-wide: blocks open in several Python threads at once overlap, and when the last
    one ends the setting from before the first is back."""
    global _outside
    n = _check(n)
    runner = _backend._runner
    if runner is None:
        yield
        return
    block = [n]                       # a fresh object per block, found by identity
    with _lock:
        if not _blocks:
            _outside = runner.get_thread_setting()
        _blocks.append(block)
        runner.set_num_threads(n)
    try:
        yield
    finally:
        with _lock:
            del _blocks[next(i for i, b in enumerate(_blocks) if b is block)]
            runner.set_num_threads(_blocks[-1][0] if _blocks else _outside)


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
            _backend.warn_user(f"ignoring FASTACT_NUM_THREADS={value!r}: not a positive "
                               f"integer")


_init()
