"""Robust under threads and fork (docs/contract.md, Backends, SIMD levels, threads): many Python threads at once, the GIL
released in every kernel, thread-count changes while others compute, a forked child
after OpenMP ran; plus unaligned and byte-swapped outputs and the 64-bit index limit."""
import multiprocessing
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import fastact
from cases import CASES, ENTRY_POINTS as ENTRIES, call, case_id
from helpers import same



def _call(name, entry, x, params):
    return call(entry, name, x, params, grad_output=np.full_like(x, 0.75))


def _in_threads(work, n):
    errors, threads = [], []

    def wrap(i):
        try:
            work(i)
        except BaseException as e:     # noqa: BLE001 - reported by the main thread
            errors.append(e)
    for i in range(n):
        threads.append(threading.Thread(target=wrap, args=(i,)))
        threads[-1].start()
    for t in threads:
        t.join(timeout=120)
        assert not t.is_alive(), "a thread hung"
    if errors:
        raise errors[0]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_many_python_threads_at_once(case):
    """Six Python threads on shared inputs, large (OpenMP threads inside) and small
    calls of the compiled kernels: every result is what one thread computes alone."""
    name, params = case
    rng = np.random.default_rng(0)
    inputs = [(rng.standard_normal(n) * 5).astype(dt) for n in (50, 70_003)
              for dt in (np.float32, np.float64)]
    expected = {(i, e): _call(name, e, x, params) for i, x in enumerate(inputs) for e in ENTRIES}

    def work(k):
        for rep in range(2):
            for i, x in enumerate(inputs):
                for e in ENTRIES:
                    assert same(_call(name, e, x, params), expected[(i, e)]), (k, i, e)
    _in_threads(work, 6)


def test_gil_is_released_during_a_long_call():
    """Another Python thread keeps running while a long call computes: a pure-Python
    counter advances during each call (with the GIL held it could not move at all)."""
    x = np.random.default_rng(1).standard_normal(1 << 23)
    out = np.empty_like(x)
    count, done = [0], threading.Event()

    def counter():
        while not done.is_set():
            count[0] += 1
    t = threading.Thread(target=counter)
    t.start()
    try:
        while count[0] == 0:
            time.sleep(0.001)
        with fastact.threads(1):
            for long_call in (lambda: fastact.gelu(x, out=out),
                              lambda: fastact.mish_backward(x, x, out=out),
                              lambda: fastact.tanh_forward_backward(x[::2]),  # general path
                              lambda: fastact.softplus(x.astype(np.float32))):
                before = count[0]
                long_call()
                assert count[0] - before > 50, "the GIL was held during the call"
    finally:
        done.set()
        t.join()


def test_changing_thread_count_while_others_compute():
    x = np.random.default_rng(2).standard_normal(1 << 20)
    expected = fastact.silu_forward_backward(x)
    stop = threading.Event()

    def compute(k):
        if k == 0:                                     # the changer
            for i in range(300):
                fastact.set_num_threads(1 + i % 4)
                with fastact.threads(1 + (i + 1) % 3):
                    time.sleep(0)
            stop.set()
            return
        while not stop.is_set():
            assert same(fastact.silu_forward_backward(x), expected)
    with fastact.threads(2):        # restores the setting (following OpenMP) afterwards
        _in_threads(compute, 4)


FORK = pytest.mark.skipif(sys.platform == "win32"
                          or "fork" not in multiprocessing.get_all_start_methods(),
                          reason="the fork start method exists on POSIX only")


def _fork_and_compute(expected, x):
    """Pool(2) with 'fork': each child computes gelu on 2 threads; no hang, same bits."""
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        try:
            got = pool.map_async(_gelu_probe, [x] * 4).get(timeout=60)
        except multiprocessing.TimeoutError:
            pool.terminate()
            pytest.fail("a forked child hung in fastact")
    assert [v for v, _ in got] == [expected] * 4
    return [n for _, n in got]


def _gelu_probe(x):
    with fastact.threads(2):
        return float(fastact.gelu(x)[123456]), fastact.get_num_threads()


def _openmp_runtime():
    """The OpenMP runtime fastact's compiled modules use, from this process's maps."""
    import ctypes
    if not sys.platform.startswith("linux"):
        pytest.skip("finding the loaded OpenMP runtime reads /proc/self/maps (Linux)")
    names = ("libgomp", "libomp", "libiomp")
    paths = {line.split()[-1] for line in open("/proc/self/maps")
             if any(n in line.rsplit("/", 1)[-1] for n in names)}
    if not paths:
        pytest.skip("no OpenMP runtime loaded (a build without OpenMP)")
    return ctypes.CDLL(sorted(paths)[0])


@FORK
def test_fork_after_openmp_does_not_hang():
    x = np.linspace(-5, 5, 1 << 20)
    with fastact.threads(2):
        expected = float(fastact.gelu(x)[123456])    # the parent's OpenMP pool has run
    threads = _fork_and_compute(expected, x)
    # the pool was shut down before the fork: the children run threads again
    if fastact._config.config().get("openmp"):
        assert threads == [2] * 4
    assert float(fastact.gelu(x)[123456]) == expected    # and the parent still works


