"""No kernel reads or writes a subnormal number on the way to results that are normal
numbers, at any SIMD level, for inputs of ordinary magnitude (docs/performance.md,
*Subnormal numbers*): on x86 each such operation takes a microcode assist, and a loop
that meets one in every vector runs 10-60x slower (gelu at SSE2 did, for every |x| < 2).

The x86 status flags say whether one happened since they were cleared
(fastact._runner.subnormal_flags, the calling thread's: one thread). Inputs: magnitudes
2^-30 to 10 of both signs (float16 and bfloat16: 2^-13 to 10, normal in both), every
activation and parameter set of tests/cases.py, every entry point, the gated units and
the softmax family; an input counts where every result of the entry point is a normal
number (or inf or NaN), above the type's smallest normal times 256 (16-bit: 2): the flags are read
after the kernel ran on those inputs alone."""
import numpy as np
import pytest

import fastact
from cases import CASES, ENTRY_POINTS, call, case_id
from conftest import using
from fastact import _backend, _runner

ml_dtypes = pytest.importorskip("ml_dtypes")

pytestmark = pytest.mark.skipif(_runner.subnormal_flags() < 0,
                                reason="the x86 status flags (MXCSR) are read; this CPU has none")

LEVELS = list(reversed(_backend.supported_levels()))
FLOAT = (np.float32, np.float64)
HALF = (np.float16, ml_dtypes.bfloat16)
FLAGS = {1: "a subnormal was read", 2: "a subnormal was produced",
         3: "a subnormal was read and one produced"}


def magnitudes(dt):
    lo = 2.0 ** -13 if dt in HALF else 2.0 ** -30
    m = np.concatenate([np.geomspace(lo, 10.0, 700), [0.5, 1.0, 2.0, 3.0, 10.0]])
    return np.concatenate([m, -m]).astype(dt)


def normal_results(results, dt):
    """Where every result is a normal number (or inf or NaN), with room to spare in
    float32 and float64 (the 16-bit types' intermediates are float32's)."""
    tiny = float(np.finfo(dt).tiny) * (256 if dt in FLOAT else 2)
    keep = np.ones(np.shape(results[0]), bool)
    for r in results:
        a = np.abs(np.asarray(r, np.float64))
        keep &= (a >= tiny) | ~np.isfinite(a)
    return keep


def flags_of(run):
    """The status flags the call run() raised (one thread: this one)."""
    _runner.subnormal_flags()
    run()
    return _runner.subnormal_flags()


@pytest.fixture(autouse=True)
def one_thread():
    with fastact.threads(1):          # (restores the setting, not only the count)
        yield


def offenders(entry, name, x, g, params):
    """The inputs that raise a flag on their own (for the failure message)."""
    bad = []
    for v, gv in zip(x[:: max(1, x.size // 200)], g[:: max(1, x.size // 200)]):
        xs, gs = np.full(64, v, x.dtype), np.full(64, gv, x.dtype)
        if flags_of(lambda: call(entry, name, xs, params, grad_output=gs)):
            bad.append(float(v))
    return bad[:8]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_no_subnormal_on_the_way(case):
    name, params = case
    checked = 0
    for level in LEVELS:
        with using("compiled", level):
            for dt in FLOAT + HALF:
                x = magnitudes(dt)
                for g0 in (1.5, -0.75):
                    g = np.full_like(x, g0)
                    for entry in ENTRY_POINTS:
                        r = call(entry, name, x, params, grad_output=g)
                        keep = normal_results(r if isinstance(r, tuple) else (r,), dt)
                        checked += keep.sum()
                        xs, gs = np.ascontiguousarray(x[keep]), np.ascontiguousarray(g[keep])
                        f = flags_of(lambda: call(entry, name, xs, params, grad_output=gs))
                        assert f == 0, (f"{case_id(case)} {entry} {np.dtype(dt).name} at "
                                        f"{level}, g = {g0}: {FLAGS[f]}, at x = "
                                        f"{offenders(entry, name, xs, gs, params)}")
    assert checked > 10000                                 # not vacuous


def gated_calls(name, x, g, w):
    if name == "prelu":
        return {"forward": lambda: fastact.prelu(x, w), "grad": lambda: fastact.prelu_grad(x, w),
                "backward": lambda: fastact.prelu_backward(g, x, w),
                "forward_backward": lambda: fastact.prelu_forward_backward(x, w)}
    f = lambda s: getattr(fastact, name + s)            # noqa: E731
    return {"forward": lambda: f("")(x), "grad": lambda: f("_grad")(x),
            "backward": lambda: f("_backward")(g, x), "forward_backward": lambda: f("_forward_backward")(x)}


@pytest.mark.parametrize("name", fastact.GATED + ("prelu",))
def test_gated_no_subnormal_on_the_way(name):
    """The gated units (x's two halves: the magnitudes, and the same reversed) and prelu
    (weight 0.25): the rows whose results are all normal."""
    for level in LEVELS:
        with using("compiled", level):
            for dt in FLOAT + HALF:
                m = magnitudes(dt)
                x = np.stack([m, m[::-1]], axis=1)
                w = np.asarray([0.25], dt)
                g = np.full((m.size, 1) if name != "prelu" else x.shape, 1.5, dt)
                for entry, run in gated_calls(name, x, g, w).items():
                    r = run()
                    keep = np.ones(m.size, bool)
                    for o in (r if isinstance(r, tuple) else (r,)):
                        if np.ndim(o) == 2:                   # (prelu's weight gradient: a sum)
                            keep &= normal_results((o,), dt).all(axis=1)
                    assert keep.sum() >= 100, (name, entry, dt)      # not vacuous
                    xs, gs = np.ascontiguousarray(x[keep]), np.ascontiguousarray(g[keep])
                    f = flags_of(gated_calls(name, xs, gs, w)[entry])
                    assert f == 0, f"{name} {entry} {np.dtype(dt).name} at {level}: {FLAGS[f]}"


@pytest.mark.parametrize("name", fastact.SOFTMAX)
def test_softmax_no_subnormal_on_the_way(name):
    rng = np.random.default_rng(5)
    x64 = rng.standard_normal((40, 100)) * 3             # every result a normal float32
    for level in LEVELS:
        with using("compiled", level):
            for dt in FLOAT:
                x, g = x64.astype(dt), (rng.standard_normal(x64.shape) + 3).astype(dt)
                for axis in (-1, 0):
                    runs = {"forward": lambda: getattr(fastact, name)(x, axis),
                            "backward": lambda: getattr(fastact, name + "_backward")(g, x, axis=axis),
                            "forward_backward":
                                lambda: getattr(fastact, name + "_forward_backward")(x, axis, g)}
                    for entry, run in runs.items():
                        r = run()
                        assert np.all(normal_results(r if isinstance(r, tuple) else (r,), dt))
                        f = flags_of(run)
                        assert f == 0, (f"{name} {entry} {np.dtype(dt).name} axis={axis} at "
                                        f"{level}: {FLAGS[f]}")
