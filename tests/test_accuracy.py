"""Accuracy: at most 4 ulp from the exact value (mpmath) over the whole finite range.

For every activation and parameter set, forward, derivative and backward, both dtypes
both backends and every SIMD level of the compiled one, on the sweep of reference.sweep: every binade from the smallest normal
to the overflow edge, both signs, the tails, and the kinks. The worst case of each is
printed at the end of the run (conftest.pytest_terminal_summary).
"""
import numpy as np
import pytest

import reference
from cases import CASES, call, case_id, kinks
from conftest import ACCURACY

BOUND = 4.0


@pytest.mark.parametrize("entry", ["forward", "grad", "backward"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_ulp_error(case, entry, dtype, backend_level):
    name, params = case
    xs = reference.sweep(dtype, kinks(name, params))
    y_hi, y_lo, d_hi, d_lo = reference.reference(name, xs, params, dtype)
    crossing, scale = None, 1.0
    if entry == "forward":
        got, hi, lo = call("forward", name, xs, params), y_hi, y_lo
    else:
        crossing = reference.ZERO_CROSSINGS.get(name)
        if name == "gelu" and params.get("approximate") == "tanh":
            crossing = -0.7524
        if entry == "grad":
            got, hi, lo = call("grad", name, xs, params), d_hi, d_lo
        else:
            g = np.random.default_rng(1).uniform(0.5, 2.0, xs.size).astype(dtype)
            got = call("backward", name, xs, params, grad_output=g)
            hi, lo = reference.dd_mul(g, d_hi, d_lo)
            scale = g
    assert got.dtype == dtype
    err = reference.ulp_error(got, hi, lo, dtype, x=xs, crossing=crossing, scale=scale)
    worst = int(np.argmax(err))
    ACCURACY[(case_id(case), np.dtype(dtype).name, backend_level, entry)] = (float(err[worst]),
                                                                       float(xs[worst]))
    assert err[worst] <= BOUND, (
        f"{entry} {err[worst]:.2f} ulp at x={xs[worst]!r}: got {got[worst]!r}, "
        f"exact {hi[worst] + lo[worst]!r}")
