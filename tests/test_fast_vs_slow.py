"""The compiled backend against the NumPy fallback (bottleneck's fast-vs-slow parity):
every activation, parameter set, entry point and dtype, on random data mixed with the
specials, on a few shapes and layouts. Each is within 4 ulp of the exact value, so they
are within 8 ulp of each other (4 machine epsilons absolute where a derivative crosses
zero, and either may flush results below the smallest normal number); NaN, infinities
and exact results match exactly."""
import numpy as np
import pytest

import fastact
from cases import CASES, case_id, crossing
from helpers import assert_ulp_close

def _data(dtype, shape, seed):
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    x = np.concatenate([rng.standard_normal(n) * 4, rng.uniform(-120, 120, n),
                        [0.0, -0.0, np.inf, -np.inf, np.nan, 3.0, -3.0, 0.5, -0.5, 6.0]])
    rng.shuffle(x)
    return x[:n].reshape(shape).astype(dtype)


@pytest.mark.parametrize("entry", ["", "_grad", "_backward", "_forward_backward"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_compiled_matches_numpy(case, entry, dtype):
    name, params = case
    f = getattr(fastact, name + entry)
    for shape, seed in (((1000,), 0), ((17, 31), 1), ((3, 4, 50), 2)):
        x = _data(dtype, shape, seed)
        x = x[..., ::-1] if seed == 1 else x
        args = (np.full_like(x, 1.25), x) if entry == "_backward" else (x,)
        results = {}
        for backend in ("compiled", "numpy"):
            previous = fastact.set_backend(backend)
            try:
                r = f(*args, **params)
            finally:
                fastact.set_backend(previous)
            results[backend] = r if isinstance(r, tuple) else (r,)
        atol = 4 if crossing(name, params) is not None and entry != "" else 0
        for fast, slow in zip(results["compiled"], results["numpy"]):
            assert fast.dtype == slow.dtype == dtype
            assert_ulp_close(fast, slow, dtype, 8, atol_eps=atol, what=f"{name}{entry}", flush=2)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_sign_of_zero_matches_numpy(case, dtype):
    """Tiny inputs of both signs (the zeros, the subnormal and normal edges, powers of ten
    down to where x^3 underflows): where both backends' value or derivative is zero, the
    same sign of zero (x^3 / 3 underflows in float32 and not in float64, for one)."""
    name, params = case
    info = np.finfo(dtype)
    tiny = [0.0, float(info.smallest_subnormal), float(info.tiny), 1e-300, 1e-150, 1e-40,
            1e-20, 1e-13, 1e-7]
    x = np.array([s * t for t in tiny for s in (1, -1)], dtype)
    for entry in ("", "_grad"):
        f = getattr(fastact, name + entry)
        results = []
        for backend in ("compiled", "numpy"):
            previous = fastact.set_backend(backend)
            try:
                results.append(f(x, **params))
            finally:
                fastact.set_backend(previous)
        fast, slow = results
        zeros = (fast == 0) & (slow == 0)
        assert np.array_equal(np.signbit(fast[zeros]), np.signbit(slow[zeros])), \
            f"{name}{entry} at {x[zeros]}: compiled {fast[zeros]}, numpy {slow[zeros]}"


# one activation per entry point of the kernel table, called as that entry
_ENTRY_CALLS = {
    "fwd": lambda x, g, out: fastact.gelu(x, out=out),
    "grad": lambda x, g, out: fastact.elu_grad(x, 0.5, out=out),
    "bwd": lambda x, g, out: fastact.silu_backward(g, x, out=out),
    "bwdy": lambda x, g, out: fastact.sigmoid_backward(g, y=x, out=out),
    "fb": lambda x, g, out: fastact.softplus_forward_backward(
        x, out=out, grad_out=None if out is None else out.copy()),
    "fbg": lambda x, g, out: fastact.tanh_forward_backward(
        x, grad_output=g, out=out, grad_out=None if out is None else out.copy()),
}


def _paths(dtype):
    """(name, x, grad_output, out) for each way into the kernels: the fast path and each
    case of the general path."""
    x = _data(dtype, (6, 10), 4)
    g = np.linspace(-2, 2, x.size).reshape(x.shape).astype(dtype)
    mask = np.zeros(x.shape, bool)
    mask[1, 2:5] = True
    return [
        ("fast", x, g, None),
        ("fast out=", x, g, np.empty_like(x)),
        ("fast F-order", np.asfortranarray(x), np.asfortranarray(g), None),
        ("strided", x[:, ::2], g[:, ::2], None),
        ("out= of another layout", x, g, np.empty(x.shape, dtype, order="F")),
        ("masked", np.ma.masked_array(x, mask=mask), g, None),
        ("0-d", dtype(0.75), dtype(1.5), None),
        ("int", np.arange(-3, 4), np.ones(7, np.int64), None),
    ]


@pytest.mark.parametrize("entry", sorted(_ENTRY_CALLS))
def test_every_path_matches_numpy(entry, dtype):
    """Both backends through the fast path and every case of the general path (strided
    inputs, out= of another layout, masked arrays, 0-d, integers): the same results, and
    within one backend a path gives the bits the plain contiguous call gives."""
    call = _ENTRY_CALLS[entry]
    for name, x, g, out in _paths(dtype):
        want = np.float64 if name == "int" else dtype
        results = {}
        for backend in ("compiled", "numpy"):
            previous = fastact.set_backend(backend)
            try:
                o = None if out is None else out.copy(order="K")
                r = call(x, g, o)
                # the same values as plain contiguous arrays of the computed dtype
                plain = call(np.array(np.ma.getdata(x), want), np.array(g, want), None)
            finally:
                fastact.set_backend(previous)
            r = r if isinstance(r, tuple) else (r,)
            plain = plain if isinstance(plain, tuple) else (plain,)
            if out is not None:
                assert r[0] is o, name
            for res, ref in zip(r, plain):
                assert np.shape(res) == np.shape(x) and np.asarray(res).dtype == want, name
                if name == "masked":
                    assert np.array_equal(np.ma.getmaskarray(res), x.mask), name
                assert np.array_equal(np.ma.getdata(res), ref, equal_nan=True), (name, backend)
            results[backend] = r
        for fast, slow in zip(results["compiled"], results["numpy"]):
            assert_ulp_close(np.ma.getdata(fast), np.ma.getdata(slow), want, 8,
                             atol_eps=0 if entry == "fwd" else 4, what=f"{entry} {name}",
                             flush=2)
