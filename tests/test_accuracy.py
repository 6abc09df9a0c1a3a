"""Accuracy: at most 4 ulp from the exact value (mpmath) over the whole finite range.

For every activation and parameter set, forward, derivative and backward, both dtypes
both backends and every SIMD level of the compiled one, on the sweep of reference.sweep: every binade from the smallest normal
to the overflow edge, both signs, the tails, and the kinks. The worst case of each is
printed at the end of the run with FASTACT_ACCURACY_REPORT=1 or -v (conftest).
"""
import numpy as np
import pytest

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
    1e300, and 0), the others at their defaults: the same bound on a sparser sweep."""
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
