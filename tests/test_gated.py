"""Gated units (glu, swiglu, geglu, reglu), prelu and rrelu: the contract of docs/gated.md.

References are independent of fastact: PyTorch float64 autograd (the table's expressions,
F.glu, F.prelu, F.rrelu), mpmath (tests/reference.py's exact f and f' of the gate, times
a and grad_output in exact double-double products), math.fsum for prelu's weight
gradient, and NumPy's Generator for rrelu's slopes.

Gated tolerances (docs/gated.md: each output within 4 ulp of the exact value; the
contract's Accuracy section for the rest):
- y = a f(gate), grad_a = g f(gate), grad_gate = g a f'(gate) within 4 ulp of the exact
  product; below the smallest normal number results may be flushed, and where f(gate) or
  f'(gate) is itself below it the flush may be carried times the multiplier (|a|, |g|,
  |g a|), as a backward carries it times |grad_output|; within 0.5 of where f' crosses
  zero (silu, gelu, gelu-tanh) grad_gate is held to 4 machine epsilons times |g a|.
- Non-finite inputs: IEEE products of the multiplier with f(gate) / f'(gate), where
  f(+-inf) is the mathematical limit (docs/contract.md, Values: silu(-inf) = -0.0,
  gelu'(inf) = 1, also where PyTorch gives NaN) and f(NaN) is NaN; so inf * 0 is NaN
  (docs/gated.md). Where the multiplier is infinite and f(gate) is a nonzero number below
  the smallest normal number (which may be flushed to 0), both inf and NaN are accepted.
- PyTorch's float64 autograd must agree with that rule on every NaN and infinity, except
  (i) where PyTorch gives NaN for a limit or inside its own formula (an infinite or huge
  gate) and (ii) reglu's grad_gate, where PyTorch's threshold_backward drops g * a where
  the gate is <= 0 or NaN (fastact: the literal product, NaN in NaN out).
"""
import functools
import math
import pickle

import mpmath as mp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import fastact
import reference
from cases import crossing as crossing_of
from cases import kinks
from helpers import assert_ulp_close, same

BOUND = 4.0
DTYPES = (np.float32, np.float64)

# (fastact function, its parameters, the elementwise f of the gate, f's parameters)
GATED = [("glu", {}, "sigmoid", {}), ("swiglu", {}, "silu", {}), ("geglu", {}, "gelu", {}),
         ("geglu", {"approximate": "tanh"}, "gelu", {"approximate": "tanh"}),
         ("reglu", {}, "relu", {})]


def gid(case):
    return case[0] + "".join(f"-{k}={v}" for k, v in case[1].items())


SUFFIX = {"forward": "", "grad": "_grad", "backward": "_backward",
          "forward_backward": "_forward_backward"}


def fa(case, entry, *args, **kw):
    """fastact's entry point for a gated case (its parameters as keywords)."""
    return getattr(fastact, case[0] + SUFFIX[entry])(*args, **case[1], **kw)


def torch_expr(case, a, gate):
    name, params = case[:2]
    if name == "glu":
        return F.glu(torch.cat([a, gate], dim=-1), dim=-1)
    if name == "swiglu":
        return a * F.silu(gate)
    if name == "geglu":
        return a * F.gelu(gate, approximate=params.get("approximate", "none"))
    return a * F.relu(gate)


def torch_gated(case, a, gate, g=None):
    """(y, grad_a, grad_gate) from PyTorch float64 autograd, 1-D."""
    ta = torch.tensor(np.asarray(a, np.float64).ravel(), requires_grad=True)
    tg = torch.tensor(np.asarray(gate, np.float64).ravel(), requires_grad=True)
    y = torch_expr(case, ta, tg)
    y.backward(torch.ones_like(y) if g is None else
               torch.tensor(np.asarray(g, np.float64).ravel()))
    return y.detach().numpy(), ta.grad.numpy(), tg.grad.numpy()


def torch_elementwise(case, gate):
    """(f(gate), f'(gate)) from PyTorch float64 autograd."""
    t = torch.tensor(np.asarray(gate, np.float64).ravel(), requires_grad=True)
    name, params = case[:2]
    f = {"glu": torch.sigmoid, "swiglu": F.silu, "reglu": F.relu,
         "geglu": lambda v: F.gelu(v, approximate=params.get("approximate", "none"))}[name]
    y = f(t)
    y.backward(torch.ones_like(y))
    return y.detach().numpy(), t.grad.numpy()


def data(shape, dtype=np.float64, seed=0, scale=3.0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * scale).astype(dtype)


def halves(x, dim):
    """a, gate as C-contiguous copies: the first half along dim is a (torch's split)."""
    return [np.ascontiguousarray(h) for h in np.split(x, 2, axis=dim)]


def halved(shape, dim):
    shape = list(shape)
    shape[dim] //= 2
    return tuple(shape)


# ---------------------------------------------------------------------------------------
# exact products in double-double

def two_prod(x, y):
    """x * y = p + e exactly, for float64 arrays. Dekker's product on the mantissas in
    [0.5, 1) (reference.dd_mul splits the values themselves, which overflows above ~1e300,
    where its error term is then dropped); p is inf where the product overflows (e then 0);
    below the smallest normal number e is lost (results there may be flushed anyway)."""
    x, y = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64))
    with np.errstate(all="ignore"):
        mx, ex = np.frexp(x)
        my, ey = np.frexp(y)
        split = 134217729.0
        c = split * mx
        xh = c - (c - mx)
        xl = mx - xh
        c = split * my
        yh = c - (c - my)
        yl = my - yh
        pm = mx * my
        em = ((xh * yh - pm) + xh * yl + xl * yh) + xl * yl
        e = ex + ey
        p = np.ldexp(pm, e)
        err = np.ldexp(em, e)
    return p, np.where(np.isfinite(p) & np.isfinite(err), err, 0.0)


def dd_scale(m, hi, lo):
    """m * (hi + lo) as a double-double."""
    p, e = two_prod(m, hi)
    with np.errstate(all="ignore"):
        return p, e + np.asarray(m, np.float64) * lo


def dd_scale2(m_hi, m_lo, hi, lo):
    """(m_hi + m_lo) * (hi + lo) as a double-double (m_lo * lo dropped: ~2^-106)."""
    p, e = two_prod(m_hi, hi)
    with np.errstate(all="ignore"):
        return p, e + m_hi * lo + m_lo * hi


def gated_error(got, hi, lo, dtype, mult, gate=None, crossing=None):
    """ulp error of got against hi + lo (reference.ulp_error), with the flush allowance
    scaled by max(1, |mult|) (the result's own flush, or f / f' flushed times the
    multiplier) and, within 0.5 of the derivative's zero crossing, 4 machine epsilons
    times |mult| absolute."""
    mult = np.abs(np.asarray(mult, np.float64))
    err = reference.ulp_error(got, hi, lo, dtype, scale=np.maximum(1.0, mult))
    if crossing is not None:
        near = np.abs(np.asarray(gate, np.float64) - crossing) < 0.5
        with np.errstate(all="ignore"):
            absolute = np.abs((np.asarray(got, np.float64) - hi) - lo) / (
                float(np.finfo(dtype).eps) * mult)
        err = np.where(near & ~np.isnan(absolute), np.minimum(err, absolute), err)
    return err


def exact_gated(case, a, gate, g, dtype):
    """Exact (y, grad_a, grad_gate) as (hi, lo) pairs at finite a, gate (and g: None for
    grad_output = 1): a f(gate), g f(gate), g a f'(gate)."""
    f_hi, f_lo, d_hi, d_lo = _reference_at(case[2], case[3], gate, dtype)
    y = dd_scale(a, f_hi, f_lo)
    if g is None:
        return y, (f_hi, f_lo), dd_scale(a, d_hi, d_lo)
    ga = dd_scale(g, f_hi, f_lo)
    p, e = two_prod(g, a)
    return y, ga, dd_scale2(p, e, d_hi, d_lo)


def _reference_at(name, params, xs, dtype):
    """reference.reference at xs (any order, repeats): computed once per distinct value."""
    xs = np.asarray(xs, dtype)
    uniq, inverse = np.unique(xs, return_inverse=True)
    ref = reference.reference(name, uniq, params, dtype)
    return tuple(r[inverse.ravel()].reshape(xs.shape) for r in ref)


# ---------------------------------------------------------------------------------------
# names, entry points, classes

def test_names_are_public():
    for name in ("glu", "swiglu", "geglu", "reglu", "prelu", "rrelu"):
        for suffix in SUFFIX.values():
            assert callable(getattr(fastact, name + suffix)), name + suffix
            assert name + suffix in fastact.__all__, name + suffix
    for cls in ("GLU", "SwiGLU", "GeGLU", "ReGLU", "PReLU", "RReLU"):
        assert isinstance(getattr(fastact, cls), type) and cls in fastact.__all__


def test_listed():
    """fastact.ACTIVATIONS lists the elementwise activations (one array in, one out);
    the gated units and the weighted ones have their own lists, in docs/gated.md's order."""
    assert tuple(fastact.GATED) == ("glu", "swiglu", "geglu", "reglu")
    assert tuple(fastact.WEIGHTED) == ("prelu", "rrelu")
    assert "GATED" in fastact.__all__ and "WEIGHTED" in fastact.__all__


# ---------------------------------------------------------------------------------------
# accuracy: 4 ulp of the exact value over pairs (a, gate) covering the whole range

A_VALUES = {
    "float32": (1.0, -1.0, 0.7431, -3.1, 1.3 * 2.0 ** -100, -1.7 * 2.0 ** -120,
                1.1 * 2.0 ** 120, -1.9 * 2.0 ** 100),
    "float64": (1.0, -1.0, 0.7431, -3.1, 1.3 * 2.0 ** -1000, -1.7 * 2.0 ** -900,
                1.1 * 2.0 ** 1000, -1.9 * 2.0 ** 800),
}


@functools.lru_cache(maxsize=None)
def _sweep_pairs(elem, params_key, dtype_name):
    """(a, gate, g): every gate of reference.sweep (with f's kinks) times each of
    A_VALUES, and a grad_output grid of both signs in [0.5, 2]."""
    dtype = np.dtype(dtype_name).type
    params = dict(params_key)
    xs = reference.sweep(dtype, kinks(elem, params))
    if elem == "gelu" and params.get("approximate", "none") == "none" and dtype == np.float64:
        # mpmath's erfc far in the tail costs up to 30 ms a point (21 s for the sweep);
        # below -1e10 gelu and gelu' are far below the smallest subnormal (the flush
        # region): one point in 40 of that range is kept
        xs = xs[(xs > -1e10) | (np.arange(xs.size) % 40 == 0)]
    a = np.repeat(np.array(A_VALUES[dtype_name], dtype), xs.size)
    gate = np.tile(xs, len(A_VALUES[dtype_name]))
    rng = np.random.default_rng(1)
    g = (rng.uniform(0.5, 2.0, a.size) * rng.choice([-1.0, 1.0], a.size)).astype(dtype)
    for arr in (a, gate, g):
        arr.flags.writeable = False
    return a, gate, g


@pytest.mark.parametrize("entry", ["forward", "grad", "backward", "forward_backward",
                                   "forward_backward_ones"])
@pytest.mark.parametrize("case", GATED, ids=gid)
def test_ulp_error(case, entry, dtype, backend_level):
    a, gate, g = _sweep_pairs(case[2], tuple(sorted(case[3].items())), np.dtype(dtype).name)
    crossing = crossing_of(case[2], case[3])
    with_g = entry in ("backward", "forward_backward")
    (y_hi, y_lo), (ga_hi, ga_lo), (gg_hi, gg_lo) = exact_gated(case, a, gate, g if with_g else None,
                                                                dtype)
    if entry == "forward":
        outputs = {"y": fa(case, "forward", a, gate)}
    elif entry == "grad":
        outputs = dict(zip(("grad_a", "grad_gate"), fa(case, "grad", a, gate)))
    elif entry == "backward":
        outputs = dict(zip(("grad_a", "grad_gate"), fa(case, "backward", g, a, gate)))
    elif entry == "forward_backward":
        outputs = dict(zip(("y", "grad_a", "grad_gate"),
                           fa(case, "forward_backward", a, gate, grad_output=g)))
    else:
        outputs = dict(zip(("y", "grad_a", "grad_gate"), fa(case, "forward_backward", a, gate)))
    g_mult = g.astype(np.float64) if with_g else np.ones(a.size)
    expected = {"y": (y_hi, y_lo, a.astype(np.float64), None),
                "grad_a": (ga_hi, ga_lo, g_mult, None),
                "grad_gate": (gg_hi, gg_lo, g_mult * a, crossing)}
    failures = []
    for what, got in outputs.items():
        assert got.dtype == dtype and got.shape == a.shape, what
        hi, lo, mult, cross = expected[what]
        err = gated_error(got, hi, lo, dtype, mult, gate, cross)
        worst = int(np.argmax(err))
        if err[worst] > BOUND:
            failures.append(f"{what}: {err[worst]:.2f} ulp ({np.sum(err > BOUND)} points) at "
                            f"a={a[worst]!r}, gate={gate[worst]!r}"
                            + (f", g={g[worst]!r}" if with_g else "")
                            + f": got {got[worst]!r}, exact {hi[worst] + lo[worst]!r}")
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------------------------------
# special values against PyTorch float64 autograd and the exact values

