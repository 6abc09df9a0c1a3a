"""Thread count control and thread-count independence of the results."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastact
from cases import CASES, case_id

# a build without OpenMP (FASTACT_DISABLE_OPENMP=1, or a compiler without it) runs on
# one thread whatever is asked; the NumPy-only install (no extension) likewise
OPENMP = bool(fastact._config.config().get("openmp"))


def _expect(n):
    return n if OPENMP else 1


def test_get_set_and_context():
    n = fastact.get_num_threads()
    assert n >= 1
    with fastact.threads(1):
        assert fastact.get_num_threads() == 1
        with fastact.threads(3):
            assert fastact.get_num_threads() == _expect(3)
        assert fastact.get_num_threads() == 1
    assert fastact.get_num_threads() == n
    for bad in (0, -1, 1.5, "2", True, 2**31, 2**64, 2.0, None):
        with pytest.raises(ValueError):
            fastact.set_num_threads(bad)
        with pytest.raises(ValueError):
            with fastact.threads(bad):
                pass
    # a count that is not an integer is also a TypeError (NumPy's and PyTorch's rule for
    # a wrong type); an integer out of range is a ValueError only
    for bad in (1.5, "2", True, 2.0, None):
        with pytest.raises(TypeError):
            fastact.set_num_threads(bad)
        with pytest.raises(TypeError):
            with fastact.threads(bad):
                pass
    for bad in (0, -1, 2**31):
        with pytest.raises(ValueError) as info:
            fastact.set_num_threads(bad)
        assert not isinstance(info.value, TypeError)
    with fastact.threads(1):                  # a refused block left nothing behind
        assert fastact.get_num_threads() == 1
    assert fastact.get_num_threads() == n


@pytest.mark.parametrize("env, expected", [({"OMP_NUM_THREADS": "1"}, "1"),
                                           ({"OMP_NUM_THREADS": "3"}, "3"),
                                           ({"FASTACT_NUM_THREADS": "3", "OMP_NUM_THREADS": "1"}, "3")])
def test_environment(env, expected):
    r = subprocess.run([sys.executable, "-c", "import fastact; print(fastact.get_num_threads())"],
                       capture_output=True, text=True, env={**os.environ, **env}, timeout=60)
    assert r.stdout.strip() == str(_expect(int(expected))), r.stderr


def test_show_config_reports_openmp():
    import io
    text = io.StringIO()
    fastact.show_config(file=text)
    line = next((l for l in text.getvalue().splitlines() if "OpenMP:" in l), None)
    if line is None:                                  # no compiled extension at all
        assert not OPENMP and "not available" in text.getvalue()
        return
    assert line.split(":", 1)[1].strip() == ("on" if OPENMP else "off (single-threaded build)")
    if not OPENMP:
        fastact.set_num_threads(4)
        assert fastact.get_num_threads() == 1


def test_threadpoolctl():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    x = np.random.default_rng(0).standard_normal(1 << 16)
    fastact.gelu(x)        # loads OpenMP
    with threadpoolctl.threadpool_limits(1):
        assert fastact.get_num_threads() == 1
    assert fastact.get_num_threads() == fastact._threads._backend._runner.get_num_threads()


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_results_do_not_depend_on_thread_count(case, dtype):
    name, params = case
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((1 << 18) + 13) * 6).astype(dtype)    # above every grain, odd tail
    g = rng.uniform(-2, 2, x.size).astype(dtype)
    runs = []
    for n in (1, 2, 3, 8):      # 8: more threads than cores, chunks taken in any order
        with fastact.threads(n):
            runs.append((getattr(fastact, name)(x, **params),
                         getattr(fastact, name + "_backward")(g, x, **params),
                         *getattr(fastact, name + "_forward_backward")(x, **params)))
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            assert np.array_equal(a, b, equal_nan=True)


def _entries(name, params, x, g):
    """Every entry point's results on x (grad_output g), the backward from y included
    where the activation takes it for these parameters."""
    y = getattr(fastact, name)(x, **params)
    out = [y, getattr(fastact, name + "_grad")(x, **params),
           getattr(fastact, name + "_backward")(g, x, **params),
           *getattr(fastact, name + "_forward_backward")(x, **params),
           *getattr(fastact, name + "_forward_backward")(x, grad_output=g, **params)]
    try:
        out.append(getattr(fastact, name + "_backward")(g, y=y, **params))
    except TypeError:       # f' is not a function of y here (refused, documented)
        pass
    return out


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_results_do_not_depend_on_the_call_size(case, dtype):
    """A call whose input is past the caches (8 MiB) runs its loops in blocks that
    prefetch ahead; its results are those of the same elements in small calls, for any
    thread count, specials included."""
    name, params = case
    rng = np.random.default_rng(3)
    n = (8 << 20) // np.dtype(dtype).itemsize + 4099        # past the threshold, odd tail
    x = (rng.standard_normal(n) * 6).astype(dtype)
    g = rng.uniform(-2, 2, n).astype(dtype)
    special = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-40, -1e-40, 1e30, -1e30,
                        np.finfo(dtype).max, np.finfo(dtype).tiny], dtype)
    at = rng.choice(n, 2000, replace=False)
    x[at] = special[np.arange(at.size) % special.size]
    piece = 1 << 16
    with fastact.threads(1):
        small = [np.concatenate(parts) for parts in zip(
            *(_entries(name, params, x[i:i + piece], g[i:i + piece]) for i in range(0, n, piece)))]
        whole = _entries(name, params, x, g)
    with fastact.threads(2):
        threaded = _entries(name, params, x, g)
    assert len(small) == len(whole) == len(threaded)
    for a, b, c in zip(small, whole, threaded):
        assert np.array_equal(a, b, equal_nan=True)
        assert np.array_equal(a, c, equal_nan=True)


def test_blocks_in_two_python_threads_restore_the_setting():
    """Two `with fastact.threads(n)` blocks that overlap in two Python threads (A enters,
    B enters, A exits, B exits, and the reverse): while any is open the innermost open
    one holds; after both, the setting from before either."""
    import threading
    before = fastact.get_num_threads()
    for order in (("a", "b", "a", "b"), ("a", "b", "b", "a")):
        steps = {name: (threading.Event(), threading.Event()) for name in "ab"}
        seen = {}

        def worker(name, n):
            enter, leave = steps[name]
            with fastact.threads(n):
                enter.set()
                leave.wait(10)
            seen[name] = True

        threads = [threading.Thread(target=worker, args=("a", 1)),
                   threading.Thread(target=worker, args=("b", 3))]
        threads[0].start()
        steps["a"][0].wait(10)
        assert fastact.get_num_threads() == 1
        threads[1].start()
        steps["b"][0].wait(10)
        assert fastact.get_num_threads() == _expect(3)
        first, second = order[2], order[3]
        steps[first][1].set()
        threads["ab".index(first)].join(10)
        assert fastact.get_num_threads() == _expect(3 if first == "a" else 1)
        steps[second][1].set()
        threads["ab".index(second)].join(10)
        assert seen == {"a": True, "b": True}
        assert fastact.get_num_threads() == before


def test_backoff_after_a_stall_runs_on_the_caller_with_the_same_bits():
    """The pool's back-off (fa_pool.h: after a call waited on a descheduled thread, the next
    calls run their chunks on the caller alone): those calls give the threaded results bit
    for bit, each consumes one call of the back-off, long calls keep their threads, and a
    forked child starts without it."""
    runner = fastact._threads._backend._runner
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((1 << 18) + 7) * 4).astype(np.float32)
    g = rng.uniform(-2, 2, x.size).astype(np.float32)
    p = rng.standard_normal((64, 4099)).astype(np.float32)
    with fastact.threads(2):
        want = (fastact.gelu(x), fastact.silu_backward(g, x), fastact.softmax(p, axis=-1))
        runner.set_pool_backoff(3)
        assert runner.pool_backoff()[1] == 3
        got = (fastact.gelu(x), fastact.silu_backward(g, x), fastact.softmax(p, axis=-1))
        # a build without OpenMP computes on one thread, past the pool's back-off
        assert runner.pool_backoff()[1] == (0 if runner.OPENMP else 3)
        runner.set_pool_backoff(1)
        stalls = runner.pool_backoff()[0]
        long_x = np.tile(x, 40)                     # 10M elements: more than 32 chunks a thread
        assert np.array_equal(fastact.gelu(long_x), np.tile(want[0], 40))
        if runner.pool_backoff()[0] == stalls:      # (unless this machine just stalled it)
            assert runner.pool_backoff()[1] == 1    # a long call does not consume it
        code = ("import os, fastact; r = fastact._threads._backend._runner\n"
                "r.set_pool_backoff(5)\n"
                "pid = os.fork()\n"
                "if pid == 0:\n"
                "    os._exit(0 if r.pool_backoff()[1] == 0 else 1)\n"
                "_, status = os.waitpid(pid, 0)\n"
                "raise SystemExit(os.waitstatus_to_exitcode(status))\n")
        runner.set_pool_backoff(0)
    for a, b in zip(want, got):
        assert np.array_equal(a, b, equal_nan=True)
    if hasattr(os, "fork"):
        assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.skipif(not OPENMP or not sys.platform.startswith("linux")
                    or len(os.sched_getaffinity(0)) < 2,
                    reason="a worker leaves the caller's CPU on Linux, with 2 CPUs or more")
def test_a_worker_started_on_the_callers_cpu_moves_off_it():
    """A pool worker that starts a job on the caller's CPU moves to another (fa_pool.h:
    sharing one CPU, the two take a call in one thread's time), and keeps its own affinity
    (the caller's is not touched): the caller is held on one CPU, the worker started there
    (it inherits that CPU), then allowed every CPU; after more threaded calls (the pool's
    back-off cleared before each: the first call, both threads on one CPU, may have stalled)
    it is elsewhere, its affinity every CPU, and the results are the one-thread results bit
    for bit."""
    code = r"""
import os, threading, numpy as np, fastact
cpus = os.sched_getaffinity(0)
c = min(cpus)
def last_cpu(t):
    return int(open(f"/proc/self/task/{t}/stat").read().rsplit(")", 1)[1].split()[36])
os.sched_setaffinity(0, {max(cpus)})
if last_cpu(threading.get_native_id()) != max(cpus):      # (a sandbox's own CPU numbers)
    raise SystemExit("skip: this system does not report the CPU a thread runs on")
os.sched_setaffinity(0, {c})                              # the caller: one CPU
x = np.random.default_rng(3).standard_normal((1 << 20) + 3).astype(np.float32)
with fastact.threads(1):
    want = fastact.gelu(x), fastact.silu_backward(x[::-1].copy(), x)
before = set(os.listdir("/proc/self/task"))
with fastact.threads(2):
    fastact.tanh(x)                                       # starts the worker, on c
    workers = [int(t) for t in set(os.listdir("/proc/self/task")) - before]
    assert workers, "no pool worker started"
    for t in workers:
        assert os.sched_getaffinity(t) == {c}
        os.sched_setaffinity(t, cpus)                     # now free to leave c
    runner = fastact._threads._backend._runner
    for calls in range(1, 101):
        runner.set_pool_backoff(0)      # (a stall seen above leaves calls on the caller alone)
        got = fastact.gelu(x), fastact.silu_backward(x[::-1].copy(), x)
        assert all(np.array_equal(a, b) for a, b in zip(want, got))
        where = [last_cpu(t) for t in workers]
        if c not in where:
            break
assert os.sched_getaffinity(0) == {c}
for t in workers:
    assert os.sched_getaffinity(t) == cpus, (t, os.sched_getaffinity(t))
assert c not in where, (workers, where, c, calls)
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    if r.stderr.startswith("skip:"):
        pytest.skip(r.stderr.strip())
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr
