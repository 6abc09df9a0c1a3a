"""Accuracy: at most 4 ulp from the exact value (mpmath) over the whole finite range.

For every activation and parameter set, forward, derivative and backward, both dtypes
both backends and every SIMD level of the compiled one, on the sweep of reference.sweep: every binade from the smallest normal
to the overflow edge, both signs, the tails, and the kinks. The worst case of each is
printed at the end of the run with FASTACT_ACCURACY_REPORT=1 or -v (conftest).
"""
import numpy as np
import pytest

import fastact

import reference
import cases
from cases import CASES, call, case_id, kinks, param_sweep
from conftest import ACCURACY

BOUND = 4.0


@pytest.mark.parametrize("entry", ["forward", "grad", "backward"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_ulp_error(case, entry, dtype, backend_level):
    _check(case, entry, dtype, backend_level, reference.sweep(dtype, kinks(*case)))


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
@pytest.mark.parametrize("entry", ["forward", "grad", "backward"])
def test_parameter_sweep(dtype_name, entry, backend_level):
    """Every numeric parameter at every magnitude and sign PARAM_VALUES lists (1e-300 to
    1.7e308, and 0), the others at their defaults: the same bound on a sparser sweep."""
    dtype = np.dtype(dtype_name).type
    failures = []
    for case in param_sweep(dtype_name):
        xs = reference.sweep(dtype, kinks(*case), per_binade=1, linear=301)
        try:
            _check(case, entry, dtype, backend_level, xs)
        except AssertionError as exc:
            failures.append(f"{case_id(case)}: {exc}")
    assert not failures, f"{len(failures)} parameter sets beyond {BOUND} ulp:\n" + "\n".join(
        failures[:20])


def _check(case, entry, dtype, backend_level, xs):
    name, params = case
    y_hi, y_lo, d_hi, d_lo = reference.reference(name, xs, params, dtype)
    crossing, scale = None, 1.0
    if entry == "forward":
        got, hi, lo = call("forward", name, xs, params), y_hi, y_lo
    else:
        crossing = cases.crossing(name, params)
        if entry == "grad":
            got, hi, lo = call("grad", name, xs, params), d_hi, d_lo
        else:
            g = np.random.default_rng(1).uniform(0.5, 2.0, xs.size).astype(dtype)
            got = call("backward", name, xs, params, grad_output=g)
            hi, lo = reference.dd_mul(g, d_hi, d_lo)
            scale = g
    assert got.dtype == dtype
    err = reference.ulp_error(got, hi, lo, dtype, x=xs, crossing=crossing, scale=scale)
    if entry == "backward":
        # backward is g * f'(x) (docs/contract.md, Values): where f'(x) itself overflows (celu with
        # alpha < 0) the rounded f'(x) is inf and so is the product
        info = np.finfo(dtype)
        over = np.abs(d_hi) >= float(info.max) * (1 + float(info.eps) / 4)
        with np.errstate(invalid="ignore"):
            inf = reference.ulp_error(got, g * np.sign(d_hi) * np.inf, 0.0, dtype)
        err = np.where(over, np.minimum(err, inf), err)
    worst = int(np.argmax(err))
    ACCURACY[(case_id(case), np.dtype(dtype).name, backend_level, entry)] = (float(err[worst]),
                                                                       float(xs[worst]))
    assert err[worst] <= BOUND, (
        f"{entry} {err[worst]:.2f} ulp at x={xs[worst]!r}: got {got[worst]!r}, "
        f"exact {hi[worst] + lo[worst]!r}")


# Cases checked on a dense grid (test_dense_grid), where the sweep had missed an excess:
# gelu's float32 backward with the worst g (4.6 ulp at x = -8.8, baseline level),
# squareplus's float32 derivative (4.5 ulp at x = -0.079) and backward (5.4 ulp), the
# silu family's backward (up to 4.7 ulp), mish's float64 backward without FMA (4.25 ulp
# at x = -0.16; tools/backward_worst_grad.py finds these).
DENSE_CASES = [("gelu", {}), ("squareplus", {}), ("squareplus", {"b": 0.25}),
               ("squareplus", {"b": 100.0}), ("silu", {}), ("swish", {}),
               ("swish", {"beta": 2.5}), ("swish", {"beta": -0.75}), ("quick_gelu", {}),
               ("mish", {})]


def _dense_grid(dtype, seed):
    """x densely over [-16, 16] (where gelu's f' is neither 1 nor 0 in float32), and
    magnitudes 2^-40..2^8 of both signs."""
    rng = np.random.default_rng(seed)
    tiny = np.sign(rng.uniform(-1, 1, 4000)) * 2.0 ** rng.uniform(-40, 8, 4000)
    return np.unique(np.concatenate([rng.uniform(-16, 16, 60000), tiny]).astype(dtype))


@pytest.mark.parametrize("case", DENSE_CASES, ids=case_id)
def test_dense_grid(case, dtype, backend_level):
    """The derivative, and the backward g f'(x) with the g that is worst for it: g f' with a
    significand near 2, where an error of f' relative to its own value counts up to twice
    (g times a rounded f'), at every magnitude of g (2^-40..2^40) and both signs, on a
    grid 30 times as dense as the sweep's."""
    name, params = case
    xs = _dense_grid(dtype, 3)
    _, _, d_hi, d_lo = reference.reference(name, xs, params, dtype)
    crossing = cases.crossing(name, params)
    err = reference.ulp_error(call("grad", name, xs, params), d_hi, d_lo, dtype, x=xs,
                              crossing=crossing)
    worst = int(np.argmax(err))
    assert err[worst] <= BOUND, ("grad", err[worst], xs[worst])
    g = reference.worst_grad_output(d_hi, dtype, np.random.default_rng(4))
    hi, lo = reference.dd_mul(g, d_hi, d_lo)
    forward_backward = getattr(fastact, name + "_forward_backward")
    for got in (call("backward", name, xs, params, grad_output=g),
                forward_backward(xs, **params, grad_output=g)[1]):
        err = reference.ulp_error(got, hi, lo, dtype, x=xs, crossing=crossing, scale=g)
        worst = int(np.argmax(err))
        assert err[worst] <= BOUND, ("backward", err[worst], xs[worst], g[worst])


# The elu family where f' = c e^(x / div) is near the smallest normal number, for factors
# c of every size: f' had been rounded there as a subnormal before a last doubling (selu's
# backward 5.2 ulp), and with c = max / 2.5 flushed to 0 (2^k's lower half was 0).
EDGE_CASES = [("elu", {}), ("elu", {"alpha": 1.7}), ("elu", {"alpha": 0.3}),
              ("elu", {"alpha": -2.0}), ("selu", {}), ("celu", {}), ("celu", {"alpha": 2.0}),
              ("elu", {"alpha": "max/2.5"}), ("elu", {"alpha": "max/4"})]


@pytest.mark.parametrize("case", EDGE_CASES, ids=case_id)
def test_elu_family_at_the_smallest_normal_derivative(case, dtype, backend_level):
    """The derivative, and the backward with the worst g (magnitude 1-2, and random
    2^-40..2^40), on a dense grid of x where |f'| runs from below the smallest normal
    number to 2^8 times it."""
    name, params = case
    info = np.finfo(dtype)
    if params.get("alpha") in ("max/2.5", "max/4"):
        params = {"alpha": float(info.max) / float(params["alpha"][4:])}
    params = {k: float(np.asarray(v, dtype)) for k, v in params.items()}
    alpha = params.get("alpha", 1.0)
    c, div = {"selu": (1.0507009873554805 * 1.6732632423543772, 1.0),
              "celu": (1.0, alpha)}.get(name, (abs(alpha), 1.0))
    x0 = div * (np.log(float(info.tiny)) - np.log(c))
    rng = np.random.default_rng(5)
    xs = np.unique((x0 + div * rng.uniform(-1.5, 6.0, 20000)).astype(dtype))
    _, _, d_hi, d_lo = reference.reference(name, xs, params, dtype)
    err = reference.ulp_error(call("grad", name, xs, params), d_hi, d_lo, dtype)
    worst = int(np.argmax(err))
    assert err[worst] <= BOUND, ("grad", err[worst], xs[worst])
    for g in (reference.worst_grad_output(d_hi, dtype),
              reference.worst_grad_output(d_hi, dtype, np.random.default_rng(6))):
        hi, lo = reference.dd_mul(g, d_hi, d_lo)
        err = reference.ulp_error(call("backward", name, xs, params, grad_output=g), hi, lo,
                                  dtype, scale=g)
        worst = int(np.argmax(err))
        assert err[worst] <= BOUND, ("backward", err[worst], xs[worst], g[worst])


def test_gelu_backward_special_grad_outputs(backend_level):
    """g f'(x) for g = +-0, +-inf, NaN, the largest and the smallest float32, on finite x of
    both signs, +-0, +-inf (f' = -0 and 1) and NaN: NaN, infinities and the sign of zero
    as IEEE multiplication gives them, finite results within the bound (below |g| times
    the smallest normal number a result may be flushed, as test_ulp_error allows), also
    where gelu_g's folded product is not used."""
    x = np.array([-15.0, -9.0, -3.0, -0.75, -1e-20, -0.0, 0.0, 1e-20, 0.5, 3.0, 20.0],
                 np.float32)
    _, _, d_hi, d_lo = reference.reference("gelu", x, {}, np.float32)
    x = np.concatenate([x, np.array([-np.inf, np.inf, np.nan], np.float32)])
    d_hi = np.concatenate([d_hi, [-0.0, 1.0, np.nan]])      # f'(-inf) = -0: from below
    d_lo = np.concatenate([d_lo, [0.0, 0.0, 0.0]])
    info = np.finfo(np.float32)
    for g0 in (0.0, -0.0, np.inf, -np.inf, np.nan, float(info.max), float(info.smallest_subnormal)):
        g = np.full(x.shape, g0, np.float32)
        # a zero or non-finite g times f' rounded to float32 (contract.md: literally g * f'
        # (x), so inf times the -0.0 that f'(-15) rounds to is NaN); finite g: the exact
        with np.errstate(invalid="ignore", over="ignore", under="ignore"):
            special = g0 == 0 or not np.isfinite(g0)
            want = g.astype(np.float64) * (d_hi.astype(np.float32) if special else d_hi)
            hi, lo = reference.dd_mul(g, d_hi, d_lo)
        for got in (fastact_call("backward", x, g), fastact_call("forward_backward", x, g)[1]):
            what = f"g={g0}: got {got}, want {want}"
            # an infinite g where f' rounds to 0 in float32 but is not 0: NaN, or (the NumPy
            # backend, in float64) the exact product's infinity
            either = special & (d_hi.astype(np.float32) == 0) & (d_hi != 0)
            with np.errstate(invalid="ignore", over="ignore"):
                want = np.where(either & ~np.isnan(got), g.astype(np.float64) * d_hi,
                                want).astype(np.float32)
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=what)
            np.testing.assert_array_equal(np.isinf(got), np.isinf(want), err_msg=what)
            num = ~np.isnan(want)
            assert np.array_equal(np.signbit(got[num]), np.signbit(want[num])), what
            fin = np.isfinite(want)
            err = reference.ulp_error(got[fin], hi[fin], lo[fin], np.float32, scale=g[fin])
            assert err.max(initial=0) <= BOUND, what


def fastact_call(entry, x, g):
    if entry == "forward_backward":
        return fastact.gelu_forward_backward(x, grad_output=g)
    return fastact.gelu_backward(g, x)


def _sixths_inputs(dtype, seed):
    """x in [-3, 3] where hardswish and hardsigmoid divide by 6: uniformly, at every
    magnitude down to the subnormals (where a sixth can be a tie), and the subnormals
    around 2^p / 3 ulp (below it x (x + 3) = 3x exactly), both signs, +-0 and +-3."""
    rng = np.random.default_rng(seed)
    info = np.finfo(dtype)
    uint = np.uint32 if info.bits == 32 else np.uint64
    third = (1 << (info.nmant + 1)) // 3                      # 2^p / 3 ulp, in subnormal ulp
    around = np.arange(third - 20000, third + 20000, dtype=np.int64).astype(uint).view(dtype)
    subnormal = (rng.integers(1, 1 << info.nmant, 200000, dtype=np.int64)
                 .astype(uint).view(dtype))
    magnitude = 2.0 ** rng.uniform(np.log2(float(info.tiny)), np.log2(3.0), 200000)
    xs = np.concatenate([rng.uniform(-3, 3, 400000), magnitude, subnormal, around,
                         [0.0, 3.0, 1.5, float(info.tiny)]]).astype(dtype)
    return np.concatenate([xs, -xs])


@pytest.mark.parametrize("name", ["hardswish", "hardsigmoid"])
def test_sixths_are_the_divisions_bits(name, dtype, compiled_level):
    """hardswish's x (x + 3) / 6 and (2x + 3) / 6 and hardsigmoid's (x + 3) / 6, with the
    clamps the kernels write in their own ways, give the bits of PyTorch's formulas in the
    input's type (IEEE division), signs of zero included, at every level of the compiled
    kernels (the NumPy backend computes in float64 and rounds once: test_ulp_error)."""
    xs = _sixths_inputs(dtype, 5)
    uint = np.uint32 if np.dtype(dtype).itemsize == 4 else np.uint64
    with np.errstate(under="ignore"):
        if name == "hardswish":
            y_want = np.where(xs >= 3, xs, xs * (xs + dtype(3)) / dtype(6))
            d_want = np.where(xs <= -3, dtype(0), np.where(xs >= 3, dtype(1),
                                                            (dtype(2) * xs + dtype(3)) / dtype(6)))
        else:
            y_want = (np.clip(xs, dtype(-3), dtype(3)) + dtype(3)) / dtype(6)
            d_want = np.where((xs > -3) & (xs < 3), dtype(1) / dtype(6), dtype(0))
    f, grad = getattr(fastact, name), getattr(fastact, name + "_grad")
    for got, want, what in ((f(xs), y_want, "forward"), (grad(xs), d_want, "grad")):
        assert got.dtype == dtype
        bad = got.view(uint) != want.astype(dtype).view(uint)
        assert not bad.any(), (what, xs[bad][:5], got[bad][:5], want[bad][:5])