def special_values(case, dtype):
    info = np.finfo(dtype)
    vals = [0.0, -0.0, np.inf, -np.inf, np.nan, float(info.tiny), -float(info.tiny),
            float(info.smallest_subnormal), -float(info.tiny) / 4, float(info.max),
            -float(info.max), 1.0, -1.0, 0.5, 2.5, -3.7, 30.0, -30.0]
    vals += [float(k) for k in kinks(case[2], case[3])]
    return np.array(vals, dtype)


def _f_values(case, gates, dtype):
    """f(gate), f'(gate) as float64 (exact values rounded; the limit at +-inf, from
    mpmath at +-1e400 as test_parity_torch takes it; NaN at NaN), and whether each is a
    nonzero number below the dtype's smallest normal number."""
    tiny = float(np.finfo(dtype).tiny)
    fv, dv = np.empty(gates.size), np.empty(gates.size)
    for i, x in enumerate(gates.astype(np.float64)):
        if np.isnan(x):
            fv[i] = dv[i] = np.nan
            continue
        arg = mp.mpf(float(x)) if np.isfinite(x) else mp.mpf(("-" if x < 0 else "") + "1e400")
        y, d = reference.exact(case[2], arg, case[3], np.dtype(dtype).type)
        fv[i], dv[i] = float(y), float(d)
    small = lambda v: (v != 0) & (np.abs(v) < tiny)  # noqa: E731
    return fv, dv, small(fv), small(dv)


@pytest.mark.parametrize("gval", [None, -0.75])
@pytest.mark.parametrize("case", GATED, ids=gid)
def test_special_values(case, gval, backend, dtype):
    vals = special_values(case, dtype)
    A, G = np.meshgrid(vals, vals, indexing="ij")
    a, gate = A.ravel().copy(), G.ravel().copy()
    g = None if gval is None else np.full(a.size, gval, dtype)
    g64 = np.ones(a.size) if g is None else g.astype(np.float64)
    a64, gate64 = a.astype(np.float64), gate.astype(np.float64)
    if g is None:
        y, ga, gg = fa(case, "forward_backward", a, gate)
        assert same((ga, gg), fa(case, "grad", a, gate))
    else:
        y, ga, gg = fa(case, "forward_backward", a, gate, grad_output=g)
        assert same((ga, gg), fa(case, "backward", g, a, gate))
    assert same(y, fa(case, "forward", a, gate))

    fv, dv, f_small, d_small = _f_values(case, gate, dtype)
    with np.errstate(all="ignore"):
        formula = {"y": a64 * fv, "grad_a": g64 * fv, "grad_gate": (g64 * a64) * dv}
    mult = {"y": a64, "grad_a": g64, "grad_gate": g64 * a64}
    inputs_finite = {"y": np.isfinite(a64) & np.isfinite(gate64),
                     "grad_a": np.isfinite(gate64),
                     "grad_gate": np.isfinite(a64) & np.isfinite(gate64)}
    ambiguous = {"y": np.isinf(a64) & f_small, "grad_a": np.zeros(a.size, bool),
                 "grad_gate": np.isinf(mult["grad_gate"]) & d_small}
    torch_out = dict(zip(("y", "grad_a", "grad_gate"), torch_gated(case, a, gate, g)))
    torch_f = torch_elementwise(case, gate)
    got = {"y": y, "grad_a": ga, "grad_gate": gg}

    # finite inputs (of that output): the exact value
    safe = lambda v: np.where(np.isfinite(v), v, 0).astype(dtype)  # noqa: E731
    ex = exact_gated(case, safe(a), safe(gate), g, dtype)
    crossing = crossing_of(case[2], case[3])
    for (hi, lo), what in zip(ex, ("y", "grad_a", "grad_gate")):
        assert got[what].dtype == dtype and got[what].shape == a.shape
        fin = inputs_finite[what]
        err = gated_error(got[what][fin], hi[fin], lo[fin], dtype, mult[what][fin], gate[fin],
                          crossing if what == "grad_gate" else None)
        bad = np.flatnonzero(err > BOUND)
        assert bad.size == 0, (f"{what} at a={a[fin][bad[0]]!r}, gate={gate[fin][bad[0]]!r}: "
                               f"got {got[what][fin][bad[0]]!r}, exact "
                               f"{hi[fin][bad[0]] + lo[fin][bad[0]]!r} ({err[bad[0]]:.1f} ulp)")

    for what in ("y", "grad_a", "grad_gate"):
        # an infinite or NaN input: the IEEE product with the limit, exactly
        other = ~inputs_finite[what] & ~ambiguous[what]
        with np.errstate(all="ignore"):
            expected = formula[what].astype(dtype)
        bad = np.flatnonzero(other & ~np.array([same(u, v) for u, v in
                                                zip(got[what], expected)]))
        assert bad.size == 0, (f"{what} at a={a[bad[0]]!r}, gate={gate[bad[0]]!r}: got "
                               f"{got[what][bad[0]]!r}, expected {expected[bad[0]]!r}")
        amb = np.flatnonzero(ambiguous[what])
        assert np.all(np.isnan(got[what][amb]) | (np.isinf(got[what][amb]) & (
            np.sign(got[what][amb]) == np.sign(formula[what][amb])))), what

        # PyTorch agrees on every NaN and infinity, but for the documented differences
        t, fm = torch_out[what], formula[what]
        torch_nan_only = np.isnan(t) & ~np.isnan(fm) & ~ambiguous[what]
        # PyTorch's NaN where: a limit (inf gate), its formula overflowing (huge gate), or
        # its own f(gate) / f'(gate) 0 where the exact one is not (gelu's 1 + erf(x)
        # cancels to 0 for x < -8): inf * 0
        tf = torch_f[1] if what == "grad_gate" else torch_f[0]
        exact_f = dv if what == "grad_gate" else fv
        explained = np.isinf(gate64) | (np.abs(gate64) > 1e100) | ((tf == 0) & (exact_f != 0))
        assert not np.any(torch_nan_only & ~explained), (
            what, a[torch_nan_only & ~explained], gate[torch_nan_only & ~explained])
        formula_nan_only = np.isnan(fm) & ~np.isnan(t)
        if not (case[0] == "reglu" and what == "grad_gate"):
            assert not np.any(formula_nan_only), (what, a[formula_nan_only],
                                                  gate[formula_nan_only], t[formula_nan_only])
        else:           # threshold_backward: 0 where the gate is <= 0, g * a where NaN
            assert np.all((gate64 <= 0) | np.isnan(gate64) | ~formula_nan_only)
        both = ~np.isnan(t) & ~np.isnan(fm)
        assert np.array_equal(np.isinf(t[both]), np.isinf(fm[both])), what
        inf = both & np.isinf(t)
        assert np.array_equal(np.sign(t[inf]), np.sign(fm[inf])), what

    # sign of an exact zero of y (a = 0, or f(gate) exactly 0): PyTorch's
    exact_zero = (np.isfinite(a64) & (a64 == 0) & ~np.isnan(fv)) | (np.isfinite(a64) & (fv == 0))
    zeros = exact_zero & (torch_out["y"] == 0)
    assert np.all(y[zeros] == 0)
    assert np.array_equal(np.signbit(y[zeros]), np.signbit(torch_out["y"][zeros])), (
        a[zeros], gate[zeros], y[zeros], torch_out["y"][zeros])


@pytest.mark.parametrize("case", GATED, ids=gid)
def test_random_data_vs_torch(case, backend, dtype):
    """Where PyTorch's float64 autograd rounded to the dtype is itself within 1 ulp of the
    exact value (required on at least a quarter of the points, as tests/test_parity_torch.py
    does: its float64 gelu-tanh gradient is that accurate on 48%), fastact is within
    4 + 1 ulp of it."""
    rng = np.random.default_rng(11)
    n = 1500
    a = (rng.standard_normal(n) * 3).astype(dtype)
    gate = np.concatenate([rng.standard_normal(n // 2) * 3,
                           rng.uniform(-12, 12, n - n // 2)]).astype(dtype)
    g = rng.uniform(-2, 2, n).astype(dtype)
    got = fa(case, "forward_backward", a, gate, grad_output=g)
    theirs = torch_gated(case, a, gate, g)
    ex = exact_gated(case, a, gate, g, dtype)
    mults = (a.astype(np.float64), g.astype(np.float64), g.astype(np.float64) * a)
    crossing = crossing_of(case[2], case[3])
    for i, what in enumerate(("y", "grad_a", "grad_gate")):
        cross = crossing if what == "grad_gate" else None
        t = theirs[i].astype(dtype).astype(np.float64)
        accurate = gated_error(t, *ex[i], dtype, mults[i], gate, cross) <= 1
        assert accurate.mean() >= 0.25, f"{what}: PyTorch accurate on {accurate.mean():.0%}"
        apart = gated_error(got[i], t, 0.0, dtype, mults[i], gate, cross)
        bad = np.flatnonzero(accurate & (apart > BOUND + 1))
        assert bad.size == 0, (f"{what} at a={a[bad[0]]!r}, gate={gate[bad[0]]!r}: fastact "
                               f"{got[i][bad[0]]!r}, PyTorch {theirs[i][bad[0]]!r}")


@pytest.mark.parametrize("case", GATED, ids=gid)
def test_entry_points_agree(case, backend, dtype):
    """forward_backward is (forward, grad) and (forward, backward) bit for bit, in both
    forms (as every fastact function's, tests/test_api.py)."""
    rng = np.random.default_rng(3)
    a = (rng.standard_normal(500) * 4).astype(dtype)
    gate = (rng.standard_normal(500) * 4).astype(dtype)
    g = rng.uniform(-2, 2, 500).astype(dtype)
    y = fa(case, "forward", a, gate)
    ga, gg = fa(case, "grad", a, gate)
    assert same(fa(case, "forward_backward", a, gate), (y, ga, gg))
    ba, bg = fa(case, "backward", g, a, gate)
    assert same(fa(case, "forward_backward", a, gate, grad_output=g), (y, ba, bg))
    # grad_a of the backward is g * f(gate): g times grad's grad_a, within its rounding
    expected = (g.astype(np.float64) * ga).astype(dtype)
    assert np.all(np.abs(ba.astype(np.float64) - expected) <= np.spacing(np.abs(expected)))
    x = np.concatenate([a, gate])
    assert same(fa(case, "forward_backward", x, 0), (y, np.concatenate([ga, gg])))
    assert same(fa(case, "forward_backward", x, 0, grad_output=g),
                (y, np.concatenate([ba, bg])))


@pytest.mark.parametrize("dim", [0, 1, 2, -1, -2, -3])
@pytest.mark.parametrize("case", GATED, ids=gid)
def test_one_array_matches_torch(case, dim, backend):
    """The one-array form splits as torch.nn.functional.glu does (x.chunk(2, dim):
    a first): values and grad_x against PyTorch's autograd on x itself."""
    x = data((4, 6, 8), np.float64, seed=3)
    go = data(halved(x.shape, dim), np.float64, seed=4)
    t = torch.tensor(x, requires_grad=True)
    if case[0] == "glu":
        yt = F.glu(t, dim)
    else:
        ta, tg = t.chunk(2, dim)
        yt = torch_expr(case, ta, tg)
    yt.backward(torch.tensor(go))
    y, gx = fa(case, "forward_backward", x, dim, grad_output=go)
    assert y.shape == yt.shape and gx.shape == x.shape
    # PyTorch's own float64 gelu loses digits to 1 + erf(x) for x < 0: 8 ulp, or 1000
    # epsilons absolute (a wrong split is off by the values themselves)
    assert_ulp_close(y, yt.detach().numpy(), np.float64, 8, atol_eps=1000, what="y")
    assert_ulp_close(gx, t.grad.numpy(), np.float64, 8, atol_eps=1000, what="grad_x")


# ---------------------------------------------------------------------------------------
# the one-array form: every dim, every layout; equal to the two-array form

SHAPES = [(8,), (6, 4), (4, 2, 6), (2, 4, 6, 2)]
SHAPE_DIMS = [(s, d) for s in SHAPES for d in range(-len(s), len(s))]


def _layouts(x):
    """Views holding x's values: C, F, negative strides, a strided slice, and (3-D and
    up) an axis permutation of a C array (neither C nor F)."""
    out = {"C": x, "F": np.asfortranarray(x)}
    out["negative"] = np.ascontiguousarray(x[::-1])[::-1]
    big = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), x.dtype)
    big[..., ::2] = x
    out["strided"] = big[..., ::2]
    if x.ndim >= 3:
        out["permuted"] = np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 0, -1)), -1, 0)
    for name, v in out.items():
        assert np.array_equal(v, x), name
    return out


