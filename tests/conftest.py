import contextlib
import os

import numpy as np
import pytest

import fastact

BACKENDS = ("compiled", "numpy")
DTYPES = (np.float32, np.float64)


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Run the test once per backend."""
    previous = fastact.set_backend(request.param)
    yield request.param
    fastact.set_backend(previous)


@contextlib.contextmanager
def using(backend, level=None):
    """fastact on this backend (and SIMD level of the compiled one) inside the block."""
    previous = fastact.set_backend(backend)
    previous_level = fastact.simd_level()
    if level:
        fastact.set_simd_level(level)
    try:
        yield
    finally:
        fastact.set_backend(previous)
        if previous_level:
            fastact.set_simd_level(previous_level)


def _compiled_levels():
    from fastact import _backend
    return [f"compiled-{level}" for level in reversed(_backend.supported_levels())]


@pytest.fixture(params=_compiled_levels() + ["numpy"])
def backend_level(request):
    """Run the test with the NumPy backend and with the compiled kernels of every SIMD
    level this machine runs."""
    name, _, level = request.param.partition("-")
    with using(name, level):
        yield request.param


@pytest.fixture(params=_compiled_levels())
def compiled_level(request):
    """Run the test with the compiled kernels of every SIMD level this machine runs."""
    with using("compiled", request.param.partition("-")[2]):
        yield request.param


@pytest.fixture(params=DTYPES, ids=lambda d: np.dtype(d).name)
def dtype(request):
    return request.param


# worst ULP error seen per (case, dtype, backend, entry), filled by test_accuracy.py
ACCURACY = {}


def pytest_terminal_summary(terminalreporter, config):
    """The worst error of every case, on request: FASTACT_ACCURACY_REPORT=1 or -v."""
    if not ACCURACY or not (os.environ.get("FASTACT_ACCURACY_REPORT") == "1"
                            or config.getoption("verbose") > 0):
        return
    tr = terminalreporter
    tr.section("fastact accuracy: worst error in ulp over the sweep (bound: 4)")
    rows = {}
    for (case, dtype, backend, entry), (err, x) in sorted(ACCURACY.items()):
        rows.setdefault((case, dtype, backend), {})[entry] = (err, x)
    tr.write_line(f"{'case':42s} {'dtype':8s} {'backend':18s} "
                  f"{'forward':>16s} {'grad':>16s} {'backward':>16s}")
    for (case, dtype, backend), entries in rows.items():
        cells = []
        for entry in ("forward", "grad", "backward"):
            err, x = entries.get(entry, (float("nan"), float("nan")))
            cells.append(f"{err:6.2f} @{x:<9.3g}")
        tr.write_line(f"{case:42s} {dtype:8s} {backend:18s} " + " ".join(cells))