# A fresh process where fastact has never run threads: someone else starts the OpenMP
# pool of the runtime fastact shares, then the process forks a Pool whose workers run
# fastact on 2 threads. {start} is the code that starts the pool.
_FORK_SCRIPT = """
import multiprocessing as mp, sys
import numpy as np
import fastact
{start}
def work(i):
    with fastact.threads(2):
        return float(fastact.gelu(np.linspace(-5, 5, 1 << 20))[123456]), fastact.get_num_threads()
if __name__ == "__main__":
    with mp.get_context("fork").Pool(2) as pool:
        print(pool.map_async(work, range(4)).get(timeout=60))
"""


def _fork_in_fresh_process(start):
    import subprocess
    r = subprocess.run([sys.executable, "-c", _FORK_SCRIPT.format(start=start)],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    got = eval(r.stdout.strip().splitlines()[-1])
    x = np.linspace(-5, 5, 1 << 20)
    assert [v for v, _ in got] == [float(fastact.gelu(x)[123456])] * 4
    if fastact._config.config().get("openmp"):
        assert [n for _, n in got] == [2] * 4


@FORK
def test_fork_after_pytorch_started_the_openmp_pool():
    """PyTorch's wheel and fastact share one OpenMP runtime: after any parallel PyTorch
    op the pool exists although fastact never ran one."""
    pytest.importorskip("torch")
    _fork_in_fresh_process("import torch\ntorch.sigmoid(torch.randn(2_000_000))")


@FORK
def test_fork_after_another_openmp_user_started_the_pool():
    """Any other user of the same runtime: a parallel region started through the
    runtime's own GOMP_parallel entry (GNU ABI; LLVM's libomp has it too)."""
    runtime = _openmp_runtime()
    _fork_in_fresh_process(f"""import ctypes
runtime = ctypes.CDLL({runtime._name!r})
calls = []
callback = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda data: calls.append(1))
runtime.GOMP_parallel(callback, None, 2, 0)
assert len(calls) == 2, calls""")


# A child made by the C library's fork() itself, which runs none of Python's fork
# handlers: the child inherits the parent's pool state but none of its workers. A caller
# waits only for chunks a thread has taken, so the child's large calls complete on its
# calling thread, with the same bits.
_RAW_FORK_SCRIPT = """
import ctypes, os, sys
import numpy as np
import fastact
x = np.linspace(-5, 5, 1 << 20)
with fastact.threads(2):
    expected = (fastact.gelu(x), fastact.tanh(x.astype(np.float32)))   # workers started
pid = ctypes.CDLL(None).fork()
if pid == 0:
    with fastact.threads(2):
        got = (fastact.gelu(x), fastact.tanh(x.astype(np.float32)))
    os._exit(0 if all(np.array_equal(a, b) for a, b in zip(got, expected)) else 3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""


@FORK
def test_fork_without_python_handlers_does_not_hang():
    if not sys.platform.startswith("linux"):
        pytest.skip("calls the C library's fork through ctypes (glibc)")
    if fastact.backend() != "compiled":
        pytest.skip("the NumPy backend has no threads")
    r = subprocess.run([sys.executable, "-c", _RAW_FORK_SCRIPT], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split()[-1] == "0"        # the child's results equal the parent's


def test_unaligned_and_byteswapped_outputs(backend):
    x = np.random.default_rng(3).standard_normal((9, 7))
    expected = fastact.elu_forward_backward(x, 0.5)
    raw = bytearray(x.nbytes * 2 + 3)
    o1 = np.frombuffer(raw, np.float64, count=x.size, offset=1).reshape(x.shape)
    o2 = np.frombuffer(raw, np.float64, count=x.size, offset=x.nbytes + 2).reshape(x.shape)
    assert not o1.flags.aligned and not o2.flags.aligned
    r = fastact.elu_forward_backward(x, 0.5, out=o1, grad_out=o2)
    assert r[0] is o1 and r[1] is o2 and same(r, expected)
    swapped = np.empty(x.shape, ">f8")
    assert fastact.elu(x, 0.5, out=swapped) is swapped and same(swapped.astype("<f8"), expected[0])
    xs = np.frombuffer(bytearray(x.nbytes + 5), np.float64, count=x.size, offset=5)
    xs[...] = x.ravel()
    assert same(fastact.elu_backward(xs, xs, 0.5), fastact.elu_backward(x.ravel(), x.ravel(), 0.5))


def test_index_arithmetic_is_64_bit():
    """Sizes and indices are Py_ssize_t from the Python layer down to the loops (a >2**31
    element run: tools/huge_array_check.py, 8.6 GB). Here: the compiled loops' sources."""
    src = os.path.join(os.path.dirname(fastact.__file__), "_src", "_kernels.pyx.in")
    if not os.path.exists(src):
        pytest.skip("kernel sources not installed")
    text = open(src).read()
    assert "Py_ssize_t n" in text and "cdef Py_ssize_t i" in text
    assert "cdef int i" not in text and "int n," not in text