@pytest.mark.parametrize("shape, dim", SHAPE_DIMS, ids=lambda v: str(v).replace(" ", ""))
@pytest.mark.parametrize("case", GATED, ids=gid)
def test_one_array_every_dim_and_layout(case, shape, dim, backend, dtype):
    x = data(shape, dtype, seed=len(shape) + dim)
    a, gate = halves(x, dim)
    go = data(a.shape, dtype, seed=99)
    y2 = fa(case, "forward", a, gate)
    grad2 = np.concatenate(fa(case, "grad", a, gate), axis=dim)
    back2 = np.concatenate(fa(case, "backward", go, a, gate), axis=dim)
    fb_ones = fa(case, "forward_backward", a, gate)
    fb2 = (fb_ones[0], np.concatenate(fb_ones[1:], axis=dim))
    fb_g = fa(case, "forward_backward", a, gate, grad_output=go)
    fbg2 = (fb_g[0], np.concatenate(fb_g[1:], axis=dim))
    assert y2.shape == halved(shape, dim) and same(y2, fb_ones[0])
    assert same(grad2, fb2[1])
    for layout, v in _layouts(x).items():
        for kw in ({"dim": dim},):
            y = fa(case, "forward", v, **kw)
            assert y.shape == halved(shape, dim) and y.dtype == dtype
            assert same(y, y2), (layout, kw)
            gr = fa(case, "grad", v, **kw)
            assert gr.shape == shape and same(gr, grad2), (layout, kw)
            assert same(fa(case, "backward", go, v, **kw), back2), (layout, kw)
            r = fa(case, "forward_backward", v, **kw)
            assert isinstance(r, tuple) and len(r) == 2 and same(r, fb2), (layout, kw)
            r = fa(case, "forward_backward", v, grad_output=go, **kw)
            assert len(r) == 2 and same(r, fbg2), (layout, kw)
        assert same(fa(case, "forward", v, dim), y2), layout          # dim positional
        assert same(fa(case, "backward", go, v, dim), back2), layout
    if dim == -1:
        assert same(fa(case, "forward", x), y2)                        # the default dim
        assert same(fa(case, "grad", x), grad2)


@pytest.mark.parametrize("shape, dim", [((8,), 0), ((6, 4), 0), ((6, 4), -1), ((4, 2, 6), 1),
                                        ((2, 4, 6, 2), -3)], ids=lambda v: str(v).replace(" ", ""))
@pytest.mark.parametrize("case", GATED, ids=gid)
def test_axis_alias(case, shape, dim, backend):
    """axis= (NumPy's word) is accepted instead of dim, by every entry point."""
    x = data(shape, seed=2)
    go = data(halved(shape, dim), seed=3)
    assert same(fa(case, "forward", x, axis=dim), fa(case, "forward", x, dim=dim))
    assert same(fa(case, "grad", x, axis=dim), fa(case, "grad", x, dim=dim))
    assert same(fa(case, "backward", go, x, axis=dim), fa(case, "backward", go, x, dim=dim))
    assert same(fa(case, "forward_backward", x, axis=dim), fa(case, "forward_backward", x, dim=dim))
    assert same(fa(case, "forward_backward", x, axis=dim, grad_output=go),
                fa(case, "forward_backward", x, dim=dim, grad_output=go))
    for call in _all_entries_one(case, np.ones((3, 4)), axis=0):       # odd along axis
        with pytest.raises(ValueError):
            call()


def test_geglu_approximate_positions(backend):
    x = data((4, 6))
    a, gate = halves(x, 0)
    expected = fastact.geglu(x, dim=0, approximate="tanh")
    assert not same(expected, fastact.geglu(x, dim=0))
    assert same(fastact.geglu(x, 0, "tanh"), expected)
    assert same(fastact.geglu(a, gate, approximate="tanh"), expected)
    assert same(fastact.geglu_grad(x, 0, "tanh"),
                np.concatenate(fastact.geglu_grad(a, gate, approximate="tanh"), axis=0))
    go = data(a.shape, seed=5)
    assert same(fastact.geglu_backward(go, x, 0, "tanh"),
                np.concatenate(fastact.geglu_backward(go, a, gate, approximate="tanh"), 0))
    with pytest.raises(ValueError):
        fastact.geglu(x, 0, "fast")
    with pytest.raises(ValueError):
        fastact.geglu(a, gate, approximate="fast")


@pytest.mark.parametrize("case", GATED, ids=gid)
def test_two_array_layouts(case, backend, dtype):
    """Two arrays of any layout give the results of C copies; C- or F-contiguous inputs
    give results of that layout (docs/contract.md, Arrays)."""
    a, gate = data((6, 5), dtype, 1), data((6, 5), dtype, 2)
    go = data((6, 5), dtype, 3)
    expected = (fa(case, "forward", a, gate), fa(case, "grad", a, gate),
                fa(case, "backward", go, a, gate))
    fa_, fg = np.asfortranarray(a), np.asfortranarray(gate)
    r = (fa(case, "forward", fa_, fg), fa(case, "grad", fa_, fg),
         fa(case, "backward", np.asfortranarray(go), fa_, fg))
    assert same(r, expected)
    assert r[0].flags.f_contiguous and all(o.flags.f_contiguous for o in r[1] + r[2])
    assert expected[0].flags.c_contiguous
    va, vg = a[::-1][::-1], np.zeros((12, 5), dtype)
    vg[::2] = gate
    r = (fa(case, "forward", va, vg[::2]), fa(case, "grad", va, vg[::2]),
         fa(case, "backward", go, va, vg[::2]))
    assert same(r, expected)


@pytest.mark.parametrize("case", GATED, ids=gid)
def test_empty_arrays(case, backend, dtype):
    for shape, dim in [((0,), 0), ((0, 4), 0), ((0, 4), 1), ((4, 0), 0), ((4, 0), -1),
                       ((2, 0, 6), -1)]:
        x = np.empty(shape, dtype)
        h = halved(shape, dim)
        y = fa(case, "forward", x, dim=dim)
        assert y.shape == h and y.dtype == dtype
        assert fa(case, "grad", x, dim=dim).shape == shape
        assert fa(case, "backward", np.empty(h, dtype), x, dim=dim).shape == shape
        r = fa(case, "forward_backward", x, dim=dim)
        assert r[0].shape == h and r[1].shape == shape
        a, gate = np.empty(h, dtype), np.empty(h, dtype)
        assert fa(case, "forward", a, gate).shape == h
        assert [o.shape for o in fa(case, "grad", a, gate)] == [h, h]
        assert [o.shape for o in fa(case, "forward_backward", a, gate)] == [h, h, h]


def _go_dtype(x):
    dt = np.asarray(x).dtype
    return dt if dt.kind == "f" else np.float64


def _all_entries_one(case, x, **kw):
    """Calls of every entry point, one-array form (grad_output of ones of the halved
    shape, where there is one, in x's float type)."""
    dim = kw.get("dim", kw.get("axis", -1))
    try:
        h = halved(np.shape(x), dim)
    except (IndexError, TypeError):
        h = np.shape(x)
    go = np.ones(h, _go_dtype(x))
    return [lambda: fa(case, "forward", x, **kw), lambda: fa(case, "grad", x, **kw),
            lambda: fa(case, "backward", go, x, **kw),
            lambda: fa(case, "forward_backward", x, **kw),
            lambda: fa(case, "forward_backward", x, grad_output=go, **kw)]


def _all_entries_two(case, a, gate, go=None):
    go = np.ones(np.shape(a), _go_dtype(a)) if go is None else go
    return [lambda: fa(case, "forward", a, gate), lambda: fa(case, "grad", a, gate),
            lambda: fa(case, "backward", go, a, gate),
            lambda: fa(case, "forward_backward", a, gate),
            lambda: fa(case, "forward_backward", a, gate, grad_output=go)]


@pytest.mark.parametrize("case", GATED, ids=gid)
def test_errors(case, backend):
    for x, kw in [(np.ones(3), {}), (np.ones(3), {"dim": 0}), (np.ones((4, 3)), {"dim": 1}),
                  (np.ones((4, 3)), {"dim": -1}), (np.ones((3, 4)), {"dim": 0}),
                  (np.ones((2, 5, 2)), {"dim": 1})]:
        for call in _all_entries_one(case, x, **kw):
            with pytest.raises(ValueError):                    # odd size along dim
                call()
    for x in (np.array(1.0), 2.0):
        for call in _all_entries_one(case, x):
            with pytest.raises(ValueError):                    # no dimension to split
                call()
    for a, gate in [(np.ones(3), np.ones(4)), (np.ones((2, 3)), np.ones((3, 2))),
                    (np.ones((2, 3)), np.ones((1, 3))), (np.ones((2, 3)), np.ones(3)),
                    (np.ones(1), np.ones(3))]:
        for call in _all_entries_two(case, a, gate):
            with pytest.raises(ValueError):                    # no broadcasting
                call()
    x = np.ones((4, 6))
    for call in _all_entries_one(case, x, dim=0, axis=0):
        with pytest.raises((TypeError, ValueError)):           # dim and axis both
            call()
    for call in _all_entries_one(case, x, dim=2) + _all_entries_one(case, x, dim=-3):
        with pytest.raises((ValueError, IndexError)):          # no such dim
            call()
    with pytest.raises(ValueError):                            # grad_output's shape
        fa(case, "backward", np.ones((4, 6)), x, dim=0)
    with pytest.raises(ValueError):
        fa(case, "backward", np.ones((4, 3)), x, dim=0)
    with pytest.raises(ValueError):
        fa(case, "forward_backward", x, dim=0, grad_output=np.ones((4, 6)))
    a, gate = np.ones((2, 3)), np.ones((2, 3))
    with pytest.raises(ValueError):
        fa(case, "backward", np.ones((3, 2)), a, gate)
    with pytest.raises(ValueError):
        fa(case, "forward_backward", a, gate, grad_output=np.ones(6))


@pytest.mark.parametrize("case", GATED, ids=gid)
def test_dtypes(case, backend):
    x = np.array([[-3.0, -1.0, -0.5, 0.0], [0.5, 2.0, 7.0, -2.5]])
    xa, xg = halves(x, -1)
    # integers and bool: float64
    for dt in (np.int8, np.int32, np.int64, np.uint8, np.bool_):
        xi = np.abs(x).astype(dt) if dt in (np.uint8, np.bool_) else x.astype(dt)
        for call_i, call_f in zip(_all_entries_one(case, xi), _all_entries_one(case, xi.astype(float))):
            ri, rf = call_i(), call_f()
            for u in (ri if isinstance(ri, tuple) else (ri,)):
                assert u.dtype == np.float64, dt
            assert same(ri, rf), dt
        ai, gi = halves(xi, -1)
        r = fa(case, "forward_backward", ai, gi)
        assert all(u.dtype == np.float64 for u in r) and same(
            r, fa(case, "forward_backward", ai.astype(float), gi.astype(float)))
    # float16: computed in float32, returned as float16: the float32 result rounded once,
    # bit for bit, but exact gelu's and sigmoid's gates (geglu, glu) in the compiled backend,
    # whose 16-bit types have their own float32 math (test_half's OWN_16BIT_MATH): within
    # 1 ulp of it
    own = case[2] in ("gelu", "sigmoid") and case[3] == {} and backend == "compiled"
    x16 = x.astype(np.float16)
    a16, g16 = halves(x16, -1)
    for call16, call32 in zip(_all_entries_one(case, x16) + _all_entries_two(case, a16, g16),
                              _all_entries_one(case, x16.astype(np.float32))
                              + _all_entries_two(case, a16.astype(np.float32),
                                                 g16.astype(np.float32))):
        r16, r32 = call16(), call32()
        r16 = r16 if isinstance(r16, tuple) else (r16,)
        r32 = r32 if isinstance(r32, tuple) else (r32,)
        for u, v in zip(r16, r32):
            assert u.dtype == np.float16
            if own:
                assert_ulp_close(u, v.astype(np.float16), np.float16, 1)
            else:
                assert same(u, v.astype(np.float16))
    # mixed float types: promoted
    r = fa(case, "forward", xa.astype(np.float32), xg)
    assert r.dtype == np.float64 and same(r, fa(case, "forward", xa.astype(np.float32).astype(float), xg))
    # Python numbers and lists; 0-d pairs give a NumPy scalar
    assert same(fa(case, "forward", x.tolist()), fa(case, "forward", x))
    assert same(fa(case, "forward", xa.tolist(), xg.tolist()), fa(case, "forward", xa, xg))
    s = fa(case, "forward", 1.5, 2.5)            # the second argument a float: the gate
    assert type(s) is np.float64 and s == fa(case, "forward", np.array([1.5]), np.array([2.5]))[0]
    assert isinstance(fa(case, "grad", 1.5, 2.5)[0], np.generic)
    s32 = fa(case, "forward", np.float32(1.5), np.float32(2.5))
    assert type(s32) is np.float32
    # the second argument an integer: the dim
    assert same(fa(case, "forward", x, 0), fa(case, "forward", x, dim=0))
    # complex and other types: TypeError
    for bad in (x.astype(complex), np.array([["a", "b"]]), x.astype(object)):
        for call in _all_entries_one(case, bad):
            with pytest.raises(TypeError):
                call()
        ba, bg = halves(bad, -1)
        for call in _all_entries_two(case, ba, xg) + _all_entries_two(case, xa, bg):
            with pytest.raises(TypeError):
                call()


# ---------------------------------------------------------------------------------------
# out= and grad_out=

