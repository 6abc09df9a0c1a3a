"""Property-based tests (hypothesis): any shape, layout, dtype and values, every
activation and entry point. The compiled backend agrees with the NumPy fallback (each
within 4 ulp of the exact value, so within 8 ulp of each other; NaN, infinities and the
result dtype exactly) and, in float32 on finite |x| <= 10, with PyTorch's float64
autograd (PyTorch's float64 is no oracle for float64: its hardsigmoid' and celu' use
float32 constants)."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastact
import cases
from cases import CASES, ENTRY_POINTS, call, case_id
from helpers import ulp_distance

torch = pytest.importorskip("torch")

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def arrays(draw, dtypes=(np.float16, np.float32, np.float64, np.int32, np.bool_)):
    """An array of any shape (0-d to 3-d) and dtype, with specials, seen through a random
    view: reversed, strided, transposed."""
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=7))
    if dtype.kind == "f":
        elements = st.floats(width=8 * dtype.itemsize, allow_nan=True, allow_infinity=True,
                             allow_subnormal=True)
    else:
        elements = hnp.from_dtype(dtype)
    a = draw(hnp.arrays(dtype, shape, elements=elements))
    if a.ndim and draw(st.booleans()):
        a = a[tuple(slice(None, None, draw(st.sampled_from([1, -1, 2, -2]))) for _ in a.shape)]
    if a.ndim > 1 and draw(st.booleans()):
        a = a.transpose(draw(st.permutations(range(a.ndim))))
    return a


def _both_backends(name, entry, params, x, g):
    out = {}
    for backend in ("compiled", "numpy"):
        previous = fastact.set_backend(backend)
        try:
            out[backend] = call(entry, name, x, params, grad_output=g)
        finally:
            fastact.set_backend(previous)
    return out["compiled"], out["numpy"]


def _agree(a, b, what):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, what
    if a.dtype == np.float16:       # both computed in float32, then rounded: 1 ulp apart
        d = ulp_distance(a, b, np.float16)
        assert d.max(initial=0) <= 1, what
        return
    d = ulp_distance(a, b, a.dtype, flush=1.0)
    with np.errstate(invalid="ignore"):
        absolute = np.abs(a.astype(np.float64) - b.astype(np.float64))
    d = np.where(absolute <= 4 * float(np.finfo(a.dtype).eps), 0.0, d)   # zero crossings
    assert d.max(initial=0) <= 8, (what, a, b)


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("case", CASES, ids=case_id)
@SETTINGS
@given(data=st.data())
def test_compiled_equals_numpy_fallback(case, entry, data):
    name, params = case
    x = data.draw(arrays(), label="x")
    g = data.draw(hnp.arrays(np.float64 if x.dtype.kind != "f" else x.dtype, x.shape,
                             elements=st.floats(-4, 4, width=64 if x.dtype.kind != "f"
                                                else 8 * x.dtype.itemsize)), label="g")
    got, want = _both_backends(name, entry, params, x, g)
    if isinstance(want, tuple):
        for a, b in zip(got, want):
            _agree(a, b, entry)
    else:
        _agree(got, want, entry)
    if x.ndim == 0:
        assert np.isscalar(want if not isinstance(want, tuple) else want[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_backends_agree_at_special_inputs_for_every_parameter(dtype):
    """Both backends give the same values (within 8 ulp, NaN where the other is NaN, the
    same infinities) at the special inputs (+-0, +-inf, NaN, the smallest subnormal, the
    smallest normal, the largest finite, +-1) for every parameter value of the sweep
    (subnormal ones included) and +-inf, forward and derivative (beta = inf gave x at 0
    in the compiled backend, NaN in the NumPy one and PyTorch), and where e^x underflows."""
    info = np.finfo(dtype)
    specials = [0.0, np.inf, np.nan, float(info.smallest_subnormal), float(info.tiny),
                float(info.max), 1.0,
                # where e^-x is subnormal or 0 in float32 or float64, and the kernels'
                # exponential clamps (elu's infinite alpha gave inf / NaN there)
                88.5, 104.0, 176.0, 745.2, 800.0, 1418.0]
    x = np.array(specials + [-v for v in specials], dtype)
    sweep = cases.param_sweep(np.dtype(dtype).name)
    for name, params in list(sweep):
        for pname, value in params.items():
            for big in (np.inf, -np.inf):
                try:
                    fastact.get(name, **{**params, pname: big})
                except ValueError:
                    continue
                sweep.append((name, {**params, pname: big}))
    failures = []
    for name, params in sweep:
        for entry in ("forward", "grad"):
            got, want = _both_backends(name, entry, params, x, None)
            try:
                _agree(got, want, entry)
            except AssertionError:
                failures.append(f"{name} {params} {entry}: compiled {got}, numpy {want}")
    assert not failures, f"{len(failures)} disagree:\n" + "\n".join(failures[:12])  # noqa


def _torch_reference(name, params, x):
    """(f(x), f'(x)) from PyTorch autograd in float64."""
    from helpers import torch_function
    t = torch.tensor(x.astype(np.float64), requires_grad=True)
    y = torch_function(name, params)(t)
    y.backward(torch.ones_like(y))
    return y.detach().numpy(), t.grad.numpy()


@pytest.mark.parametrize("case", CASES, ids=case_id)
@SETTINGS
@given(x=arrays(dtypes=(np.float32,)))
def test_float32_agrees_with_torch_float64(case, x):
    name, params = case
    x = np.where(np.isfinite(x) & (np.abs(x) <= 10), x, 0.5).astype(x.dtype)
    y_ref, d_ref = _torch_reference(name, params, x)
    eps = float(np.finfo(x.dtype).eps)
    for got, ref in ((getattr(fastact, name)(x, **params), y_ref),
                     (getattr(fastact, name + "_grad")(x, **params), d_ref)):
        np.testing.assert_allclose(np.asarray(got, np.float64), ref, rtol=8 * eps,
                                   atol=16 * eps)
