"""Parity with PyTorch autograd: forward values and input gradients.

Tolerances, in ulp of the dtype under test:
- values at the kinks, 0, -0.0 and NaN: exactly PyTorch's (float64 autograd, rounded);
  forward values at +-0 also in the sign of zero;
- at +-inf: the mathematical limit (PyTorch returns NaN for some; docs/contract.md, Values);
- elsewhere, PyTorch's autograd in the same dtype is the oracle wherever it is itself
  accurate (within 4 ulp of the mpmath value; on this data that is 32% to 100% of the
  points depending on the function, and the test requires a quarter): there fastact is
  within 8 ulp of PyTorch. PyTorch's
  inaccurate points (float32 tails, gradients taken from y) are left to the accuracy
  suite, which holds fastact to 4 ulp everywhere. Derivatives that cross zero (silu,
  gelu, mish) are compared within 4 machine epsilons absolute near the crossing.
"""
import mpmath as mp
import numpy as np
import pytest

import reference
import cases
from cases import CASES, case_id, kinks
from helpers import assert_ulp_close, fastact_values, torch_values

def _check_parity(name, x, params, dtype, min_oracle=0.0):
    y, d = fastact_values(name, x, params)
    yt, dt = torch_values(name, x, params, dtype)
    y_hi, y_lo, d_hi, d_lo = reference.reference(name, x, params, dtype)
    for got, theirs, hi, lo, what in ((y, yt, y_hi, y_lo, "forward"), (d, dt, d_hi, d_lo, "grad")):
        assert got.dtype == dtype
        crossing = cases.crossing(name, params) if what == "grad" else None
        torch_accurate = reference.ulp_error(theirs, hi, lo, dtype, x=x, crossing=crossing) <= 4
        assert torch_accurate.mean() >= min_oracle, f"{name} {what}: PyTorch accurate on too few points"
        apart = reference.ulp_error(got, theirs.astype(np.float64), 0.0, dtype, x=x,
                                    crossing=crossing)
        bad = np.flatnonzero(torch_accurate & (apart > 8))
        assert bad.size == 0, (f"{name} {what} at x={x[bad[0]]!r}: fastact {got[bad[0]]!r}, "
                               f"PyTorch {theirs[bad[0]]!r}, exact {hi[bad[0]]!r}")


def test_classic_check(backend, dtype):
    """x = [-5, 0, 2, 3, 5]: forward and gradient of the six seed activations against
    torch.sigmoid / torch.tanh / F.relu / F.leaky_relu / F.elu with autograd."""
    x = np.array([-5, 0, 2, 3, 5], dtype)
    for name in ("sigmoid", "tanh", "linear", "relu", "leaky_relu", "elu"):
        _check_parity(name, x, {}, dtype)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_random_data(case, backend, dtype):
    name, params = case
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.standard_normal(1200) * 3, rng.uniform(-30, 30, 800)]).astype(dtype)
    _check_parity(name, x, params, dtype, min_oracle=0.25)


def _limit(name, params, dtype, sign):
    y, d = reference.exact(name, mp.mpf(sign + "1e400"), params, np.dtype(dtype).type)
    return np.array(float(y), dtype), np.array(float(d), dtype)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_kinks_and_specials(case, backend, dtype):
    """At the kinks and at 0, -0.0: PyTorch's values, bit for bit where the exact value is
    a number of the dtype (the kink constants), and its sign of zero; NaN: NaN forward and
    PyTorch's gradient; +-inf: the mathematical limit."""
    name, params = case
    k = sorted(set(kinks(name, params)))
    between = [(a + b) / 2 for a, b in zip(k, k[1:]) if np.isfinite(a + b)]
    x = np.array(k + between + [-0.0], dtype)
    _check_parity(name, x, params, dtype)
    y, d = fastact_values(name, x, params)
    y_hi, y_lo, d_hi, d_lo = reference.reference(name, x, params, dtype)
    # PyTorch's vectorized path (the scalar one of its short tensors' tails may differ)
    yt, dt = (v[:x.size] for v in torch_values(name, np.tile(x, 64), params, np.float64))
    for got, hi, lo, what in ((y, y_hi, y_lo, "forward"), (d, d_hi, d_lo, "grad")):
        representable = (lo == 0) & (hi.astype(dtype).astype(np.float64) == hi)
        assert np.array_equal(got[representable], hi[representable].astype(dtype)), \
            f"{name} {what} at {x[representable]}: {got[representable]} != {hi[representable]}"
    zeros = yt == 0
    assert np.array_equal(np.signbit(y[zeros]), np.signbit(yt[zeros])), \
        f"{name}: sign of zero: got {y[zeros]}, PyTorch {yt[zeros]} at x={x[zeros]}"
    # NaN: NaN forward, as PyTorch (its gradient at NaN: see test_nan_propagates)
    yn, _ = fastact_values(name, np.array([np.nan], dtype), params)
    ytn, _ = torch_values(name, np.array([np.nan]), params, np.float64)
    assert np.isnan(yn[0]) and np.isnan(ytn[0])
    # +-inf: the mathematical limit; a zero limit signed as the function approaches it
    for sign, value in (("", np.inf), ("-", -np.inf)):
        yi, di = fastact_values(name, np.array([value], dtype), params)
        ly, ld = _limit(name, params, dtype, sign)
        assert_ulp_close(yi[0], ly, dtype, 0, what=f"{name} forward at {value}")
        assert_ulp_close(di[0], ld, dtype, 0, what=f"{name} grad at {value}")
        near = reference.exact(name, mp.mpf(sign + "1e30"), params, np.dtype(dtype).type)
        for got, lim, side in ((yi[0], ly, near[0]), (di[0], ld, near[1])):
            if lim == 0 and side != 0:
                assert np.signbit(got) == (side < 0), f"{name} at {value}: {got}, limit {lim}"