@pytest.mark.parametrize("case", GATED, ids=gid)
def test_out(case, backend, dtype):
    x = data((4, 6), dtype)
    a, gate = halves(x, -1)
    go = data((4, 3), dtype, seed=7)
    # one array
    expected = fa(case, "forward", x)
    for o in (np.full((4, 3), 7, dtype), np.empty((3, 4), dtype).T, np.empty((4, 6), dtype)[:, ::2]):
        assert fa(case, "forward", x, out=o) is o and same(o, expected)
    o = np.full((4, 6), 7, dtype)
    assert fa(case, "grad", x, out=o) is o and same(o, fa(case, "grad", x))
    assert fa(case, "backward", go, x, out=o) is o and same(o, fa(case, "backward", go, x))
    o1, o2 = np.empty((4, 3), dtype), np.empty((4, 6), dtype)
    for kw in ({}, {"grad_output": go}):
        r = fa(case, "forward_backward", x, out=o1, grad_out=o2, **kw)
        assert r[0] is o1 and r[1] is o2 and same(r, fa(case, "forward_backward", x, **kw))
    # two arrays: gradient outputs are pairs
    assert fa(case, "forward", a, gate, out=o1) is o1 and same(o1, expected)
    oa, og = np.full((4, 3), 7, dtype), np.empty((3, 4), dtype).T
    r = fa(case, "grad", a, gate, out=(oa, og))
    assert r[0] is oa and r[1] is og and same(r, fa(case, "grad", a, gate))
    r = fa(case, "backward", go, a, gate, out=(oa, og))
    assert r[0] is oa and r[1] is og and same(r, fa(case, "backward", go, a, gate))
    assert same(fa(case, "grad", a, gate, out=None), fa(case, "grad", a, gate))
    for kw in ({}, {"grad_output": go}):
        o = np.empty((4, 3), dtype)
        r = fa(case, "forward_backward", a, gate, out=o, grad_out=(oa, og), **kw)
        assert r[0] is o and r[1] is oa and r[2] is og
        assert same(r, fa(case, "forward_backward", a, gate, **kw))
        r = fa(case, "forward_backward", a, gate, grad_out=(oa, og), **kw)
        assert r[1] is oa and r[2] is og


@pytest.mark.parametrize("case", GATED, ids=gid)
def test_bad_out_raises_before_writing(case, backend):
    x = data((4, 6))
    a, gate = halves(x, -1)
    go = np.ones((4, 3))
    other = np.float32                                  # the data are float64

    def full(shape, dt=np.float64):
        return np.full(shape, 7, dt)

    def untouched(*arrays):
        return all(np.all(np.asarray(u) == 7) for u in arrays)

    # one array: y is (4, 3), the gradients (4, 6)
    for call, shape in [(lambda o: fa(case, "forward", x, out=o), (4, 3)),
                        (lambda o: fa(case, "grad", x, out=o), (4, 6)),
                        (lambda o: fa(case, "backward", go, x, out=o), (4, 6)),
                        (lambda o: fa(case, "forward_backward", x, grad_out=o), (4, 6)),
                        (lambda o: fa(case, "forward_backward", x, out=o), (4, 3))]:
        wrong = (4, 6) if shape == (4, 3) else (4, 3)
        for o, exc in [(full(wrong), ValueError), (full(shape, other), TypeError),
                       (full(shape, np.int64), TypeError)]:
            with pytest.raises(exc):
                call(o)
            assert untouched(o)
        ro = full(shape)
        ro.flags.writeable = False
        with pytest.raises(ValueError):
            call(ro)
    good = full((4, 3))
    with pytest.raises(ValueError):
        fa(case, "forward_backward", x, out=good, grad_out=full((4, 3)))
    assert untouched(good)
    good = full((4, 6))
    with pytest.raises(ValueError):
        fa(case, "forward_backward", x, out=full((4, 6)), grad_out=good)
    assert untouched(good)
    # two arrays: pairs, checked whole before anything is written
    for call in (lambda o: fa(case, "grad", a, gate, out=o),
                 lambda o: fa(case, "backward", go, a, gate, out=o),
                 lambda o: fa(case, "forward_backward", a, gate, grad_out=o),
                 lambda o: fa(case, "forward_backward", a, gate, grad_output=go, grad_out=o)):
        for second, exc in [(full((3, 4)), ValueError), (full((4, 3), other), TypeError)]:
            first = full((4, 3))
            with pytest.raises(exc):
                call((first, second))
            assert untouched(first, second)
            with pytest.raises(exc):
                call((second, first))
            assert untouched(first, second)
        one = full((4, 3))
        with pytest.raises((TypeError, ValueError)):       # an array, not a pair
            call(one)
        with pytest.raises((TypeError, ValueError)):       # three arrays
            call((full((4, 3)), full((4, 3)), one))
        with pytest.raises(ValueError):                    # the two outputs overlap
            call((one, one))
    good = full((4, 3))
    with pytest.raises(ValueError):
        fa(case, "forward_backward", a, gate, out=good, grad_out=(full((4, 3)), full((2, 2))))
    assert untouched(good)
    pair = (full((4, 3)), full((4, 3)))
    with pytest.raises(ValueError):
        fa(case, "forward_backward", a, gate, out=full((4, 6)), grad_out=pair)
    assert untouched(*pair)


@pytest.mark.parametrize("case", GATED, ids=gid)
def test_in_place(case, backend, dtype):
    x = data((4, 6), dtype, seed=5)
    a, gate = halves(x, -1)
    go = data((4, 3), dtype, seed=6)
    y = fa(case, "forward", a, gate)
    grads = fa(case, "grad", a, gate)
    back = fa(case, "backward", go, a, gate)
    a1, g1 = a.copy(), gate.copy()
    assert fa(case, "forward", a1, g1, out=a1) is a1 and same(a1, y)
    a1, g1 = a.copy(), gate.copy()
    assert fa(case, "forward", a1, g1, out=g1) is g1 and same(g1, y)
    a1, g1 = a.copy(), gate.copy()
    assert same(fa(case, "grad", a1, g1, out=(a1, g1)), grads) and same((a1, g1), grads)
    a1, g1 = a.copy(), gate.copy()
    assert same(fa(case, "backward", go, a1, g1, out=(a1, g1)), back)
    a1, g1 = a.copy(), gate.copy()
    assert same(fa(case, "backward", go, a1, g1, out=(g1, a1)), back)   # swapped
    go1, g1 = go.copy(), gate.copy()
    assert same(fa(case, "backward", go1, a, g1, out=(go1, g1)), back)
    # one array: the gradient onto x itself, y onto x's first half (an overlap)
    x1 = x.copy()
    back_x = fa(case, "backward", go, x)
    assert fa(case, "backward", go, x1, out=x1) is x1 and same(x1, back_x)
    x1 = x.copy()
    assert same(fa(case, "forward", x1, out=x1[:, :3]), y) and same(x1[:, :3], y)
    x1 = x.copy()
    assert same(fa(case, "forward", x1, out=x1[:, 3:]), y)


@pytest.mark.parametrize("case", GATED, ids=gid)
def test_inputs_not_modified(case, backend):
    x = data((4, 6))
    keep = x.copy()
    go = np.full((4, 3), 2.0)
    a, gate = halves(x, -1)
    ka, kg = a.copy(), gate.copy()
    for call in _all_entries_one(case, x) + _all_entries_two(case, a, gate, go):
        call()
    fa(case, "backward", go, x)
    assert np.array_equal(x, keep) and np.array_equal(a, ka) and np.array_equal(gate, kg)
    assert np.all(go == 2.0)


# ---------------------------------------------------------------------------------------
# threads

@pytest.mark.parametrize("shape, dim", [((1062, 499), 0), ((531, 998), -1), ((7, 398, 191), 1)],
                         ids=["dim0", "dim-1", "3d-dim1"])
@pytest.mark.parametrize("case", GATED, ids=gid)
def test_thread_count_invariance(case, shape, dim, dtype):
    x = data(shape, dtype, seed=2, scale=6)
    go = data(halved(shape, dim), dtype, seed=3)
    a, gate = halves(x, dim)

    def run():
        return (fa(case, "forward", x, dim=dim), fa(case, "grad", x, dim=dim),
                fa(case, "backward", go, x, dim=dim),
                *fa(case, "forward_backward", x, dim=dim, grad_output=go),
                fa(case, "forward", a, gate), *fa(case, "backward", go, a, gate),
                *fa(case, "forward_backward", a, gate))

    runs = []
    for n in (1, 2):
        with fastact.threads(n):
            runs.append(run())
    with fastact.threads(3):         # restores the setting (OpenMP's default) afterwards
        runs.append(run())
    for other in runs[1:]:
        for i, (u, v) in enumerate(zip(runs[0], other)):
            assert same(u, v), i


@pytest.mark.parametrize("order, dim", [("C", 0), ("C", -1), ("F", 0), ("F", -1), ("C", 1)],
                         ids=["C-dim0", "C-dim-1", "F-dim0", "F-dim-1", "C-3d-dim1"])
def test_compiled_path_reads_in_place(order, dim):
    """docs/gated.md: one pass, the kernel reads a and the gate in place along any dim of
    a C- or F-contiguous x (no copy): with out= nothing proportional to n is allocated,
    without it exactly the outputs (NumPy reports its buffers to tracemalloc)."""
    import tracemalloc
    if fastact.backend() != "compiled":
        pytest.skip("the NumPy fallback computes with temporaries")
    shape = (6, 1 << 15, 4) if dim == 1 else (512, 512)
    x = data(shape, np.float64, seed=1)
    x = np.asfortranarray(x) if order == "F" else x
    h = halved(shape, dim)
    # the outputs in x's layout (the results' own, docs/contract.md, Arrays)
    go, y_out, gx_out = np.ones(h, order=order), np.empty(h, order=order), np.empty(shape, order=order)
    a, gate = [np.asarray(v, order=order) for v in halves(x, dim)]
    ga_out, gg_out = np.empty(h, order=order), np.empty(h, order=order)
    case = GATED[1]
    calls = [(lambda: fa(case, "forward", x, dim=dim, out=y_out), 0),
             (lambda: fa(case, "grad", x, dim=dim, out=gx_out), 0),
             (lambda: fa(case, "backward", go, x, dim=dim, out=gx_out), 0),
             (lambda: fa(case, "forward_backward", x, dim=dim, grad_output=go, out=y_out,
                         grad_out=gx_out), 0),
             (lambda: fa(case, "backward", go, a, gate, out=(ga_out, gg_out)), 0),
             (lambda: fa(case, "forward", x, dim=dim), y_out.nbytes),
             (lambda: fa(case, "backward", go, x, dim=dim), x.nbytes),
             (lambda: fa(case, "forward_backward", x, dim=dim), y_out.nbytes + x.nbytes)]
    for i, (call, nbytes) in enumerate(calls):
        call()
        tracemalloc.start()
        try:
            call()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert nbytes <= peak < nbytes + 64 * 1024, (i, nbytes, peak)


# ---------------------------------------------------------------------------------------
# classes

CLASSES = [("GLU", {}, GATED[0]), ("GLU", {"dim": 0}, GATED[0]), ("SwiGLU", {"dim": 0}, GATED[1]),
           ("SwiGLU", {}, GATED[1]), ("GeGLU", {}, GATED[2]),
           ("GeGLU", {"approximate": "tanh"}, GATED[3]),
           ("GeGLU", {"dim": 0, "approximate": "tanh"}, GATED[3]), ("ReGLU", {"dim": -2}, GATED[4])]


@pytest.mark.parametrize("cls_name, kw, case", CLASSES,
                         ids=[c[0] + "".join(f"-{k}={v}" for k, v in c[1].items()) for c in CLASSES])
def test_classes(cls_name, kw, case, backend):
    cls = getattr(fastact, cls_name)
    act = cls(**kw)
    dim = kw.get("dim", -1)
    x = data((4, 6), seed=8)
    a, gate = halves(x, dim)
    go = data(a.shape, seed=9)
    assert act.dim == dim
    if cls_name == "GeGLU":
        assert act.approximate == kw.get("approximate", "none")
    assert same(act(x), fa(case, "forward", x, dim=dim))
    assert same(act(a, gate), fa(case, "forward", a, gate))
    assert same(act.gradient(x), fa(case, "grad", x, dim=dim))
    assert same(act.gradient(a, gate), fa(case, "grad", a, gate))
    assert same(act.backward(go, x), fa(case, "backward", go, x, dim=dim))
    assert same(act.backward(go, a, gate), fa(case, "backward", go, a, gate))
    assert same(act.forward_backward(x), fa(case, "forward_backward", x, dim=dim))
    assert same(act.forward_backward(x, grad_output=go),
                fa(case, "forward_backward", x, dim=dim, grad_output=go))
    assert same(act.forward_backward(a, gate), fa(case, "forward_backward", a, gate))
    assert same(act.forward_backward(a, gate, grad_output=go),
                fa(case, "forward_backward", a, gate, grad_output=go))
    o = np.empty_like(a)
    assert act(x, out=o) is o and same(o, act(x))
    # repr, equality, hash, pickle, get
    assert repr(act).startswith(cls_name + "(")
    for k, v in kw.items():
        assert f"{k}={v!r}" in repr(act)
    assert eval(repr(act), dict(vars(fastact))) == act
    assert cls(**kw) == act and hash(cls(**kw)) == hash(act)
    assert cls(**{**kw, "dim": 1 if dim != 1 else 0}) != act
    assert pickle.loads(pickle.dumps(act)) == act
    assert same(pickle.loads(pickle.dumps(act))(x), act(x))
    assert fastact.get(case[0], **kw) == act
    assert fastact.get(cls_name, **kw) == act
    assert fastact.get(cls_name.lower(), **kw) == act


@pytest.mark.parametrize("cls_name, attr, good, bad", [
    ("GLU", "dim", 0, 1.5), ("SwiGLU", "dim", -2, "1"), ("GeGLU", "approximate", "tanh", "bogus"),
    ("GeGLU", "dim", 0, None), ("ReGLU", "dim", 0, True),
    ("PReLU", "weight", [0.1, 0.3, 0.5, 0.7], "abc"), ("PReLU", "weight", 0.5, np.ones((2, 2))),
    ("RReLU", "lower", 0.2, 9.0), ("RReLU", "upper", 0.5, 0.01)])
def test_assigned_parameters_are_used_and_validated(cls_name, attr, good, bad, backend):
    """Assigning a parameter of a gated, prelu or rrelu object: a bad value raises what
    the constructor raises for it and leaves the object as it was; a good one is used from
    the next call on, in the repr, equality and pickle (as a new object of it would)."""
    cls = getattr(fastact, cls_name)
    act, plain = cls(), cls()
    with pytest.raises((TypeError, ValueError)) as constructor_error:
        cls(**{**act.params, attr: bad})
    with pytest.raises(type(constructor_error.value), match=str(constructor_error.value)[:20]):
        setattr(act, attr, bad)
    assert act == plain and repr(act) == repr(plain)
    setattr(act, attr, good)
    fresh = cls(**{**plain.params, attr: good})
    assert act == fresh and repr(act) == repr(fresh) and pickle.loads(pickle.dumps(act)) == fresh
    x = data((4, 4), seed=21)
    kw = {"training": True, "seed": 1} if cls_name == "RReLU" else {}
    y = act(x, **kw)
    g = data(y.shape, seed=22)
    assert same(y, fresh(x, **kw))
    assert same(act.backward(g, x, **kw), fresh.backward(g, x, **kw))


def test_classes_and_get_take_axis():
    """NumPy's axis= as the functions take it: the same object as dim=, not both (as the
    functions)."""
    x = np.random.default_rng(2).standard_normal((4, 6, 2))
    for cls_name in ("GLU", "SwiGLU", "GeGLU", "ReGLU"):
        cls, name = getattr(fastact, cls_name), cls_name.lower()
        for axis in (0, 1, -2):
            act = cls(axis=axis)
            assert act == cls(dim=axis) == fastact.get(name, axis=axis) and act.dim == axis
            assert same(act(x), getattr(fastact, name)(x, axis=axis))
        for dim, axis in ((0, 1), (1, 1)):
            with pytest.raises(TypeError, match="not both"):
                cls(dim=dim, axis=axis)
    assert fastact.GeGLU(axis=0, approximate="tanh") == fastact.GeGLU(0, approximate="tanh")
    act = fastact.GLU(0)                   # act.axis is act.dim, validated on assignment
    act.axis = 1
    assert act.dim == act.axis == 1 and act == fastact.GLU(1) and same(act(x), fastact.glu(x, 1))
    with pytest.raises(TypeError, match="dim"):
        act.axis = 1.5
    assert act.dim == 1


def test_dim_as_numpy_takes_an_axis():
    """A NumPy integer or a 0-d integer array is a dim, as NumPy's axis= takes it (by
    position, dim= or axis=, functions and classes), never the gate; a bool is refused."""
    x = np.random.default_rng(3).standard_normal((4, 6))
    for d in (np.int64(1), np.array(1), np.array(-1, np.int32), np.uint8(1)):
        want = fastact.swiglu(x, 1)
        for got in (fastact.swiglu(x, d), fastact.swiglu(x, dim=d), fastact.swiglu(x, axis=d),
                    fastact.SwiGLU(d)(x), fastact.SwiGLU(axis=d)(x)):
            assert same(got, want), d
        assert type(fastact.SwiGLU(d).dim) is int
        assert same(fastact.softmax(x, axis=d), fastact.softmax(x, axis=1))
        assert same(fastact.Softmax(d)(x), fastact.softmax(x, axis=1))
    for bad in (np.array(True), True, np.float64(1.0)):
        with pytest.raises(TypeError):
            fastact.softmax(x, axis=bad)
        with pytest.raises(TypeError):
            fastact.swiglu(x, axis=bad)


def test_class_defaults_and_get():
    assert fastact.GLU().dim == -1 and fastact.ReGLU().dim == -1
    assert fastact.GeGLU().approximate == "none"
    assert fastact.get("swiglu", dim=0) == fastact.SwiGLU(dim=0)
    assert fastact.get("swiglu") == fastact.SwiGLU() != fastact.SwiGLU(dim=0)
    assert fastact.SwiGLU() != fastact.GeGLU() and fastact.GLU() != fastact.ReGLU()
    assert fastact.get("geglu", approximate="tanh") == fastact.GeGLU(approximate="tanh")
    with pytest.raises(ValueError):
        fastact.GeGLU(approximate="fast")


# ---------------------------------------------------------------------------------------
# prelu

def torch_prelu(x, w, g=None):
    """(y, grad_x, grad_weight) from PyTorch float64 autograd; grad_weight of w's shape."""
    tx = torch.tensor(np.asarray(x, np.float64), requires_grad=True)
    tw = torch.tensor(np.atleast_1d(np.asarray(w, np.float64)), requires_grad=True)
    y = F.prelu(tx, tw)
    y.backward(torch.ones_like(y) if g is None else torch.tensor(np.asarray(g, np.float64)))
    return (y.detach().numpy(), tx.grad.numpy(), tw.grad.numpy().reshape(np.shape(w)))


def _prelu_x(shape, dtype, seed=0):
    """Random values of mixed magnitudes with 0, -0.0, +-inf, NaN, +-tiny and a
    subnormal among them."""
    x = data(shape, dtype, seed)
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, np.finfo(dtype).tiny,
                         -np.finfo(dtype).tiny, -np.finfo(dtype).smallest_subnormal * 3,
                         -1.0, 1.0], dtype)
    flat = x.reshape(-1)
    k = min(flat.size, specials.size)
    flat[:k] = specials[:k]
    return x


def _huge(dtype):
    return 1e30 if dtype == np.float32 else 1e300


def _weights(ndim, dtype):
    """(weight, its description): scalars of every sign and magnitude, one element, and
    one per channel for x of 2 or more dimensions (C = 3)."""
    out = [(w, f"scalar {w}") for w in (0.25, -0.5, 0.0, 1.7, -3.0, _huge(dtype))]
    out += [(np.array(0.3, dtype), "0-d"), (np.array([-0.75], dtype), "one element")]
    if ndim >= 2:
        out += [(np.array([-0.5, 0.0, _huge(dtype)], dtype), "per channel"),
                (np.array([1.7, -3.0, 0.25], dtype), "per channel")]
    return out


@pytest.mark.parametrize("shape", [(), (7,), (5, 3), (4, 3, 5), (2, 3, 4, 5)],
                         ids=lambda s: f"{len(s)}d")
def test_prelu_vs_torch(shape, backend, dtype):
    xs = [_prelu_x(shape, dtype, s) for s in range(3)] if shape else [
        np.array(v, dtype) for v in (0.0, -0.0, np.inf, -np.inf, np.nan, -2.5, 3.0)]
    for x in xs:
        g = data(np.shape(x), dtype, seed=4)
        for w, what in _weights(len(shape), dtype):
            w_d = np.asarray(w, dtype) if not isinstance(w, float) else dtype(w)
            y = fastact.prelu(x, w)
            dx = fastact.prelu_grad(x, w)
            gx, gw = fastact.prelu_backward(g, x, w)
            yt, gxt, gwt = torch_prelu(x, w_d, g)
            _, dxt, _ = torch_prelu(x, w_d)
            assert y.dtype == dtype and gx.dtype == dtype and np.shape(y) == np.shape(x)
            assert np.shape(gw) == np.shape(w) and np.shape(gx) == np.shape(x), what
            # x = -inf with a zero weight: the limit, 0 (docs/contract.md, Values: +-inf
            # give the mathematical limit, also where PyTorch gives NaN, as leaky_relu's
            # slope 0 does); elsewhere PyTorch's value
            wb = np.broadcast_to(np.asarray(w_d, np.float64).reshape(
                (-1,) + (1,) * max(len(shape) - 2, 0)) if np.size(w) > 1 else
                np.asarray(w_d, np.float64).reshape(()), np.shape(x))
            limit = np.isneginf(np.asarray(x, np.float64)) & (wb == 0)
            yt = np.where(limit, 0.0, yt)
            assert_ulp_close(y, yt.astype(dtype), dtype, BOUND, what=f"y {what}", flush=1)
            zeros = (yt == 0) & ~limit
            assert np.array_equal(np.signbit(np.asarray(y)[zeros]), np.signbit(yt[zeros])), what
            # the derivative: 1 where x > 0, else the weight (NaN x: NaN by fastact's NaN
            # rule, or the weight as PyTorch and the formula)
            x64 = np.asarray(x, np.float64)
            nan = np.isnan(x64)
            expected_d = np.where(x64 > 0, 1.0, dxt).astype(dtype)
            assert same(np.asarray(dx)[~nan], expected_d[~nan]), what
            assert np.all(np.isnan(np.asarray(dx)[nan]) | (np.asarray(dx)[nan] == expected_d[nan]))
            gxa, gxta = np.asarray(gx), gxt.astype(dtype)
            assert_ulp_close(gxa[~nan], gxta[~nan], dtype, BOUND, what=f"grad_x {what}", flush=1)
            assert np.all(np.isnan(gxa[nan]) | (gxa[nan] == gxta[nan]))
            # grad_weight: NaN and infinities as PyTorch, else close to the exact sum
            gw, gwt = np.asarray(gw, np.float64), np.asarray(gwt)
            assert np.array_equal(np.isnan(gw), np.isnan(gwt)), what
            assert np.array_equal(np.isinf(gw), np.isinf(gwt)) or np.all(
                np.isinf(gw) == (np.abs(gwt) > np.finfo(dtype).max)), what
            fin = np.isfinite(gwt)
            exact = _exact_grad_weight(x, w, g, dtype)
            _assert_sum_close(gw, exact, x, w, g, dtype, fin)


def _terms(x, w, g):
    """(x * g where not x > 0), per weight element: the summands of grad_weight, exactly
    as two float64 parts (p + e), grouped as weight elements: array (len(w), 2, n)."""
    x64, g64 = np.asarray(x, np.float64), np.asarray(g, np.float64)
    p, e = two_prod(x64, g64)
    keep = ~(x64 > 0)
    with np.errstate(invalid="ignore"):
        p = np.where(keep, p, 0.0)
        e = np.where(keep, e, 0.0)
    size = np.size(w)
    if size == 1:
        return [(p.ravel(), e.ravel())]
    p = np.moveaxis(p, 1, 0).reshape(size, -1)
    e = np.moveaxis(e, 1, 0).reshape(size, -1)
    return list(zip(p, e))


def _exact_grad_weight(x, w, g, dtype):
    """The exact sum, rounded to float64 (math.fsum of the exact products); IEEE's sum
    where a product is not finite."""
    out = []
    for p, e in _terms(x, w, g):
        if not np.all(np.isfinite(p)):
            with np.errstate(invalid="ignore"):
                out.append(float(np.sum(p)))
            continue
        try:
            out.append(math.fsum(np.concatenate([p, e]).tolist()))
        except OverflowError:
            out.append(math.copysign(math.inf, float(np.sum(p))))
    return np.array(out).reshape(np.shape(w))


def _assert_sum_close(got, exact, x, w, g, dtype, where=None):
    """grad_weight is summed in float64 (docs/gated.md): each product x*g rounded once
    (<= u |x g|, u = 2^-53) and n - 1 additions in any order (<= (n-1) u sum|x g|, to
    first order) make |error| <= n u sum|x g|; allowed: n eps64 sum|x g| (twice that),
    plus 1 ulp of the dtype at the result for the final rounding to float32."""
    got, exact = np.asarray(got, np.float64).ravel(), np.asarray(exact, np.float64).ravel()
    where = np.ones(got.size, bool) if where is None else np.asarray(where).ravel()
    for i, (p, e) in enumerate(_terms(x, w, g)):
        if not where[i] or not np.isfinite(exact[i]):
            continue
        n = p.size
        total = float(np.sum(np.abs(p)))
        _, ex = np.frexp(max(abs(exact[i]), float(np.finfo(dtype).tiny)))
        ulp = math.ldexp(float(np.finfo(dtype).eps), int(ex) - 1)
        tol = n * float(np.finfo(np.float64).eps) * total + (ulp if dtype == np.float32 else 0.0)
        assert abs(got[i] - exact[i]) <= tol, (i, got[i], exact[i], tol)


PRELU_BIG = [((64, 7, 3001), "channel"), ((300000, 3), "channel"), ((1000000,), "single")]