def test_infinite_limits_for_every_parameter_value(backend, dtype):
    """x = +-inf gives the mathematical limit (mpmath at +-1e100000) for every numeric
    parameter at every magnitude and sign the parameter sweep takes (subnormal ones
    included: a subnormal softplus beta gave NaN at -inf), forward and derivative."""
    failures = []
    for name, params in cases.param_sweep(np.dtype(dtype).name):
        for sign, value in (("", np.inf), ("-", -np.inf)):
            yi, di = fastact_values(name, np.array([value], dtype), params)
            y, d = reference.exact(name, mp.mpf(sign + "1e100000"), params, np.dtype(dtype).type)
            ly, ld = np.array(float(y), dtype), np.array(float(d), dtype)
            for got, lim, what in ((yi[0], ly, "forward"), (di[0], ld, "grad")):
                same = (got == lim) or (np.isnan(got) and np.isnan(lim))
                if not same:
                    failures.append(f"{name} {params} {what} at {value}: {got}, limit {lim}")
    assert not failures, f"{len(failures)} limits missed:\n" + "\n".join(failures[:20])


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_nan_propagates(case, backend, dtype):
    """A NaN input gives NaN from every entry point (value, derivative, backward from x
    and from y, both fused outputs), whatever the parameters; only linear's derivative,
    which does not depend on x, stays 1. PyTorch's vectorized CPU kernels (most of a
    real tensor) give NaN for the smooth functions, its scalar tail 0 or 1 for the
    piecewise ones: fastact is NaN everywhere, so a diverging model is seen."""
    import fastact
    name, params = case
    x = np.full(37, np.nan, dtype)          # vector body and scalar tail of every level
    g = np.full(37, 1.5, dtype)
    const = name == "linear"
    y, d = fastact_values(name, x, params)
    assert np.isnan(y).all()
    assert (d == 1).all() if const else np.isnan(d).all()
    b = getattr(fastact, name + "_backward")(g, x, **params)
    assert (b == g).all() if const else np.isnan(b).all()
    try:
        by = getattr(fastact, name + "_backward")(g, y=x, **params)
    except TypeError:                      # no y-form for these parameters
        by = None
    if by is not None:
        assert (by == g).all() if const else np.isnan(by).all()
    for grad_output in (None, g):
        fy, fd = getattr(fastact, name + "_forward_backward")(x, grad_output=grad_output, **params)
        assert np.isnan(fy).all()
        assert (fd == (1 if grad_output is None else g)).all() if const else np.isnan(fd).all()


def test_spec_limits(backend):
    """The limits the contract spells out (docs/contract.md, Values)."""
    import fastact
    assert np.signbit(fastact.silu(-np.inf)) and fastact.silu(-np.inf) == 0
    assert fastact.softsign(np.inf) == 1.0 and fastact.softsign(-np.inf) == -1.0
    assert fastact.gelu_grad(np.inf) == 1.0
    assert fastact.gelu_grad(-np.inf) == 0.0


def test_more_exact_than_pytorch(backend):
    """Tails where PyTorch loses every digit (docs/accuracy.md), in float32."""
    import fastact
    f32 = np.float32
    assert fastact.sigmoid_grad(f32(30)) == pytest.approx(9.357622968840175e-14, rel=1e-6)
    assert fastact.gelu(f32(-6)) == pytest.approx(-5.91986640e-09, rel=1e-6)
    assert fastact.tanhshrink(f32(1e-8)) == pytest.approx(3.3333333e-25, rel=1e-6)
    assert fastact.elu(f32(-1e-7)) == pytest.approx(-9.9999995e-08, rel=1e-6)


def test_celu_negative_alpha_and_tiny_quotients(backend):
    """The reports that found celu wrong: a negative alpha (e^(x/alpha) grows without
    bound) against PyTorch, and a large alpha with x / alpha subnormal against mpmath."""
    import fastact
    import torch
    x = np.array([-30.0, -50.0, -400.0, -1.0, 0.0], np.float32)
    for alpha in (-0.5, -2.0):
        t = torch.tensor(x, requires_grad=True)
        y = torch.nn.functional.celu(t, alpha=alpha)
        y.backward(torch.ones_like(y))
        assert_ulp_close(fastact.celu(x, alpha=alpha), y.detach().numpy(), np.float32, 1)
        assert_ulp_close(fastact.celu_grad(x, alpha=alpha), t.grad.numpy(), np.float32, 1)
    assert fastact.celu(np.array([-400.0]), alpha=-0.5)[0] == -np.inf
    tiny = np.float32(-1.1867386e-38)
    exact = float(100 * mp.expm1(mp.mpf(float(tiny)) / 100))
    assert_ulp_close(fastact.celu(tiny, alpha=100.0), np.float32(exact), np.float32, 1)