@functools.lru_cache(maxsize=None)
def _prelu_big(shape, kind, dtype_name):
    dtype = np.dtype(dtype_name).type
    rng = np.random.default_rng(21)
    x = (rng.standard_normal(shape) * 10.0 ** rng.uniform(-3, 3, shape)).astype(dtype)
    g = rng.uniform(-2, 2, shape).astype(dtype)
    w = (np.array([0.25, -0.5, 1.7, 0.0, -3.0, 2.5, 0.01])[:shape[1]].astype(dtype)
         if kind == "channel" else np.array([0.3], dtype))
    for arr in (x, g, w):
        arr.flags.writeable = False
    return x, w, g, _exact_grad_weight(x, w, g, dtype), _exact_grad_weight(x, w, np.ones(shape), dtype)


@pytest.mark.parametrize("shape, kind", PRELU_BIG, ids=["64x7x3001", "300000x3", "1e6"])
def test_prelu_grad_weight_sum(shape, kind, backend_level, dtype):
    """grad_weight close to the exact sum (see _assert_sum_close), and the same bits on
    1, 2 and 3 threads (a fixed order of fixed blocks); y and grad_x too. At every SIMD
    level: GCC 12 once miscompiled the sum at AVX2 only."""
    x, w, g, exact, exact_ones = _prelu_big(shape, kind, np.dtype(dtype).name)
    runs = []
    for n in (1, 2, 3):
        with fastact.threads(n):
            gx, gw = fastact.prelu_backward(g, x, w)
            y, gx2, gw2 = fastact.prelu_forward_backward(x, w, grad_output=g)
            _, _, gw_ones = fastact.prelu_forward_backward(x, w)
            runs.append((y, gx, gw, gx2, gw2, gw_ones))
    for other in runs[1:]:
        for i, (u, v) in enumerate(zip(runs[0], other)):
            assert same(u, v), i
    y, gx, gw, gx2, gw2, gw_ones = runs[0]
    assert gw.shape == w.shape and gw.dtype == dtype
    assert same(gx, gx2) and same(gw, gw2)
    _assert_sum_close(gw, exact, x, w, g, dtype)
    _assert_sum_close(gw_ones, exact_ones, x, w, np.ones_like(x), dtype)


def test_prelu_entry_points(backend, dtype):
    x = _prelu_x((4, 3, 5), dtype)
    w = np.array([-0.5, 0.0, 1.7], dtype)
    g = data(x.shape, dtype, seed=2)
    y = fastact.prelu(x, w)
    d = fastact.prelu_grad(x, w)
    gx, gw = fastact.prelu_backward(g, x, w)
    assert same(fastact.prelu_forward_backward(x, w, grad_output=g), (y, gx, gw))
    r = fastact.prelu_forward_backward(x, w)
    ones = fastact.prelu_backward(np.ones_like(x), x, w)
    assert same(r, (y, d, ones[1])) and same(ones[0], d)
    # the derivative is the weight where not x > 0, exactly
    wb = np.broadcast_to(w[None, :, None], x.shape)
    ok = ~np.isnan(x)
    assert same(d[ok], np.where(x > 0, 1, wb).astype(dtype)[ok])
    # y: x where x > 0, else weight * x
    with np.errstate(invalid="ignore", over="ignore"):
        assert_ulp_close(y, np.where(x > 0, x, wb * x), dtype, BOUND, what="y", flush=1)
    exact = _exact_grad_weight(x, w, g, dtype)
    fin = np.isfinite(exact)
    assert np.array_equal(np.isnan(gw), np.isnan(exact))
    _assert_sum_close(gw, exact, x, w, g, dtype, fin)
    # out pairs
    oy, ox, ow = np.empty_like(x), np.empty_like(x), np.empty_like(w)
    assert fastact.prelu(x, w, out=oy) is oy and same(oy, y)
    assert fastact.prelu_grad(x, w, out=ox) is ox and same(ox, d)
    r = fastact.prelu_backward(g, x, w, out=(ox, ow))
    assert r[0] is ox and r[1] is ow and same(r, (gx, gw))
    r = fastact.prelu_forward_backward(x, w, grad_output=g, out=oy, grad_out=(ox, ow))
    assert r[0] is oy and r[1] is ox and r[2] is ow and same(r, (y, gx, gw))
    keep = np.full_like(x, 7)
    with pytest.raises(ValueError):
        fastact.prelu_backward(g, x, w, out=(keep, np.empty(4, dtype)))
    assert np.all(keep == 7)
    with pytest.raises(TypeError):
        fastact.prelu_backward(g, x, w, out=(keep, np.empty(3, np.int64)))
    assert np.all(keep == 7)
    # a scalar weight: grad_weight a scalar; a 1-element weight: shape (1,)
    gxs, gws = fastact.prelu_backward(g, x, 0.25)
    assert np.shape(gws) == ()
    gx1, gw1 = fastact.prelu_backward(g, x, np.array([0.25], dtype))
    assert np.shape(gw1) == (1,) and same(gx1, gxs) and same(gw1[0], gws)
    # F-order and non-contiguous x
    for v in (np.asfortranarray(x), x[:, :, ::-1][:, :, ::-1], np.ascontiguousarray(
            np.moveaxis(x, 2, 0)).transpose(1, 2, 0)):
        assert same(fastact.prelu(v, w), y) and same(fastact.prelu_grad(v, w), d)
        bx, bw = fastact.prelu_backward(g, v, w)
        assert same(bx, gx) and np.array_equal(np.isnan(bw), np.isnan(gw))
        _assert_sum_close(bw, exact, x, w, g, dtype, fin)


def test_prelu_errors(backend):
    for x, w in [(np.ones((2, 3, 4)), np.ones(4)), (np.ones((2, 3, 4)), np.ones(2)),
                 (np.ones(5), np.ones(2)), (np.ones(5), np.ones(5)), (np.array(1.0), np.ones(3)),
                 (np.ones((2, 3)), np.ones((3, 1))), (np.ones((2, 3)), np.ones((1, 3))),
                 (np.ones((2, 3)), np.ones(0)), (np.ones((2, 3)), np.ones((1, 1)))]:
        for call in (lambda: fastact.prelu(x, w), lambda: fastact.prelu_grad(x, w),
                     lambda: fastact.prelu_backward(np.ones_like(x), x, w),
                     lambda: fastact.prelu_forward_backward(x, w)):
            with pytest.raises(ValueError):
                call()
    with pytest.raises(ValueError):
        fastact.prelu_backward(np.ones(4), np.ones(5), 0.25)
    with pytest.raises(TypeError):
        fastact.prelu(np.ones(3, complex), 0.25)
    # a bool weight, scalar or array, as a bool parameter (PyTorch's prelu refuses it too)
    for w in (True, np.array([True, False, True]), np.ones(1, bool)):
        for call in (lambda: fastact.prelu(np.ones((2, 3)), w),
                     lambda: fastact.prelu_backward(np.ones((2, 3)), np.ones((2, 3)), w),
                     lambda: fastact.PReLU(w)):
            with pytest.raises(TypeError, match="bool"):
                call()


def test_prelu_dtypes(backend):
    x = np.array([[-2, 0, 3], [4, -5, -1]])
    y = fastact.prelu(x, 0.25)
    assert y.dtype == np.float64 and same(y, fastact.prelu(x.astype(float), 0.25))
    x16 = x.astype(np.float16)
    y16 = fastact.prelu(x16, np.array([0.1, 0.2, 0.3], np.float16))
    assert y16.dtype == np.float16
    assert same(y16, fastact.prelu(x16.astype(np.float32),
                                   np.array([0.1, 0.2, 0.3], np.float16).astype(np.float32)
                                   ).astype(np.float16))
    s = fastact.prelu(-2.0, 0.25)
    assert type(s) is np.float64 and s == -0.5


@pytest.mark.parametrize("gdtype", [np.float64, np.int32])
def test_prelu_weight_in_xs_dtype_under_a_wider_grad_output(gdtype, backend):
    """prelu's weight is a parameter of x's dtype: with a float32 x it is float32(w)
    widened, whatever grad_output promotes the result to (float64 here), in every entry
    point, as a Python float, a float64 array or one per channel."""
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((3, 2, 5)) * 2).astype(np.float32)
    g = rng.integers(1, 5, x.shape).astype(gdtype)
    for w in (0.1, np.array([0.1]), np.array([0.1, -1 / 3])):
        w32 = np.asarray(w).astype(np.float32).astype(np.float64)
        wx = w32 if w32.size == 1 else w32.reshape(1, -1, 1)
        neg = x.astype(np.float64) <= 0
        y = np.where(neg, wx * x, x)
        d = np.where(neg, wx, 1.0)
        gx, gw = fastact.prelu_backward(g, x, w)
        assert gx.dtype == np.float64 and same(gx, g * d)
        gw_ref = (g * np.where(neg, x, 0)).sum(axis=(0, 2)) if w32.size > 1 else \
            (g * np.where(neg, x, 0)).sum()
        assert np.allclose(gw, gw_ref, rtol=1e-12, atol=0)
        fy, fgx, fgw = fastact.prelu_forward_backward(x, w, grad_output=g)
        assert fy.dtype == np.float64 and same(fy, y) and same(fgx, gx) and same(fgw, gw)


def test_prelu_class(backend, dtype):
    x = _prelu_x((4, 3, 5), dtype)
    g = data(x.shape, dtype, seed=2)
    assert fastact.PReLU().weight == 0.25
    for w in (0.25, -1.5, np.array([0.1, -0.2, 3.0], dtype)):
        act = fastact.PReLU(weight=w)
        assert same(act(x), fastact.prelu(x, w))
        assert same(act.gradient(x), fastact.prelu_grad(x, w))
        assert same(act.backward(g, x), fastact.prelu_backward(g, x, w))
        assert same(act.forward_backward(x), fastact.prelu_forward_backward(x, w))
        assert same(act.forward_backward(x, grad_output=g),
                    fastact.prelu_forward_backward(x, w, grad_output=g))
        back = pickle.loads(pickle.dumps(act))
        assert same(back(x), act(x)) and same(back.backward(g, x), act.backward(g, x))
        assert repr(act).startswith("PReLU(")
    assert fastact.PReLU(weight=0.5) == fastact.PReLU(weight=0.5) != fastact.PReLU(weight=0.25)
    assert eval(repr(fastact.PReLU(weight=0.5)), dict(vars(fastact))) == fastact.PReLU(weight=0.5)
    assert fastact.get("prelu", weight=0.5) == fastact.PReLU(weight=0.5)


def test_prelu_equal_objects_hash_equal():
    """Equal PReLU objects hash equal (docs/contract.md): the weight's value decides, not
    its bytes (-0.0 and 0.0, float32 and float64), and a bound weight cannot change
    under the object's hash."""
    pairs = [(0.0, -0.0), (np.array([0.25, 0.5]), np.array([0.25, 0.5], np.float32)),
             (np.array([0.0, -1.0]), np.array([-0.0, -1.0])), (0.5, np.float32(0.5))]
    for a, b in pairs:
        pa, pb = fastact.PReLU(a), fastact.PReLU(b)
        assert pa == pb and hash(pa) == hash(pb) and len({pa, pb}) == 1, (a, b)
    w = np.array([0.1, 0.2])
    p = fastact.PReLU(w)
    h = hash(p)
    w[0] = 7.0                                    # the caller's array: not the object's
    assert hash(p) == h and p == fastact.PReLU([0.1, 0.2])
    with pytest.raises(ValueError):
        p.weight[0] = 7.0
    p.weight = [0.3, 0.4]                         # reassigning is validated and allowed
    assert p == fastact.PReLU([0.3, 0.4])


def test_torch_prelu_module():
    import fastact.torch as ft
    m = ft.PReLU(num_parameters=3, init=0.1)
    assert isinstance(m, torch.nn.Module) and isinstance(m.weight, torch.nn.Parameter)
    assert tuple(m.weight.shape) == (3,) and torch.all(m.weight == torch.tensor(0.1))
    assert isinstance(ft.PReLU().weight, torch.nn.Parameter) and ft.PReLU().weight.numel() == 1
    assert float(ft.PReLU().weight.detach()) == pytest.approx(0.25)
    x = torch.tensor(data((4, 3, 5), np.float32, seed=1), requires_grad=True)
    ref_m = torch.nn.PReLU(3, init=0.1)
    xr = x.detach().clone().requires_grad_(True)
    y = m(x)
    yr = ref_m(xr)
    assert torch.allclose(y, yr, rtol=1e-6, atol=0)
    g = torch.tensor(data((4, 3, 5), np.float32, seed=2))
    y.backward(g)
    yr.backward(g)
    assert torch.allclose(x.grad, xr.grad, rtol=1e-6, atol=0)
    assert torch.allclose(m.weight.grad, ref_m.weight.grad, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------
# rrelu

def _rrelu_x(shape, dtype, seed=0):
    x = data(shape, dtype, seed)
    flat = x.reshape(-1)
    flat[:6] = np.array([0.0, -0.0, -np.inf, np.inf, -1e-30, 2.0], dtype)
    return x


def _expected_noise(x, lower, upper, seed, dtype):
    """docs/gated.md: u = default_rng(seed).random(x.shape, dtype), one per element in C
    order whatever the sign; slope = lower + (upper - lower) * u in the dtype; 1 where
    x > 0."""
    u = np.random.default_rng(seed).random(np.shape(x), dtype)
    lo, up = dtype(lower), dtype(upper)
    slope = lo + (up - lo) * u
    return np.where(np.asarray(x) > 0, dtype(1), slope).astype(dtype), slope


@pytest.mark.parametrize("lower, upper", [(1 / 8, 1 / 3), (0.1, 0.3), (-0.5, 0.2), (0.2, 0.2),
                                          (0.0, 1.0)])
def test_rrelu_evaluation(lower, upper, backend, dtype):
    x = _rrelu_x((6, 7), dtype)
    g = data(x.shape, dtype, seed=3)
    mid = (lower + upper) / 2
    y = fastact.rrelu(x, lower, upper)
    assert same(y, fastact.rrelu(x, lower, upper, False))
    assert same(y, fastact.leaky_relu(x, mid))
    assert same(fastact.rrelu_grad(x, lower, upper), fastact.leaky_relu_grad(x, mid))
    assert same(fastact.rrelu_backward(g, x, lower, upper, False),
                fastact.leaky_relu_backward(g, x, mid))
    assert same(fastact.rrelu_forward_backward(x, lower, upper),
                fastact.leaky_relu_forward_backward(x, mid))
    assert same(fastact.rrelu_forward_backward(x, lower, upper, grad_output=g),
                fastact.leaky_relu_forward_backward(x, mid, grad_output=g))
    yt = F.rrelu(torch.tensor(x), lower, upper, training=False).numpy()
    assert_ulp_close(y, yt, dtype, BOUND, what="F.rrelu(training=False)")
    t = torch.tensor(x.astype(np.float64), requires_grad=True)
    yt = F.rrelu(t, lower, upper, training=False)
    yt.backward(torch.tensor(g.astype(np.float64)))
    bx = fastact.rrelu_backward(g, x, lower, upper, False)
    assert_ulp_close(bx, t.grad.numpy().astype(dtype), dtype, BOUND, what="rrelu backward")
    # a training forward's noise given in evaluation: the mean slope, as PyTorch's
    # rrelu_with_noise_backward with training=False
    noise = fastact.rrelu_grad(x, lower, upper, True, seed=5)
    assert same(fastact.rrelu_backward(g, x, lower, upper, False, noise=noise), bx)
    tn = torch.ops.aten.rrelu_with_noise_backward(
        torch.tensor(g.astype(np.float64)), torch.tensor(x.astype(np.float64)),
        torch.tensor(noise.astype(np.float64)), lower, upper, False, False)
    assert_ulp_close(bx, tn.numpy().astype(dtype), dtype, BOUND, what="with noise, eval")
    # defaults: lower 1/8, upper 1/3
    assert same(fastact.rrelu(x), fastact.leaky_relu(x, (1 / 8 + 1 / 3) / 2))


@pytest.mark.parametrize("lower, upper", [(1e308, 1.7e308), (-1.7e308, -1e308),
                                          (np.finfo(np.float64).max,) * 2])
def test_rrelu_evaluation_mean_does_not_overflow(lower, upper, backend):
    """The evaluation slope is the bounds' mean, also where their sum overflows
    (the exact mean from fractions, rounded once)."""
    from fractions import Fraction
    mid = float((Fraction(lower) + Fraction(upper)) / 2)
    x = np.array([-1.0, -0.5, 0.0, 2.0])
    assert same(fastact.rrelu(x, lower, upper), fastact.leaky_relu(x, mid))
    assert same(fastact.RReLU(lower, upper)(x), fastact.leaky_relu(x, mid))


@pytest.mark.parametrize("lower, upper", [(1 / 8, 1 / 3), (-0.5, 0.2), (0.2, 0.2), (0.0, 1.0)])
def test_rrelu_training_draw_rule(lower, upper, backend, dtype):
    x = _rrelu_x((9, 11), dtype)
    g = data(x.shape, dtype, seed=5)
    seed = 1234
    expected, slope = _expected_noise(x, lower, upper, seed, dtype)
    base = fastact.rrelu_forward_backward(x, lower, upper, True, seed=seed)
    big = np.zeros((9, 22), dtype)
    big[:, ::2] = x
    for v in (x, np.asfortranarray(x), np.ascontiguousarray(x[::-1])[::-1], big[:, ::2]):
        y, noise = fastact.rrelu_forward_backward(v, lower, upper, True, seed=seed)
        assert y.dtype == dtype and noise.dtype == dtype and noise.shape == x.shape
        assert same((y, noise), base)
        # the draw rule, reproduced: within an ulp of the literal expression (a fused
        # multiply-add would round once), exactly 1 where x > 0
        assert_ulp_close(noise, expected, dtype, 1, what="slopes")
        pos = x > 0
        assert np.all(noise[pos] == 1)
        neg = ~pos & ~np.isnan(x)          # x <= 0, including 0 and -0.0
        lo, up = min(dtype(lower), dtype(upper)), max(dtype(lower), dtype(upper))
        assert np.all((noise[neg] >= lo) & (noise[neg] <= up))
        if lower != upper:
            assert np.unique(noise[neg]).size > neg.sum() // 2      # one u per element
        else:
            assert np.all(noise[neg] == dtype(lower))
        # y = x * noise exactly, the sign of zero included
        assert same(y, x * noise) and np.array_equal(np.signbit(y), np.signbit(x * noise))
    assert noise[0, 0] != 1 or lower == upper == 1          # x = 0 takes a slope
    assert noise[0, 1] != 1 or lower == upper == 1          # x = -0.0 too
    assert same(fastact.rrelu(x, lower, upper, True, seed=seed), base[0])
    assert same(fastact.rrelu_grad(x, lower, upper, True, seed=seed), base[1])
    assert same(fastact.rrelu_backward(g, x, lower, upper, True, noise=base[1]), g * base[1])
    assert same(fastact.rrelu_backward(g, x, lower, upper, True, seed=seed), g * base[1])
    r = fastact.rrelu_forward_backward(x, lower, upper, True, seed=seed, grad_output=g)
    assert same(r, (base[0], g * base[1]))
    # keywords
    assert same(fastact.rrelu(x, lower=lower, upper=upper, training=True, seed=seed), base[0])


def test_rrelu_seeds_and_generators(backend, dtype):
    x = -np.abs(data((50, 40), dtype, seed=1)) - 0.1
    y1 = fastact.rrelu(x, training=True, seed=1)
    assert same(y1, fastact.rrelu(x, training=True, seed=1))
    assert not np.array_equal(y1, fastact.rrelu(x, training=True, seed=2))
    assert not np.array_equal(fastact.rrelu_grad(x, training=True, seed=1),
                              fastact.rrelu_grad(x, training=True, seed=2))
    # rng=: its state advances by one draw of x.shape in the dtype
    rng = np.random.default_rng(3)
    r1 = fastact.rrelu(x, training=True, rng=rng)
    r2 = fastact.rrelu(x, training=True, rng=rng)
    assert not np.array_equal(r1, r2)
    fresh = np.random.default_rng(3)
    assert same(fastact.rrelu(x, training=True, rng=fresh), r1)
    assert same(fastact.rrelu(x, training=True, rng=fresh), r2)
    assert same(r1, fastact.rrelu(x, training=True, seed=3))
    used = np.random.default_rng(3)
    fastact.rrelu_grad(x, training=True, rng=used)
    plain = np.random.default_rng(3)
    plain.random(x.shape, dtype)
    assert np.array_equal(used.random(5), plain.random(5))
    # backward with an rng in the same state as the forward's
    g = data(x.shape, dtype, seed=2)
    y, noise = fastact.rrelu_forward_backward(x, training=True, rng=np.random.default_rng(9))
    assert same(fastact.rrelu_backward(g, x, 1 / 8, 1 / 3, True, rng=np.random.default_rng(9)),
                g * noise)
    # evaluation: no randomness
    assert same(fastact.rrelu(x, rng=np.random.default_rng(4)), fastact.rrelu(x))
    assert same(fastact.rrelu(x, seed=5), fastact.rrelu(x, seed=6))


def _x_and_g_types():
    import importlib.util
    names = ["float16", "float32", "float64", "int64"]
    if importlib.util.find_spec("ml_dtypes"):
        names.append("bfloat16")
    return [(a, b) for a in names for b in names if b != "int64"]


def _np_dtype(name):
    if name == "bfloat16":
        import ml_dtypes
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


@pytest.mark.parametrize("xt, gt", _x_and_g_types())
def test_rrelu_backward_reuses_the_forwards_slopes_whatever_grad_outputs_dtype(xt, gt, backend):
    """In training, the slopes come from x's dtype alone: the backward and
    forward_backward with the forward's seed multiply grad_output by the forward's noise
    (rrelu_grad), in the dtype NumPy promotes the two to, and y is x times that noise."""
    xd, gd = _np_dtype(xt), _np_dtype(gt)
    x = np.linspace(-3, 2, 41).astype(xd)
    g = np.linspace(0.5, 2.5, 41).astype(gd)
    noise = fastact.rrelu_grad(x, training=True, seed=7)
    y0 = fastact.rrelu(x, training=True, seed=7)
    result = np.result_type(g, noise)
    want = np.multiply(g, noise, dtype=result)
    assert same(fastact.rrelu_backward(g, x, training=True, seed=7), want)
    y, gx = fastact.rrelu_forward_backward(x, training=True, seed=7, grad_output=g)
    assert same(gx, want) and gx.dtype == result
    assert same(y, np.multiply(x, noise, dtype=result)) and y.dtype == result
    assert same(y.astype(y0.dtype), y0)


@pytest.mark.parametrize("dtype_", DTYPES, ids=["float32", "float64"])
def test_rrelu_thread_count_invariance(dtype_):
    x = data((1 << 18) + 13, dtype_, seed=6)
    g = data(x.shape, dtype_, seed=7)
    runs = []
    for n in (1, 2, 3):
        with fastact.threads(n):
            runs.append((fastact.rrelu(x, training=True, seed=77),
                         *fastact.rrelu_forward_backward(x, training=True, seed=77),
                         fastact.rrelu_backward(g, x, 1 / 8, 1 / 3, True, seed=77),
                         fastact.rrelu(x)))
    for other in runs[1:]:
        assert same(runs[0], other)
    expected, _ = _expected_noise(x, 1 / 8, 1 / 3, 77, dtype_)
    assert_ulp_close(runs[0][2], expected, dtype_, 1, what="slopes")
    # the same slopes "on any machine": the NumPy backend draws the same bits
    previous = fastact.set_backend("numpy")
    try:
        y, noise = fastact.rrelu_forward_backward(x, training=True, seed=77)
    finally:
        fastact.set_backend(previous)
    assert same(noise, runs[0][2]) and same(y, runs[0][1])


def test_rrelu_errors(backend):
    x = np.linspace(-2, 2, 9)
    for call in (lambda: fastact.rrelu(x, 0.5, 0.1), lambda: fastact.rrelu(x, 0.5, 0.1, True, seed=0),
                 lambda: fastact.rrelu_grad(x, 0.5, 0.1), lambda: fastact.rrelu_backward(x, x, 0.5, 0.1, False),
                 lambda: fastact.rrelu_forward_backward(x, 0.5, 0.1), lambda: fastact.RReLU(0.5, 0.1)):
        with pytest.raises(ValueError):
            call()
    fastact.rrelu(x, -0.5, -0.1, True, seed=0)       # negative bounds are accepted
    # infinite bounds (NaN or infinite slopes) are refused by every entry point and the
    # class, when it is made
    for lower, upper in ((-np.inf, np.inf), (0.1, np.inf), (-np.inf, 0.1), (np.inf, np.inf)):
        for call in (lambda: fastact.rrelu(x, lower, upper), lambda: fastact.RReLU(lower, upper),
                     lambda: fastact.rrelu(x, lower, upper, True, seed=0),
                     lambda: fastact.rrelu_grad(x, lower, upper),
                     lambda: fastact.rrelu_backward(x, x, lower, upper, False),
                     lambda: fastact.rrelu_forward_backward(x, lower, upper)):
            with pytest.raises(ValueError, match="finite"):
                call()
    with pytest.raises(ValueError):
        fastact.rrelu_backward(np.ones(4), x, 0.1, 0.3, True, seed=0)
    with pytest.raises(ValueError):
        fastact.rrelu_backward(x, x, 0.1, 0.3, True, noise=np.ones(4))


def test_rrelu_zero_d_bounds(backend):
    """Bounds given as NumPy scalars or 0-d arrays work as the numbers they hold, on
    every entry point, the class and fastact.get (as every other parameter does; rrelu's
    had raised TypeError); a NaN one is a ValueError, an array of two a TypeError."""
    x = np.linspace(-2, 2, 9)
    for lower, upper in ((np.array(0.2), np.array(0.3)), (np.float32(0.25), 0.5),
                         (0.1, np.array([0.4])[0])):
        lo, hi = float(lower), float(upper)
        for training in (False, True):
            assert same(fastact.rrelu(x, lower, upper, training, seed=3),
                        fastact.rrelu(x, lo, hi, training, seed=3))
            assert same(fastact.rrelu_forward_backward(x, lower, upper, training, seed=3)[1],
                        fastact.rrelu_grad(x, lo, hi, training, seed=3))
        assert same(fastact.rrelu_backward(x, x, lower, upper), fastact.rrelu_backward(x, x, lo, hi))
        assert fastact.RReLU(lower, upper) == fastact.RReLU(lo, hi)
        assert fastact.get("rrelu", lower=lower, upper=upper) == fastact.RReLU(lo, hi)
    with pytest.raises(ValueError, match="NaN"):
        fastact.rrelu(x, np.array(np.nan))
    with pytest.raises(TypeError, match="lower"):
        fastact.rrelu(x, np.array([0.1, 0.2]))


def test_rrelu_class(backend, dtype):
    x = _rrelu_x((6, 7), dtype)
    g = data(x.shape, dtype, seed=3)
    act = fastact.RReLU(lower=0.1, upper=0.3)
    assert fastact.RReLU().lower == 1 / 8 and fastact.RReLU().upper == 1 / 3
    assert same(act(x), fastact.rrelu(x, 0.1, 0.3))
    assert same(act(x, training=True, seed=5), fastact.rrelu(x, 0.1, 0.3, True, seed=5))
    assert same(act(x, training=True, rng=np.random.default_rng(5)),
                fastact.rrelu(x, 0.1, 0.3, True, seed=5))
    assert same(act.gradient(x, training=True, seed=5), fastact.rrelu_grad(x, 0.1, 0.3, True, seed=5))
    assert same(act.gradient(x), fastact.rrelu_grad(x, 0.1, 0.3))
    _, noise = fastact.rrelu_forward_backward(x, 0.1, 0.3, True, seed=5)
    assert same(act.backward(g, x, training=True, seed=5), g * noise)
    assert same(act.backward(g, x, training=True, noise=noise), g * noise)
    assert same(act.backward(g, x), fastact.rrelu_backward(g, x, 0.1, 0.3, False))
    assert same(act.forward_backward(x, training=True, seed=5),
                fastact.rrelu_forward_backward(x, 0.1, 0.3, True, seed=5))
    assert same(act.forward_backward(x, training=True, seed=5, grad_output=g),
                fastact.rrelu_forward_backward(x, 0.1, 0.3, True, seed=5, grad_output=g))
    assert repr(act).startswith("RReLU(")
    assert eval(repr(act), dict(vars(fastact))) == act
    assert act == fastact.RReLU(0.1, 0.3) and hash(act) == hash(fastact.RReLU(0.1, 0.3))
    assert act != fastact.RReLU()
    assert pickle.loads(pickle.dumps(act)) == act
    assert fastact.get("rrelu", lower=0.1, upper=0.3) == act


@pytest.mark.parametrize("shape", [(2, 0), (0, 0), (2, 0, 3), (0, 0, 4)])
def test_prelu_without_channels(shape, backend, dtype):
    """x with zero channels (shape[1] = 0) and a weight of 0 elements: every entry point
    gives results of x's shape and an empty grad_weight of shape (0,), as PyTorch's
    F.prelu and its autograd do."""
    x, w = np.ones(shape, dtype), np.ones(0, dtype)
    tx = torch.ones(shape, dtype=torch.float64, requires_grad=True)
    tw = torch.ones(0, dtype=torch.float64, requires_grad=True)
    ty = F.prelu(tx, tw)
    tgx, tgw = torch.autograd.grad(ty.sum(), (tx, tw))
    y = fastact.prelu(x, w)
    assert y.shape == tuple(ty.shape) and y.dtype == dtype
    assert fastact.prelu_grad(x, w).shape == shape
    gx, gw = fastact.prelu_backward(x, x, w)
    assert gx.shape == tuple(tgx.shape) and gw.shape == tuple(tgw.shape) == (0,)
    assert gx.dtype == gw.dtype == dtype
    for kw in ({}, {"grad_output": x}):
        r = fastact.prelu_forward_backward(x, w, **kw)
        assert [a.shape for a in r] == [shape, shape, (0,)]
    # with elements but no channel weight to sum into: x of shape (0, 3), 3 weights
    gx, gw = fastact.prelu_backward(np.ones((0, 3), dtype), np.ones((0, 3), dtype),
                                    np.full(3, 0.5, dtype))
    assert gx.shape == (0, 3) and np.array_equal(gw, np.zeros(3)) and gw.dtype == dtype


def test_prelu_without_channels_in_torch():
    """fastact.torch.prelu with zero channels: autograd gives the empty gradients."""
    import fastact.torch as ft
    x = torch.randn(4, 0, 2, requires_grad=True)
    w = torch.ones(0, requires_grad=True)
    ft.prelu(x, w).sum().backward()
    assert x.grad.shape == (4, 0, 2) and w.grad.shape == (0,)


@pytest.mark.parametrize("training", [False, True])
def test_prelu_and_rrelu_follow_the_input_layout(training, backend, dtype):
    """An F-contiguous x gives F-ordered results from every prelu and rrelu entry point
    (the elementwise functions' rule), with the values of the C-ordered x's; a C x gives
    C-ordered ones; out= is written whatever its layout."""
    c = data((5, 3, 4), dtype, seed=11)
    f = np.asfortranarray(c)
    w = np.array([0.25, -0.5, 2.0], dtype)
    g_c = data(c.shape, dtype, seed=12)
    g_f = np.asfortranarray(g_c)
    kw = {"training": True, "seed": 3} if training else {}
    calls = [lambda x, g: fastact.rrelu(x, 0.1, 0.3, **kw),
             lambda x, g: fastact.rrelu_grad(x, 0.1, 0.3, **kw),
             lambda x, g: fastact.rrelu_backward(g, x, 0.1, 0.3, **kw),
             lambda x, g: fastact.rrelu_forward_backward(x, 0.1, 0.3, grad_output=g, **kw)]
    if not training:
        calls += [lambda x, g: fastact.prelu(x, w), lambda x, g: fastact.prelu_grad(x, w),
                  lambda x, g: fastact.prelu_backward(g, x, w)[0],
                  lambda x, g: fastact.prelu_forward_backward(x, w, grad_output=g)[:2]]
    for call in calls:
        rc, rf = call(c, g_c), call(f, g_f)
        for a, b in zip(rc if isinstance(rc, tuple) else (rc,),
                        rf if isinstance(rf, tuple) else (rf,)):
            assert a.flags.c_contiguous and b.flags.f_contiguous and not b.flags.c_contiguous
            assert same(a, b)
    out = np.empty(c.shape, dtype)                      # a C out for an F x: filled
    assert fastact.prelu(f, w, out=out) is out and same(out, fastact.prelu(c, w))


def test_rrelu_backward_in_training_needs_the_forwards_slopes(backend):
    """rrelu_backward (and RReLU.backward) in training without noise=, seed= or rng=
    would draw new slopes, not the forward's: TypeError; in evaluation nothing is
    needed."""
    x = np.linspace(-2, 2, 9)
    with pytest.raises(TypeError, match="slopes"):
        fastact.rrelu_backward(x, x, 0.1, 0.3, True)
    with pytest.raises(TypeError, match="slopes"):
        fastact.RReLU(0.1, 0.3).backward(x, x, training=True)
    assert same(fastact.rrelu_backward(x, x, 0.1, 0.3, False), fastact.rrelu_backward(x, x, 0.1, 0.3))


def test_prelu_and_rrelu_parameters_beyond_the_dtype(backend):
    """A prelu weight beyond float32's range rounds to inf silently (no warning), as the
    elementwise functions' parameters; rrelu's training bounds that round to an infinity
    are refused as infinite bounds are (ValueError; before the generator is used), and in
    evaluation their mean rounds as leaky_relu's slope."""
    import warnings
    x = np.array([-1.0, 0.5, 2.0], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = fastact.prelu(x, 1e300)
        assert same(y, np.array([-np.inf, 0.5, 2.0], np.float32))
        assert same(fastact.rrelu(x, 1e300, 1e300), fastact.leaky_relu(x, 1e300))
        rng = np.random.default_rng(0)
        for lower, upper in ((1e300, 1e300), (-1e300, 1e300), (0.1, 1e300), (-1e300, 0.1)):
            for call in (lambda: fastact.rrelu(x, lower, upper, True, rng=rng),
                         lambda: fastact.rrelu_grad(x, lower, upper, True, seed=1),
                         lambda: fastact.rrelu_forward_backward(x, lower, upper, True, seed=1)):
                with pytest.raises(ValueError, match="finite"):
                    call()
        assert same(rng.random(3), np.random.default_rng(0).random(3))   # not drawn from
        # float64 keeps 1e300: finite slopes
        y64 = fastact.rrelu(x.astype(np.float64), 1e300, 1e300, True, seed=1)
        assert same(y64, np.array([-1e300, 0.5, 2.0]))


@pytest.mark.parametrize("case", GATED, ids=gid)
def test_scalar_after_an_array_is_neither_dim_nor_gate(case, backend):
    """A float or bool scalar after an array x is a dim of the wrong type, not a gate of
    another shape: TypeError naming both readings, from every entry point (PyTorch's
    F.glu(x, 1.0) raises TypeError); with a 0-d a the scalar is a gate of its shape."""
    x = np.ones((3, 4))
    for bad in (1.0, True, np.float32(1.0), np.bool_(False)):
        for call in (lambda: fa(case, "forward", x, bad), lambda: fa(case, "grad", x, bad),
                     lambda: fa(case, "backward", x, x, bad),
                     lambda: fa(case, "forward_backward", x, bad)):
            with pytest.raises(TypeError, match="dim .*gate"):
                call()
    with pytest.raises(TypeError):
        F.glu(torch.ones(3, 4), 1.0)
    a = np.float64(1.5)
    y = fa(case, "forward", a, 0.5)
    assert same(y, fa(case, "forward", np.array([1.5]), np.array([0.5]))[0])


def test_gated_signatures_name_their_parameters():
    """inspect.signature of each gated class and of fastact.torch's gated functions and
    modules names dim, the unit's parameters with their defaults (and the class's axis),
    as the stubs and docs/gated.md do; what the signature accepts, the call accepts."""
    import inspect
    import fastact.torch as ft
    from fastact._activations import GATED_TABLE
    for spec in GATED_TABLE:
        cls = getattr(fastact, spec.cls_name)
        sig = inspect.signature(cls)
        assert list(sig.parameters) == ["dim", *spec.param_names, "axis"], spec.name
        assert [sig.parameters[p].default for p in spec.param_names] == \
            [d for _, d in spec.params]
        obj = cls(**{p: d for p, d in spec.params}, axis=0)
        assert obj.dim == 0
        tf = getattr(ft, spec.name)
        assert list(inspect.signature(tf).parameters) == ["input", "dim", *spec.param_names]
        module = getattr(ft, spec.torch_module or spec.cls_name)
        assert list(inspect.signature(module).parameters) == ["dim", *spec.param_names]
        kw = {p: d for p, d in spec.params}
        x = torch.randn(3, 4)
        assert tf(x, 1, **kw).shape == (3, 2) and module(1, **kw)(x).shape == (3, 2)


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_prelu_fast_path_matches_the_general_path(dtype):
    """prelu's common case (a C-contiguous ndarray, a float weight or one of x's dtype,
    no out=) goes straight to the kernel (fastact._gated.prelu_fast); out= takes the
    general path (weighted) to the same kernel: the same bits, for every kind of weight
    (a float of either sign, NaN, beyond the dtype's range, 0-d, one value, one per
    channel, a read-only one, one of another dtype), 1-4 dimensions, special x; and the
    values of x where x > 0, else w x rounded once (w in x's dtype)."""
    import ml_dtypes
    dt = np.dtype(ml_dtypes.bfloat16 if dtype == "bfloat16" else dtype)
    rng = np.random.default_rng(13)
    previous = fastact.set_backend("compiled")
    try:
        for shape in ((7,), (3, 5), (2, 4, 3), (2, 3, 2, 5), (3, 1, 4)):
            x = (rng.standard_normal(shape) * 3).astype(dt)
            x.reshape(-1)[:4] = np.array([np.nan, np.inf, -np.inf, -0.0]).astype(dt)
            c = shape[1] if len(shape) > 1 else 1
            per = (rng.standard_normal(c) * 0.5).astype(dt)
            ro = per.copy()
            ro.flags.writeable = False
            for w in (0.25, -1.5, float("nan"), 1e300, -0.0, np.array(0.3, dt),
                      np.array([0.3], dt), per, ro, per.astype(np.float64)):
                y = fastact.prelu(x, w)
                general = fastact.prelu(x, w, out=np.empty_like(x))
                assert y.dtype == dt and y.shape == x.shape
                assert same(y.view(np.uint8), general.view(np.uint8)), (shape, w)
                wf = np.asarray(w, np.float64)
                with np.errstate(over="ignore"):
                    wd = wf.astype(dt).astype(np.float64)   # the weight in x's dtype
                wd = wd.reshape(-1) if wd.size == 1 else \
                    wd.reshape((1, c) + (1,) * (len(shape) - 2))
                xd = x.astype(np.float64)
                with np.errstate(invalid="ignore", over="ignore"):
                    want = np.where(xd > 0, xd, wd * xd).astype(dt)   # (exact, or rounded once)
                # (a zero weight times -inf: test_prelu_vs_torch's rule, not this test's)
                defined = ~(np.isinf(xd) & (wd == 0))
                assert same(y[defined], want[defined]), (shape, w)
    finally:
        fastact.set_backend(previous)
