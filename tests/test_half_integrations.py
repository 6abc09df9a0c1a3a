"""float16 and bfloat16 beyond the elementwise activations: the gated units, prelu, rrelu,
the softmax family, fastact.torch and dask (SPEC section 3; docs/gated.md, docs/softmax.md,
docs/torch.md, docs/dask.md). The elementwise activations' exhaustive 16-bit tests are in
tests/test_half.py.

The contract: 16-bit inputs are read as 16 bits, computed in float32 and rounded once to
the 16-bit type; every result within 1 ulp of the 16-bit type of the exact value.

References are independent of fastact:
- the gated units: all 65536 bit patterns of each type as the gate, a and grad_output
  cycled over grids of 16-bit values; f(gate) and f'(gate) in float64 (see _gate_f64 for
  why float64 suffices, and test_float64_gate_reference_matches_mpmath for the check of
  that claim against mpmath), the products with a and grad_output in float64 (the product
  of two 16-bit values is exact in float64, and the one rounding of the product with f
  costs 2^-53 relative);
- prelu and rrelu: products of 16-bit values (exact in float64), the weight gradient as
  math.fsum of the exact products; rrelu's slopes from numpy.random.default_rng(seed)
  drawn in float32 (docs/gated.md);
- the softmax family: float64 rows (see _forward_row for why float64 suffices), the
  backward's bound that of tests/test_softmax.py with float32's first-order terms
  (softmax_bounds; from x 2^-17 for float's 2^-24: the 16-bit rows' cheaper sums);
- fastact.torch: fastact's NumPy functions on the very same 16-bit data, bit for bit
  (that the kernels ran on the tensors, not PyTorch, whose own 16-bit results differ);
  spies on the entry points show which path ran;
- dask: fastact's NumPy-array results, bit for bit.

Errors are measured in ulps of the 16-bit type by ordered bit patterns (keys): a result
is within 1 ulp of an exact value when its key is within 1 of the exact value's
fractional key (tests/test_half.py's measure); past the largest finite number the key
runs on linearly to inf's key at 2^(emax+1), where rounding to nearest gives inf.
"""
import functools
import math
import subprocess
import sys

import numpy as np
import pytest

import fastact
from cases import CASES, HARDTANH_BOUNDS, case_id
from fastact._activations import ACTIVATIONS_BY_NAME, ACTIVATIONS_TABLE
from cpu_probe import softmax_constant
from helpers import check_half_pair, same

# ml_dtypes warns when it widens a bfloat16 NaN (every pattern is widened here)
pytestmark = pytest.mark.filterwarnings(
    "ignore:invalid value encountered in cast:RuntimeWarning")

TYPES = ("float16", "bfloat16")
F32_TINY = 2.0 ** -126          # float32's smallest normal number (bfloat16's too)


def half_dtype(name):
    """The NumPy dtype of a 16-bit type name (bfloat16: ml_dtypes, else skipped)."""
    if name == "bfloat16":
        ml_dtypes = pytest.importorskip("ml_dtypes")
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(np.float16)


@pytest.fixture(params=TYPES)
def half(request):
    return half_dtype(request.param)


# ---------------------------------------------------------------------------------------
# 16-bit keys and ulps

@functools.lru_cache(maxsize=None)
def _patterns(name):
    return np.arange(65536, dtype=np.uint32).astype(np.uint16).view(half_dtype(name))


def patterns(dt):
    """All 65536 bit patterns of a 16-bit dtype, in bit order (a fresh array)."""
    return _patterns(dt.name).copy()


def bits(a):
    return np.ascontiguousarray(a).view(np.uint16)


@functools.lru_cache(maxsize=None)
def _type_info(name):
    """(inf's key, the positive values by key 0..inf's key with 2^(emax+1) for inf)."""
    allp = _patterns(name).astype(np.float64)
    kinf = 0x7C00 if name == "float16" else 0x7F80
    pos = allp[:kinf + 1].copy()
    pos[kinf] = 2.0 ** int(np.frexp(pos[kinf - 1])[1])
    assert np.all(np.diff(pos) > 0)
    return kinf, pos


def keys(a):
    """Ordered integer keys of a 16-bit array (0 for both zeros; float64, NaN for NaN)."""
    b = bits(a).astype(np.int64)
    mag = b & 0x7FFF
    k = np.where(b & 0x8000, -mag, mag).astype(np.float64)
    return np.where(np.isnan(np.asarray(a, np.float64)), np.nan, k)


def frac_key(v, dt):
    """The fractional key of exact float64 values v in the 16-bit type dt (NaN: NaN)."""
    kinf, pos = _type_info(dt.name)
    v = np.asarray(v, np.float64)
    a = np.abs(v)
    with np.errstate(invalid="ignore"):
        k = np.clip(np.searchsorted(pos, np.where(np.isnan(a), 0.0, a), side="right") - 1,
                    0, kinf)
        step = np.where(k < kinf, pos[np.minimum(k + 1, kinf)] - pos[k], 1.0)
        f = np.where(k >= kinf, float(kinf), np.minimum(k + (a - pos[k]) / step, float(kinf)))
    return np.where(np.isnan(v), np.nan, np.where(np.signbit(v), -f, f))


def key_error(got, exact, dt, fk=None):
    """|key(got) - frac_key(exact)| (fk: the fractional keys, when already computed): 0
    where both are NaN, inf where one of them is."""
    kg, ke = keys(got), (frac_key(exact, dt) if fk is None else fk)
    both = np.isnan(kg) & np.isnan(ke)
    with np.errstate(invalid="ignore"):
        e = np.abs(kg - ke)
    return np.where(both, 0.0, np.where(np.isnan(e), np.inf, e))


def ulp16(v, dt):
    """The ulp of v's binade in the 16-bit type (that of its smallest normal number below
    it; 1.0 for non-finite v, where the checks compare exactly)."""
    mant, tiny = (11, 2.0 ** -14) if dt.name == "float16" else (8, F32_TINY)
    a = np.abs(np.asarray(v, np.float64))
    with np.errstate(invalid="ignore"):
        a = np.where(np.isfinite(a), np.maximum(a, tiny), 1.0)
    return np.ldexp(1.0, np.frexp(a)[1] - mant)


def describe_bad(what, bad, got, exact, err=None, **inputs):
    """An assertion message: how many, and the first few with their inputs."""
    idx = np.flatnonzero(bad)
    lines = [f"{what}: {idx.size} of {bad.size} elements beyond the bound"]
    for i in idx[:4]:
        ins = ", ".join(f"{k}={float(np.asarray(v).reshape(-1)[i])!r}" for k, v in inputs.items())
        e = "" if err is None else f" [{np.asarray(err).reshape(-1)[i]:.2f} ulp]"
        lines.append(f"    {ins}: got {float(np.asarray(got).reshape(-1)[i])!r}, exact "
                     f"{float(np.asarray(exact).reshape(-1)[i])!r}{e}")
    return "\n".join(lines)


def round16(v, dt):
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(v, np.float64).astype(np.float32).astype(dt)


# ---------------------------------------------------------------------------------------
# gated units: every gate pattern, float64 reference

GATED = [("glu", {}), ("swiglu", {}), ("geglu", {}), ("geglu", {"approximate": "tanh"}),
         ("reglu", {})]
GATE_F = {"glu": "sigmoid", "swiglu": "silu", "geglu": "gelu", "reglu": "relu"}


def gid(case):
    return case[0] + "".join(f"-{v}" for v in case[1].values())


def _sig(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


_erfc = np.frompyfunc(math.erfc, 1, 1)


def _gate_f64(case, x):
    """(f(gate), f'(gate)) in float64 at finite float64 x: NaN elsewhere.

    Why float64 is enough: every formula below is a few correctly rounded or faithful
    float64 operations (exp, erfc of libm: a few ulp of 2^-53) without cancellation
    (1 - sigmoid(x) is taken as sigmoid(-x)), except where f' crosses zero (silu at
    -1.278, gelu at -0.752, gelu-tanh near it), where 1 + x sigmoid(-x) loses up to
    log2(1 / |f'|) bits; at the 16-bit gate nearest a crossing |f'| is above 1e-7, so the
    relative error stays below 2^-28. A 16-bit ulp is 2^-11 (float16) or 2^-8 (bfloat16)
    relative: the reference's error is 2^-17 of an ulp or less, and "within 1 ulp" is
    decided wrongly only where fastact's result lies within that of the 1-ulp boundary
    (checked against mpmath on a sample: test_float64_gate_reference_matches_mpmath)."""
    name, params = case
    x = np.where(np.isfinite(x), x, 0.0)
    with np.errstate(all="ignore"):
        if name == "glu":
            s = _sig(x)
            return s, s * _sig(-x)
        if name == "swiglu":
            s = _sig(x)
            return x * s, s * (1.0 + x * _sig(-x))
        if name == "reglu":
            return np.where(x > 0, x, 0.0), np.where(x > 0, 1.0, 0.0)
        if params.get("approximate", "none") == "tanh":
            c = math.sqrt(2 / math.pi)
            u = c * (x + 0.044715 * x ** 3)
            du = c * (1 + 3 * 0.044715 * x * x)
            s = _sig(2 * u)                         # (1 + tanh u) / 2
            return x * s, s + x * du * 2 * s * _sig(-2 * u)
        cdf = _erfc(-x / math.sqrt(2)).astype(np.float64) / 2
        return x * cdf, cdf + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)


# f and f' at +inf and -inf (the limits, docs/contract.md: silu(-inf) = -0.0, gelu'(inf)
# = 1), per gated unit
LIMITS = {"glu": ((1.0, 0.0), (0.0, 0.0)), "swiglu": ((np.inf, 1.0), (-0.0, 0.0)),
          "geglu": ((np.inf, 1.0), (-0.0, 0.0)), "reglu": ((np.inf, 1.0), (0.0, 0.0))}


def _grid(dt, values):
    return np.array(values, np.float64).astype(dt)


def a_grid(dt):
    """a: 7 values (odd, coprime with the grad_output grid's 5, so that consecutive gate
    patterns meet every pair): both signs, 0, large, small, subnormal, 0.3 rounded (a
    full significand); each meets every binade of the gate."""
    if dt.name == "float16":
        return _grid(dt, [1.0, -0.75, 0.0, -2.0 ** -10, 1000.0, -3 * 2.0 ** -22, 0.3])
    return _grid(dt, [1.0, -0.75, 0.0, -2.0 ** -60, 2.0 ** 60, -2.0 ** -130, 0.3])


def g_grid(dt):
    """grad_output: 5 values of both signs and several magnitudes (bfloat16: 0 too; the
    products g a stay within float32's range)."""
    if dt.name == "float16":
        return _grid(dt, [1.0, -0.5, 7.0, -2.0 ** -12, 0.3])
    return _grid(dt, [1.0, -0.5, 7.0, -2.0 ** -12, 0.0])


class GatedRef:
    """One (case, type): the gates (every pattern), a and grad_output, the exact
    outputs (float64) and where each output is an exact limit (non-finite gate)."""

    def __init__(self, case, dt):
        self.case, self.dt = case, dt
        n = 65536
        self.gate = patterns(dt)
        self.a = a_grid(dt)[np.arange(n) % 7]
        self.g = g_grid(dt)[np.arange(n) % 5]
        x = self.gate.astype(np.float64)
        a, g = self.a.astype(np.float64), self.g.astype(np.float64)
        f, d = _gate_f64(case, x)
        (fp, dp), (fn, dn) = LIMITS[case[0]]
        f = np.where(x == np.inf, fp, np.where(x == -np.inf, fn, f))
        d = np.where(x == np.inf, dp, np.where(x == -np.inf, dn, d))
        f = np.where(np.isnan(x), np.nan, f)
        d = np.where(np.isnan(x), np.nan, d)
        self.finite = np.isfinite(x)
        with np.errstate(all="ignore"):
            # y, f, a f', g f, g a f': each one rounding of exact float64 products
            self.exact = {"y": a * f, "f": f, "ad": a * d, "gf": g * f, "gad": (g * a) * d}
        # the outputs' f or f' is nonzero and below float32's smallest normal number
        # (only bfloat16 results can be nonzero there): checked on their own below
        deep_f = (f != 0) & (np.abs(f) < F32_TINY) & self.finite
        deep_d = (d != 0) & (np.abs(d) < F32_TINY) & self.finite
        self.deep = {"y": deep_f, "f": deep_f, "gf": deep_f, "ad": deep_d, "gad": deep_d}
        self.fk = {k: frac_key(v, dt) for k, v in self.exact.items()}

    def subset(self, mask):
        """The same reference restricted to the gates where mask is true."""
        sub = object.__new__(GatedRef)
        sub.case, sub.dt = self.case, self.dt
        for attr in ("gate", "a", "g", "finite"):
            setattr(sub, attr, getattr(self, attr)[mask])
        for attr in ("exact", "deep", "fk"):
            setattr(sub, attr, {k: v[mask] for k, v in getattr(self, attr).items()})
        return sub


@functools.lru_cache(maxsize=None)
def gated_ref(case_key, type_name):
    return GatedRef((case_key[0], dict(case_key[1])), half_dtype(type_name))


def _gref(case, dt):
    return gated_ref((case[0], tuple(sorted(case[1].items()))), dt.name)


def gated_outputs(case, ref, rows=256, split_dims=(-1, 0)):
    """Every entry point of the gated unit on the reference's inputs: the two-array form,
    and the one-array form along split_dims (x = a and the gate as (rows, n / rows)
    arrays concatenated along dim); {(label, output kind): array of the results in gate
    order}."""
    name, params = case
    f = lambda s: getattr(fastact, name + s)        # noqa: E731
    a, gate, g = ref.a, ref.gate, ref.g
    out = {}
    y = f("")(a, gate, **params)
    out["fwd", "y"] = y
    out["grad", "f"], out["grad", "ad"] = f("_grad")(a, gate, **params)
    out["bwd", "gf"], out["bwd", "gad"] = f("_backward")(g, a, gate, **params)
    out["fb", "y"], out["fb", "f"], out["fb", "ad"] = f("_forward_backward")(a, gate, **params)
    out["fbg", "y"], out["fbg", "gf"], out["fbg", "gad"] = f("_forward_backward")(
        a, gate, grad_output=g, **params)
    for dim in split_dims:
        # (256, 512) with the halves side by side, or (512, 256) stacked
        a2, b2, g2 = (v.reshape(rows, -1) for v in (a, gate, g))
        x = np.concatenate([a2, b2], axis=dim)
        label = f"split{dim}"

        def halves(v):
            p, q = np.split(v, 2, axis=dim)
            return p.reshape(-1), q.reshape(-1)
        out[label + ".fwd", "y"] = f("")(x, dim, **params).reshape(-1)
        out[label + ".grad", "f"], out[label + ".grad", "ad"] = halves(f("_grad")(x, dim, **params))
        out[label + ".bwd", "gf"], out[label + ".bwd", "gad"] = halves(
            f("_backward")(g2, x, dim, **params))
        yy, gx = f("_forward_backward")(x, dim, **params)
        out[label + ".fb", "y"] = yy.reshape(-1)
        out[label + ".fb", "f"], out[label + ".fb", "ad"] = halves(gx)
        yy, gx = f("_forward_backward")(x, dim, grad_output=g2, **params)
        out[label + ".fbg", "y"] = yy.reshape(-1)
        out[label + ".fbg", "gf"], out[label + ".fbg", "gad"] = halves(gx)
    return out


def _gated_failures(case, ref, outputs, region, flush=False):
    """Messages for the outputs beyond 1 ulp (finite gates in region, a mask per output
    kind) or not the exact IEEE product with the limit (non-finite gates). flush: also
    accept the float32 contract's flush (docs/contract.md, Accuracy; bfloat16 shares
    float32's smallest normal number): where f or f' is below 2^-126, an error up to its
    factor in the output (|a|, 1, |g|, |a|, |g a|) times 2^-126."""
    problems = []
    dt = ref.dt
    for (label, kind), got in outputs.items():
        if got.dtype != dt or got.shape != ref.gate.shape:
            problems.append(f"{label} {kind}: dtype {got.dtype}, shape {got.shape}")
            continue
        exact = ref.exact[kind]
        err = key_error(got, exact, dt, ref.fk[kind])
        check = region[kind]
        # a non-finite gate: the IEEE product with f's limit (NaN at NaN); an infinite
        # or NaN one exactly, a finite one (the rounding of a product) within 1 ulp
        with np.errstate(invalid="ignore"):
            exactly = (got.astype(np.float64) == exact) | (np.isnan(got.astype(np.float64))
                                                           & np.isnan(exact))
        bad = check & np.where(np.isfinite(exact), err > 1, ~exactly)
        if flush:
            a, g = np.abs(ref.a.astype(np.float64)), np.abs(ref.g.astype(np.float64))
            scale = {"y": a, "f": 1.0, "gf": g, "ad": a, "gad": g * a}[kind]
            with np.errstate(invalid="ignore", over="ignore"):
                bad &= ~(np.abs(got.astype(np.float64) - exact) <= 2 * scale * F32_TINY)
        if bad.any():
            problems.append(describe_bad(f"{gid(case)} {dt.name} {label} {kind}", bad, got,
                                         exact, err, gate=ref.gate, a=ref.a, g=ref.g))
    return problems


def _summary(problems, first=10):
    more = len(problems) - first
    more = f"\n({more} more outputs beyond the bound)" if more > 0 else ""
    return "\n".join(problems[:first]) + more


@pytest.mark.parametrize("case", GATED, ids=gid)
def test_gated_every_gate_within_one_ulp(case, half, backend_level):
    """All 65536 gates, every entry point, both forms (two arrays; one array split along
    the last dim and along dim 0), every SIMD level and the NumPy backend: within 1 ulp
    of a f(gate), f(gate), a f'(gate), g f(gate), g a f'(gate); the IEEE product with f's
    limit at +-inf, NaN at NaN. (Where f or f' itself is nonzero and below float32's
    smallest normal number: the next test.)"""
    ref = _gref(case, half)
    # the NumPy backend (the slowest) once along the last dim: its split is fastact._gated's,
    # shared with the compiled backend, whose both dims are run
    outputs = gated_outputs(case, ref, split_dims=(-1,) if backend_level == "numpy" else (-1, 0))
    region = {k: ~v for k, v in ref.deep.items()}
    problems = _gated_failures(case, ref, outputs, region)
    assert not problems, _summary(problems)


@pytest.mark.parametrize("case", GATED, ids=gid)
def test_gated_gate_values_below_float32_normal(case, half, backend_level):
    """The gates where f(gate) or f'(gate) is nonzero and below 2^-126, float32's (and
    bfloat16's) smallest normal number: a f(gate) and the gradients there are bfloat16
    numbers (a, grad_output up to 2^60), and f itself a bfloat16 subnormal: within 1 ulp,
    or within the float32 contract's flush, which bfloat16 shares (docs/half.md: f or f'
    below 2^-126 may be flushed, times its factor). For float16 every such result rounds
    to 0."""
    full = _gref(case, half)
    mask = np.logical_or.reduce(list(full.deep.values()))
    if not mask.any():
        assert case[0] == "reglu"          # relu and relu' are never that small
        return
    ref = full.subset(mask)
    outputs = gated_outputs(case, ref, rows=ref.gate.size)
    problems = _gated_failures(case, ref, outputs, ref.deep, flush=True)
    assert not problems, _summary(problems)


def test_float64_gate_reference_matches_mpmath(half):
    """The float64 f and f' of _gate_f64 against mpmath (tests/reference.py, 50 digits) on
    a sample of gates: every binade from 2^-20 to 2^7 of both signs and the 16-bit
    neighbours of f''s zero crossings: relative error below 2^-40, or absolute below
    2^-60 times f's scale where the exact value is 0."""
    import mpmath as mp
    import reference
    pats = patterns(half).astype(np.float64)
    fin = pats[np.isfinite(pats)]
    mag = np.abs(fin)
    sample = fin[(mag > 2.0 ** -20) & (mag < 200)][::(151 if half.name == "float16" else 23)]
    crossings = [-1.2784645427610738, -0.7517916243, -0.7522]
    near = [fin[np.argsort(np.abs(fin - c))[:3]] for c in crossings]
    xs = np.unique(np.concatenate([sample] + near))
    for case in GATED:
        f64, d64 = _gate_f64(case, xs)
        fname = GATE_F[case[0]]
        for i, x in enumerate(xs):
            y, d = reference.exact(fname, mp.mpf(float(x)), case[1], np.float32)
            for got, want, what in ((f64[i], y, "f"), (d64[i], d, "f'")):
                want = float(want)
                tol = max(abs(want) * 2.0 ** -40, 2.0 ** -1000)
                assert abs(got - want) <= tol, (gid(case), what, float(x), got, want)


# ---------------------------------------------------------------------------------------
# prelu: every pattern, weights of both signs and several magnitudes

PRELU_SCALARS = (0.25, -1.5, 0.0, -2.0 ** -10, 96.0)


def _prelu_weights(dt):
    """(weight, per-channel?) for x of shape (256, 4, 64): scalars (16-bit numbers),
    one element, one per channel of several signs and magnitudes."""
    chan = (np.array([0.25, -1.5, 2.0 ** -9, -40.0]), np.array([0.0, 0.3, -0.7, 5.0]))
    return ([(w, False) for w in PRELU_SCALARS] + [(np.array([-0.375]).astype(dt), False)]
            + [(w.astype(dt), True) for w in chan])


def _prelu_expected(x, w, per_channel):
    """y and dy/dx (float64) for x of shape (N, C, inner); at x = -inf with a zero weight
    the limit 0 (docs/contract.md, Values)."""
    x64 = x.astype(np.float64)
    wb = np.asarray(w, np.float64)
    wb = wb.reshape(1, -1, 1) if per_channel else wb.reshape(())
    wb = np.broadcast_to(wb, x.shape)
    with np.errstate(invalid="ignore"):
        y = np.where(x64 > 0, x64, wb * x64)
    y = np.where(np.isneginf(x64) & (wb == 0), 0.0, y)
    d = np.where(x64 > 0, 1.0, wb)
    return x64, wb, y, d


def _exact_weight_grad(x64, g64, per_channel):
    """sum of x g where not x > 0 (per channel), exactly (math.fsum of exact products),
    with sum |x g| and the count of terms."""
    with np.errstate(invalid="ignore"):
        t = np.where(x64 > 0, 0.0, x64 * g64)            # exact: 16-bit products
    parts = [t[:, c, :].ravel() for c in range(t.shape[1])] if per_channel else [t.ravel()]
    return (np.array([math.fsum(p.tolist()) for p in parts]),
            np.array([np.sum(np.abs(p)) for p in parts]), parts[0].size)


def _check_weight_grad(gw, exact, total, n, dt, what):
    """The float64 sum rounded to the 16-bit type: within 1 ulp of the exact sum plus
    the float64 summation's own error (n eps64 sum |x g|, docs/gated.md)."""
    gw = np.asarray(gw).reshape(-1)
    assert gw.dtype == dt, (what, gw.dtype)
    err = np.abs(gw.astype(np.float64) - exact)
    allowed = ulp16(exact, dt) + n * 2.0 ** -52 * total
    ok = (err <= allowed) | (key_error(gw, exact, dt) <= 1)     # (an overflow: inf)
    assert np.all(ok), (what, gw, exact, err, allowed)


@functools.lru_cache(maxsize=None)
def _prelu_every_pattern(type_name):
    """x (every pattern as (256, 4, 64)), g, and per weight: (weight, per-channel?,
    {output: (exact float64, its fractional keys)})."""
    dt = half_dtype(type_name)
    x = patterns(dt).reshape(256, 4, 64)
    g = g_grid(dt)[np.arange(x.size) % 5].reshape(x.shape)
    g = np.where(g.astype(np.float64) == 0, 2.0, g.astype(np.float64)).astype(dt)
    cases = []
    for w, per_channel in _prelu_weights(dt):
        x64, wb, y_e, d_e = _prelu_expected(x, w, per_channel)
        with np.errstate(invalid="ignore"):
            gd_e = g.astype(np.float64) * d_e
        cases.append((w, per_channel, {k: (v, frac_key(v, dt)) for k, v in
                                       (("y", y_e), ("d", d_e), ("gd", gd_e))}))
    return x, g, cases


def test_prelu_every_pattern_within_one_ulp(half, backend_level):
    """x: all 65536 patterns as (256, 4, 64); every entry point; y = x or w x, dy/dx = 1
    or w, grad_x = g dy/dx within 1 ulp (NaN x: NaN; the derivative at NaN x is NaN or
    the weight, as tests/test_gated.py allows)."""
    dt = half
    x, g, cases = _prelu_every_pattern(dt.name)
    nan = np.isnan(x.astype(np.float64))
    problems = []
    for w, per_channel, ref in cases:
        y = fastact.prelu(x, w)
        d = fastact.prelu_grad(x, w)
        gx, gw = fastact.prelu_backward(g, x, w)
        fy, fd, fgw1 = fastact.prelu_forward_backward(x, w)
        gy, gd, fgw = fastact.prelu_forward_backward(x, w, grad_output=g)
        label = f"{dt.name} weight={w!r}"
        for what, got, kind in (("y", y, "y"), ("fb.y", fy, "y"), ("fbg.y", gy, "y"),
                                ("grad", d, "d"), ("fb.d", fd, "d"),
                                ("grad_x", gx, "gd"), ("fbg.grad_x", gd, "gd")):
            assert got.dtype == dt and got.shape == x.shape, (label, what)
            exact, fk = ref[kind]
            err = key_error(got, exact, dt, fk)
            gotf = got.astype(np.float64)
            ok = (err <= 1) | (nan & (np.isnan(gotf) | (gotf == exact)))
            if not ok.all():
                problems.append(describe_bad(f"{label} {what}", ~ok, got, exact, err, x=x))
        # the weight's gradient: over NaN and inf x it is NaN or infinite; the finite
        # sums are checked in test_prelu_weight_gradient
        for gw_, what in ((gw, "backward"), (fgw, "fbg")):
            assert np.shape(gw_) == np.shape(w) and np.asarray(gw_).dtype == dt, (label, what)
            assert np.all(~np.isfinite(np.asarray(gw_, np.float64))), (label, what, gw_)
        assert np.shape(fgw1) == np.shape(w)
    assert not problems, "\n".join(problems)


@functools.lru_cache(maxsize=None)
def _prelu_sums(shape, type_name):
    """Finite 16-bit x and g of a shape, and per weight: (weight, per-channel?, the exact
    sums with grad_output g, with grad_output ones)."""
    dt = half_dtype(type_name)
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(shape) * 10.0 ** rng.uniform(-3, 0.5, shape)).astype(dt)
    g = rng.uniform(-2, 2, shape).astype(dt)
    x3 = x.astype(np.float64).reshape(shape[0], shape[1], -1)
    g3 = g.astype(np.float64).reshape(x3.shape)
    weights = [(0.25, False), (np.array([-0.5]).astype(dt), False)]
    if shape[1] == 3:
        weights.append((np.array([0.25, -1.5, 3.0]).astype(dt), True))
    return x, g, [(w, pc, _exact_weight_grad(x3, g3, pc),
                   _exact_weight_grad(x3, np.ones_like(x3), pc)) for w, pc in weights]


@pytest.mark.parametrize("shape", [(64, 3, 700), (50000, 3), (3, 70000)],
                         ids=["64x3x700", "50000x3", "3x70000"])
def test_prelu_weight_gradient(shape, half, backend_level):
    """grad_weight of finite 16-bit data: the float64 sum rounded to the weight's dtype
    (the x dtype for a Python float), per channel or one; within 1 ulp of the exact sum
    plus the float64 summation's error; the same bits on 1 and 2 threads; grad_x and y
    unchanged by the weight-gradient entries."""
    dt = half
    x, g, weights = _prelu_sums(shape, dt.name)
    for w, per_channel, (exact, total, n), (ones_exact, ones_total, _) in weights:
        runs = []
        for threads in (1, 2):
            with fastact.threads(threads):
                runs.append((fastact.prelu_backward(g, x, w),
                             fastact.prelu_forward_backward(x, w, grad_output=g)))
        (gx, gw), (y, gx2, gw2) = runs[0]
        assert same(runs[0], runs[1])
        assert same(gx, gx2) and same(gw, gw2)
        _check_weight_grad(gw, exact, total, n, dt, f"{shape} weight={w!r}")
        _check_weight_grad(fastact.prelu_forward_backward(x, w)[2], ones_exact, ones_total, n,
                           dt, f"{shape} weight={w!r} (grad_output ones)")
        assert same(y, fastact.prelu(x, w))


# ---------------------------------------------------------------------------------------
# rrelu

def _slopes_exact(shape, lower, upper, seed):
    """docs/gated.md: u = default_rng(seed).random(shape, float32) per element in C order;
    slope = lo + (hi - lo) u (exact, float64) with the bounds in float32."""
    u = np.random.default_rng(seed).random(shape, np.float32).astype(np.float64)
    lo, hi = float(np.float32(lower)), float(np.float32(upper))
    return lo + (hi - lo) * u


@pytest.mark.parametrize("lower, upper", [(1 / 8, 1 / 3), (-0.5, 0.2), (0.2, 0.2), (0.0, 1.0)])
def test_rrelu_training(lower, upper, half, backend):
    """Training: the slopes (rrelu_grad, forward_backward's noise) are float32 draws
    rounded to x's dtype: within 1 ulp of lo + (hi - lo) u, 1 where x > 0; reproducible
    by seed and rng; y = x * slope within 1 ulp; the backward is g * slope within 1 ulp,
    from noise= or the seed. 100000 elements: the float32 stream is drawn in pieces."""
    dt = half
    pats = patterns(dt)
    pats = pats[np.isfinite(pats.astype(np.float64))]
    x = pats[np.random.default_rng(2).integers(0, pats.size, 100000)].reshape(400, 250)
    x[0, :4] = np.array([0.0, -0.0, np.inf, -np.inf]).astype(dt)
    g = np.random.default_rng(3).uniform(-3, 3, x.shape).astype(dt)
    seed = 77
    y, noise = fastact.rrelu_forward_backward(x, lower, upper, True, seed=seed)
    assert y.dtype == dt and noise.dtype == dt and noise.shape == x.shape
    x64 = x.astype(np.float64)
    slope = _slopes_exact(x.shape, lower, upper, seed)
    expected_noise = np.where(x64 > 0, 1.0, slope)
    err = key_error(noise, expected_noise, dt)
    assert np.all(err <= 1), describe_bad("slopes", err > 1, noise, expected_noise, err, x=x)
    neg = ~(x64 > 0)
    lo, hi = sorted((float(dt.type(lower)), float(dt.type(upper))))
    n64 = noise.astype(np.float64)
    assert np.all(n64[~neg] == 1) and np.all((n64[neg] >= lo) & (n64[neg] <= hi))
    with np.errstate(invalid="ignore"):
        y_exact = x64 * n64                                 # exact: 16-bit product
    err = key_error(y, y_exact, dt)
    assert np.all(err <= 1), describe_bad("y", err > 1, y, y_exact, err, x=x)
    # reproducible, and the same slopes from every entry point
    assert same(fastact.rrelu(x, lower, upper, True, seed=seed), y)
    assert same(fastact.rrelu_grad(x, lower, upper, True, seed=seed), noise)
    assert same(fastact.rrelu_forward_backward(x, lower, upper, True,
                                               rng=np.random.default_rng(seed)), (y, noise))
    if lower != upper:
        assert not np.array_equal(fastact.rrelu_grad(x, lower, upper, True, seed=seed + 1),
                                  noise)
    bx = fastact.rrelu_backward(g, x, lower, upper, True, noise=noise)
    assert same(fastact.rrelu_backward(g, x, lower, upper, True, seed=seed), bx)
    assert same(fastact.rrelu_forward_backward(x, lower, upper, True, seed=seed,
                                               grad_output=g), (y, bx))
    want = g.astype(np.float64) * n64
    err = key_error(bx, want, dt)
    assert bx.dtype == dt and np.all(err <= 1), describe_bad("backward", err > 1, bx, want, err)
    # evaluation: leaky_relu with the mean slope
    assert same(fastact.rrelu(x, lower, upper), fastact.leaky_relu(x, (lower + upper) / 2))


# ---------------------------------------------------------------------------------------
# gated, prelu: out=, dtype promotion

@pytest.mark.parametrize("case", GATED, ids=gid)
def test_gated_dtypes_out_and_promotion(case, half):
    """Results keep the 16-bit dtype in both forms; out= (and grad_out= pairs) of that
    dtype are filled, others refused (TypeError); a float32 or float64 partner promotes
    to it; float16 with bfloat16 is a TypeError naming both arguments."""
    dt = half
    name, params = case
    f = lambda s: getattr(fastact, name + s)        # noqa: E731
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((6, 8)) * 3).astype(dt)
    a, gate = x[:, :4].copy(), x[:, 4:].copy()
    go = rng.standard_normal((6, 4)).astype(dt)
    y = f("")(x, **params)
    assert y.dtype == dt and same(f("")(a, gate, **params), y)
    o = np.empty((6, 4), dt)
    assert f("")(x, out=o, **params) is o and same(o, y)
    og = np.empty((6, 8), dt)
    assert f("_backward")(go, x, out=og, **params) is og
    assert same(og, f("_backward")(go, x, **params))
    oa, ob = np.empty((6, 4), dt), np.empty((6, 4), dt)
    r = f("_forward_backward")(a, gate, grad_output=go, out=o, grad_out=(oa, ob), **params)
    assert r[0] is o and r[1] is oa and r[2] is ob
    assert same(r, f("_forward_backward")(a, gate, grad_output=go, **params))
    for wrong in (np.float32, np.float64):
        with pytest.raises(TypeError):
            f("")(x, out=np.empty((6, 4), wrong), **params)
    # promotion: with float32 float32, with float64 float64; float16 with bfloat16 as
    # ml_dtypes defines it (float32 from 0.7 on, none before)
    for other in (np.float32, np.float64):
        r = f("")(a, gate.astype(other), **params)
        assert r.dtype == other
        assert same(r, f("")(a.astype(other), gate.astype(other), **params))
        gr = f("_backward")(go.astype(other), a, gate, **params)
        assert all(u.dtype == other for u in gr)
    if dt.name == "bfloat16":
        h, w = np.float16, np.float32
        check_half_pair(lambda: f("")(a.astype(h), gate, **params),
                        lambda: f("")(a.astype(h).astype(w), gate.astype(w), **params),
                        r"a \(float16\) and gate \(bfloat16\)")
        check_half_pair(lambda: f("_backward")(go.astype(h), a, gate, **params),
                        lambda: f("_backward")(go.astype(h).astype(w), a.astype(w),
                                               gate.astype(w), **params),
                        r"grad_output \(float16\).*bfloat16")
        check_half_pair(lambda: f("_backward")(go.astype(h), x, **params),
                        lambda: f("_backward")(go.astype(h).astype(w), x.astype(w), **params),
                        r"grad_output \(float16\) and x \(bfloat16\)")


def test_prelu_rrelu_dtypes_and_out(half):
    """prelu's results and weight gradient keep the 16-bit dtype (a Python float weight:
    x's dtype), out= pairs of it work, a float32 out is refused; a wider grad_output
    promotes; rrelu's out= in training."""
    dt = half
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((4, 3, 5)) * 3).astype(dt)
    g = rng.standard_normal(x.shape).astype(dt)
    w = np.array([0.25, -1.5, 3.0]).astype(dt)
    y = fastact.prelu(x, w)
    gx, gw = fastact.prelu_backward(g, x, w)
    assert y.dtype == gx.dtype == gw.dtype == dt and gw.shape == (3,)
    gxs, gws = fastact.prelu_backward(g, x, 0.25)
    assert gws.dtype == dt and np.shape(gws) == ()
    oy, ox, ow = np.empty_like(x), np.empty_like(x), np.empty(3, dt)
    r = fastact.prelu_forward_backward(x, w, grad_output=g, out=oy, grad_out=(ox, ow))
    assert r[0] is oy and r[1] is ox and r[2] is ow and same(r, (y, gx, gw))
    with pytest.raises(TypeError):
        fastact.prelu(x, w, out=np.empty(x.shape, np.float32))
    for other in (np.float32, np.float64):
        r = fastact.prelu_backward(g.astype(other), x, w)
        assert r[0].dtype == other and r[1].dtype == other
    o = np.empty_like(x)
    assert fastact.rrelu(x, training=True, seed=1, out=o) is o
    assert same(o, fastact.rrelu(x, training=True, seed=1))
    if dt.name == "bfloat16":
        h, f = np.float16, np.float32
        check_half_pair(lambda: fastact.prelu_backward(g.astype(h), x, w),
                        lambda: fastact.prelu_backward(g.astype(h).astype(f), x.astype(f),
                                                       w.astype(f)),
                        r"float16.*bfloat16")


# ---------------------------------------------------------------------------------------
# softmax family: rows of many lengths and kinds

FUNCS = ("softmax", "log_softmax", "softmin")
SIGN = {"softmax": 1.0, "log_softmax": 1.0, "softmin": -1.0}
U32 = 2.0 ** -24
U16X = 2.0 ** -17               # softmax_bounds's u from x (the 16-bit rows' float sums)
LENGTHS = (1, 2, 16, 1000, 70000)


def _row_kinds(n, rng):
    """(kind, float64 row of length n) for the accuracy sweep."""
    rows = [(f"normal*{s}", rng.standard_normal(n) * s) for s in (1, 3, 10, 30)]
    rows.append(("constant", np.full(n, -2.75)))
    top = rng.uniform(-3, 3)
    r = top - rng.uniform(38, 45, n)
    r[rng.integers(n)] = top
    rows.append(("dominant", r))
    r = top - rng.uniform(86, 104, n)                    # e^(x - max): subnormal or 0
    r[rng.integers(n)] = top
    rows.append(("dominant_far", r))
    rows.append(("+inf", np.full(n, np.inf)))
    rows.append(("nan", np.full(n, np.nan)))
    rows.append(("all -inf", np.full(n, -np.inf)))
    if n > 1:
        r = rng.standard_normal(n) * 3
        r[rng.choice(n, max(1, n // 3), replace=False)] = -np.inf
        rows.append(("-inf entries", r))
        r = rng.standard_normal(n) * 3
        r[rng.choice(n, max(1, n // 5), replace=False)] = -np.inf
        r[rng.choice(n, max(1, n // 7), replace=False)] = np.inf
        rows.append(("+inf entries", r))
        r = rng.standard_normal(n) * 3
        r[rng.integers(n)] = np.nan
        rows.append(("one nan", r))
    if n > 1000:                            # the long rows: fewer kinds
        keep = ("normal*30", "dominant_far", "-inf entries", "+inf entries")
        rows = [k for k in rows if k[0] in keep]
    return rows


def _fsum(v):
    v = np.asarray(v, np.float64)
    if not np.all(np.isfinite(v)):
        with np.errstate(invalid="ignore"):
            return float(np.sum(v))
    return math.fsum(v.tolist())


def _forward_row(xs):
    """Exact (softmax, log_softmax) of a float64 row xs (sign applied), in float64, by
    docs/softmax.md's rules: NaN or all -inf: NaN; +inf entries: the limit (1/c and
    -log c there, 0 and -inf elsewhere); -inf entries contribute nothing.

    Why float64 is enough: x - max is exact (differences of 16-bit values, or far below
    where e^(x - max) matters), e^d is one libm exp (a few ulp of 2^-53), the sum is
    math.fsum (correctly rounded), and log_softmax = d - log(S) adds two numbers of the
    same sign (d <= 0, log S >= 0; at the max -log1p(rest)): no cancellation, so every
    value is within 2^-50 relative (|d| 2^-53 for e^d, |d| < 110 where e^d is above the
    16-bit types' smallest subnormal), 2^-39 of a 16-bit ulp."""
    n = xs.size
    if np.isnan(xs).any() or (xs == -np.inf).all():
        return np.full(n, np.nan), np.full(n, np.nan)
    if (xs == np.inf).any():
        c = int((xs == np.inf).sum())
        return (np.where(xs == np.inf, 1.0 / c, 0.0),
                np.where(xs == np.inf, -math.log(c), -np.inf))
    d = xs - xs.max()
    with np.errstate(under="ignore", invalid="ignore"):
        e = np.exp(d)
    top = d == 0
    c = int(top.sum())
    rest = math.fsum(e[~top].tolist())
    lse = math.log1p(rest) if c == 1 else math.log(c + rest)
    return e / (c + rest), d - lse


class SoftmaxRows:
    """Rows of one length (rows along axis 1 of x), grad_output, the exact forward of
    every function, its 16-bit rounding (the y of backward from y), and the exact
    backward from y and from x with their slack (see softmax_bounds)."""

    def __init__(self, n, dt, seed):
        rng = np.random.default_rng(seed)
        kinds = _row_kinds(n, rng)
        self.names = [k for k, _ in kinds]
        self.x = np.array([r for _, r in kinds]).astype(dt)
        self.g = (rng.standard_normal(self.x.shape) * 2).astype(dt)
        self.dt = dt
        self.ref = {f: self._func(f) for f in FUNCS}

    def _func(self, func):
        dt, sign, log = self.dt, SIGN[func], func == "log_softmax"
        x64, g64 = self.x.astype(np.float64), self.g.astype(np.float64)
        out = {k: np.empty_like(x64) for k in ("fwd", "yin", "bwdy", "bwdy_slack", "bwdx",
                                               "bwdx_slack", "fb1", "fb1_slack")}
        for i, (xr, gr) in enumerate(zip(x64, g64)):
            p, lg = _forward_row(sign * xr)
            out["fwd"][i] = lg if log else p
            yin = round16(out["fwd"][i], dt)
            out["yin"][i] = yin.astype(np.float64)
            for key, y, gg, from_y in (("bwdy", out["yin"][i], gr, True), ("bwdx", None, gr, False),
                                       ("fb1", None, np.ones_like(gr), False)):
                r, slack = softmax_bounds(func, gg, p, y)
                out[key][i], out[key + "_slack"][i] = r, slack
        return out


def softmax_bounds(func, g, p, y=None):
    """The exact backward for grad_output g, from the given y (when not None) or from the
    exact forward p (softmax probabilities), and its slack: tests/test_softmax.py's
    float32 scheme. The 16-bit inputs are exact in float32 and the kernels compute in
    float32 (u = 2^-24), rounding once to the 16-bit type at the end, so the bound is
    1 ulp of the 16-bit type at the exact value plus float32's first-order effect of its
    rounding: 4u S_i, S_i = y_i sum_j |g_j y_j| + y_i |g_i| (softmax, softmin) or |g_i| +
    e^(y_i) sum_j |g_j| (log_softmax), and from x 4 ulp32(y_i) |g_i - s| more (the y
    rounded inside); below float32's smallest normal number the flush of y (or e^y)
    times |g_i - s| (or sum |g|). From x, u is U16X instead of float32's u: the 16-bit
    rows' e^(v - m) takes v - m rounded to float (relative error |v - m| 2^-24, at most
    2^-17.5 where e is above bfloat16's smallest subnormal) and their sums of e add 16
    terms in float (2^-20)."""
    sign, log = SIGN[func], func == "log_softmax"
    u = U32 if y is not None else U16X
    with np.errstate(all="ignore"):
        if log:
            sg = _fsum(g)
            ey = p if y is None else np.exp(y)
            r = g - ey * sg
            a = np.sum(np.abs(g))
            slack = 4 * u * (np.abs(g) + ey * a) + np.where(ey < F32_TINY, F32_TINY * a, 0.0)
        else:
            yy = p if y is None else y
            s = _fsum(g * yy)
            r = sign * yy * (g - s)
            ds = np.abs(g - s)
            slack = 4 * u * (yy * np.sum(np.abs(g * yy)) + yy * np.abs(g))
            slack = slack + np.where(yy < F32_TINY, F32_TINY * ds, 0.0)
            if y is None:
                slack = slack + 4 * u * 2 * yy * ds
    return r, slack


@functools.lru_cache(maxsize=None)
def softmax_rows(n, type_name):
    return SoftmaxRows(n, half_dtype(type_name), seed=n)


def _check_forward(got, exact, dt, what, x):
    gotf = got.astype(np.float64)
    err = key_error(got, exact, dt)
    with np.errstate(invalid="ignore"):
        ok = (err <= 1) | (np.isinf(exact) & (gotf == exact))
    assert ok.all(), describe_bad(what, ~ok, got, exact, err, x=x)


def _check_backward(got, exact, slack, dt, what, x, g):
    gotf = got.astype(np.float64)
    with np.errstate(invalid="ignore"):
        ok = np.abs(gotf - exact) <= ulp16(exact, dt) + slack
        ok |= np.isnan(exact) & np.isnan(gotf)
        ok |= np.isinf(exact) & (gotf == exact)
        ok |= np.isinf(gotf) & (gotf == round16(exact, dt).astype(np.float64))  # overflow
    assert ok.all(), describe_bad(what, ~ok, got, exact, x=x, g=g)


LAYOUTS = [("C", -1, lambda a: np.ascontiguousarray(a)),
           ("F", -1, lambda a: np.asfortranarray(a)),
           ("C", 0, lambda a: np.ascontiguousarray(a.T)),
           ("F", 0, lambda a: np.asfortranarray(a.T))]


@pytest.mark.parametrize("n", [n for n in LENGTHS if n <= 1000])
@pytest.mark.parametrize("func", FUNCS)
def test_softmax_rows_within_one_ulp(func, n, half, backend_level):
    """Rows of n elements of every kind (normals of scale 1..30, constant, one dominant
    entry, others far below it, -inf and +inf entries, NaN, all -inf), as the last axis
    of a C and of an F array and as axis 0 of a C and of an F array, every SIMD level and
    the NumPy backend: the forward within 1 ulp of the 16-bit type (key measure), the
    backward from y and from x and forward_backward (with grad_output and without: ones)
    within the bound of softmax_bounds; every result of x's dtype and layout."""
    _softmax_rows_check(func, n, half, LAYOUTS)


@pytest.mark.parametrize("func", FUNCS)
def test_softmax_long_rows_within_one_ulp(func, half, backend):
    """Rows of 70000 elements (the compiled kernels sum them in blocks of 32768: three
    blocks, combined in order) of four kinds (normals of scale 30, one entry far above
    the others, -inf entries, +inf entries) along the last axis and along axis 0 (the
    kernels' column tiles), on the best SIMD level and the NumPy backend: as above."""
    _softmax_rows_check(func, 70000, half, [LAYOUTS[0], LAYOUTS[2]])


@pytest.mark.parametrize("n", [softmax_constant(c) + k for c in ("FA_SMX_HROW", "FA_SMX_BLOCK",
                                                                  "FA_SMX_HLONG")
                               for k in (0, 1)])
@pytest.mark.parametrize("func", FUNCS)
def test_softmax_rows_at_the_buffer_limits(func, n, half, backend_level):
    """Rows as long as the 16-bit kernels' stack buffers (FA_SMX_HROW: several rows at
    once), one element longer (one row at a time in a heap buffer, or by pieces), as long
    as a block (FA_SMX_BLOCK) and one element longer (a row's blocks), as long as eight
    (FA_SMX_HLONG: the heap buffer's longest) and one element longer (by pieces), every
    SIMD level and the NumPy backend: as above, along the last axis."""
    _softmax_rows_check(func, n, half, LAYOUTS[:1])


def _softmax_rows_check(func, n, dt, layouts):
    rows = softmax_rows(n, dt.name)
    ref = rows.ref[func]
    f = lambda s: getattr(fastact, func + s)        # noqa: E731
    for order, axis, lay in layouts:
        x, g, yin = lay(rows.x), lay(rows.g), lay(ref["yin"].astype(dt))
        r = {k: lay(v) for k, v in ref.items()}
        what = f"{func} {dt.name} n={n} {order} axis={axis}"
        y = f("")(x, axis)
        assert y.dtype == dt and y.shape == x.shape, what
        assert y.flags.f_contiguous if order == "F" else y.flags.c_contiguous, what
        _check_forward(y, r["fwd"], dt, what + " forward", x)
        by = f("_backward")(g, y=yin, axis=axis)
        assert by.dtype == dt
        _check_backward(by, r["bwdy"], r["bwdy_slack"], dt, what + " backward from y", x, g)
        bx = f("_backward")(g, x, axis=axis)
        assert bx.dtype == dt
        _check_backward(bx, r["bwdx"], r["bwdx_slack"], dt, what + " backward from x", x, g)
        fy, fgx = f("_forward_backward")(x, axis, g)
        assert fy.dtype == fgx.dtype == dt
        assert same(fy, y), what                             # the same forward
        _check_backward(fgx, r["bwdx"], r["bwdx_slack"], dt, what + " forward_backward", x, g)
        fy1, fgx1 = f("_forward_backward")(x, axis)
        assert same(fy1, y)
        _check_backward(fgx1, r["fb1"], r["fb1_slack"], dt, what + " forward_backward (ones)",
                        x, np.ones_like(g))


def _smx_shapes():
    """Shapes on both sides of each limit of the 16-bit kernels' float buffers: rows
    (axis -1) transposed into the columns of tiles of FA_SMX_HROW / n (FA_SMX_HSHORT, and
    FA_SMX_HODD but for a multiple of 16),
    widened several at once (FA_SMX_HBATCH), one at a time on the stack (FA_SMX_HROW)
    or the heap (FA_SMX_HLONG), or by pieces (a row's blocks: FA_SMX_BLOCK); columns
    (axis 0) in sub-tiles
    of FA_SMX_HCOLS elements, at least FA_SMX_HCOLS_MIN wide, or a few rows at a time."""
    c = {k: softmax_constant("FA_SMX_" + k) for k in ("HSHORT", "HODD", "HBATCH", "HROW",
                                                      "BLOCK", "HLONG", "HCOLS",
                                                      "HCOLS_MIN")}
    rows = [((3, n), -1) for k in ("HBATCH", "HROW", "BLOCK", "HLONG")
            for n in (c[k], c[k] + 1)]
    rows.append(((5, c["HBATCH"] // 3), -1))
    # short rows: three tiles (the last one narrower; at HSHORT // 2 + 1 their rows rounded
    # down to a multiple of 16), and the first lengths past them
    rows += [((2 * c["HROW"] // n + 7, n), -1)
             for n in (3, c["HSHORT"] // 2 + 1, c["HSHORT"], c["HSHORT"] + 1,
                       c["HSHORT"] + 16, c["HODD"] - 1, c["HODD"], c["HODD"] + 1)]
    n = c["HCOLS"] // c["HCOLS_MIN"]                    # the longest columns in sub-tiles
    cols = [((c["HCOLS"] // 90, 200), 0),               # sub-tiles 80, 80, 40 wide
            ((n, 2 * c["HCOLS_MIN"] + 5), 0),           # sub-tiles of HCOLS_MIN
            ((n + 1, 100), 0),                          # too long: a few rows at a time
            ((40, 300), 0)]                             # one sub-tile
    return rows + cols


@pytest.mark.parametrize("shape, axis", _smx_shapes(), ids=lambda v: str(v))
@pytest.mark.parametrize("func", FUNCS)
def test_softmax_16bit_paths_agree(func, shape, axis, half, compiled_level):
    """Every path of the 16-bit kernels' buffers gives one answer (docs/half.md): float's
    passes for 16-bit data (v - m rounded, e summed in float lanes 16 terms at a time: 16
    rows of a row's lanes, or a column's rows counted from its first; pieces of
    FA_SMX_HROW added in float64 in order). Along either axis forward_backward's y is the
    forward's bit for bit and its gradient the backward from x's, whichever path each op
    takes (log_softmax's forward reads its rows by pieces and its columns a few rows at a
    time, its forward_backward whole where the buffers hold them), a row (a column) gives
    the same bits alone as among others (rows widened several at once; columns in
    sub-tiles of another width), the forward is within 1 ulp of the exact value, and the
    backward from y (which has no exponential to sum) is float32's rounded. Every SIMD
    level."""
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * 6).astype(half)
    g = rng.standard_normal(shape).astype(half)
    x.flat[::97] = np.inf if func == "softmin" else -np.inf      # zero terms (rows and
    # columns with an infinite max take the special values' path, which is not this)
    gf = g.astype(np.float32)
    f = lambda s: getattr(fastact, func + s)        # noqa: E731
    y, gx = f("_forward_backward")(x, axis, g)
    got = {"forward": f("")(x, axis), "forward_backward y": y, "forward_backward": gx,
           "backward from x": f("_backward")(g, x, axis=axis),
           "backward from y": f("_backward")(g, y=y, axis=axis)}
    for what, h in got.items():
        assert h.dtype == half, what
    bits = lambda a: a.view(np.uint16)              # noqa: E731
    what = f"{func} {shape} {axis}"
    want_y = f("_backward")(gf, y=y.astype(np.float32), axis=axis).astype(half)
    assert np.array_equal(bits(got["backward from y"]), bits(want_y)), what + " backward from y"
    assert np.array_equal(bits(got["forward"]), bits(y)), what + " forward_backward's y"
    assert np.array_equal(bits(got["backward from x"]), bits(gx)), what + " backward from x"
    sign, log = SIGN[func], func == "log_softmax"
    rows = np.moveaxis(x.astype(np.float64), axis, -1)
    exact = np.array([_forward_row(sign * r)[1 if log else 0] for r in rows])
    _check_forward(got["forward"], np.moveaxis(exact, -1, axis), half, what + " forward", x)
    other = 1 - axis % 2                            # the axis along which rows are taken
    for i in (0, shape[other] - 1):                 # a row alone, a column with one other
        # (a single column would be a row: contiguous)
        pick = lambda a: np.take(a, [i] if other == 0 else [i, i // 2], axis=other)  # noqa: E731
        yi, gi = f("_forward_backward")(pick(x), axis, pick(g))
        assert np.array_equal(bits(yi), bits(pick(y))), f"{what}: row {i} alone"
        assert np.array_equal(bits(gi), bits(pick(gx))), f"{what}: row {i} alone (gradient)"


@pytest.mark.parametrize("func", FUNCS)
def test_softmax_dtypes_out_and_promotion(func, half):
    dt = half
    f = lambda s: getattr(fastact, func + s)        # noqa: E731
    rng = np.random.default_rng(8)
    x = (rng.standard_normal((5, 9)) * 3).astype(dt)
    g = rng.standard_normal((5, 9)).astype(dt)
    y = f("")(x, 1)
    assert y.dtype == dt
    o, o2 = np.empty_like(x), np.empty_like(x)
    assert f("")(x, 1, out=o) is o and same(o, y)
    assert f("_backward")(g, y=y, axis=1, out=o) is o and same(o, f("_backward")(g, y=y, axis=1))
    r = f("_forward_backward")(x, 1, g, out=o, grad_out=o2)
    assert r[0] is o and r[1] is o2 and same(r, f("_forward_backward")(x, 1, g))
    xc = x.copy()
    assert f("")(xc, 1, out=xc) is xc and same(xc, y)      # in place
    wrong = [np.float32, np.float64] + ([np.float16] if dt.name == "bfloat16" else [])
    for w in wrong:
        keep = np.full(x.shape, 7, w)
        with pytest.raises(TypeError):
            f("")(x, 1, out=keep)
        with pytest.raises(TypeError):
            f("_forward_backward")(x, 1, g, grad_out=keep)
        assert np.all(keep == 7)
    for other in (np.float32, np.float64):
        assert f("_backward")(g.astype(other), y=y, axis=1).dtype == other
        assert f("_backward")(g, x.astype(other), axis=1).dtype == other
    if dt.name == "bfloat16":
        h, w = np.float16, np.float32
        check_half_pair(lambda: f("_backward")(g.astype(h), y=y, axis=1),
                        lambda: f("_backward")(g.astype(h).astype(w), y=y.astype(w), axis=1),
                        r"grad_output \(float16\) and y \(bfloat16\)")
        check_half_pair(lambda: f("_forward_backward")(x, 1, g.astype(h)),
                        lambda: f("_forward_backward")(x.astype(w), 1, g.astype(h).astype(w)),
                        r"grad_output \(float16\) and x \(bfloat16\)")
    # 0-d: a scalar of the dtype
    s = f("")(x[0, 0])
    assert isinstance(s, np.generic) and s.dtype == dt


# ---------------------------------------------------------------------------------------
# fastact.torch: float16 and bfloat16 CPU tensors computed by fastact's kernels


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(params=TYPES)
def tdt(request, torch):
    """(the torch dtype, the NumPy dtype) of a 16-bit type."""
    return getattr(torch, request.param), half_dtype(request.param)


def to_np(t):
    """A NumPy copy of a 16-bit CPU tensor, the same bits (bfloat16 as ml_dtypes')."""
    import torch
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(half_dtype("bfloat16")).copy()
    return t.numpy().copy()


def assert_bits(t, a, what=""):
    """A tensor (or array) and a NumPy array: the same dtype and shape and the same bits
    (NaN: any NaN)."""
    a = np.asarray(a)
    n = t if isinstance(t, np.ndarray) else to_np(t)
    assert n.dtype == a.dtype and n.shape == a.shape, (what, n.dtype, a.dtype, n.shape, a.shape)
    same_bits = bits(n) == bits(a)
    both_nan = np.isnan(n.astype(np.float32)) & np.isnan(a.astype(np.float32))
    bad = ~(same_bits | both_nan)
    assert not bad.any(), (f"{what}: {bad.sum()} of {bad.size} differ, e.g. at "
                           f"{np.argwhere(bad)[0]}: tensor {n[bad][0]!r}, NumPy {a[bad][0]!r}")


def half_tensor(torch, tdtype, shape, seed=0, scale=4.0, specials=True):
    gen = torch.Generator().manual_seed(seed)
    t = torch.randn(shape, generator=gen, dtype=torch.float64) * scale
    if specials:
        flat = t.view(-1)
        vals = torch.tensor([0.0, -0.0, float("inf"), float("-inf"), float("nan"), 1e-3,
                             -30.0, 30.0], dtype=torch.float64)
        flat[:vals.numel()] = vals[:flat.numel()]
    return t.to(tdtype)


def _module_name(act):
    return act.torch_module or act.cls_name


def test_cases_cover_every_activation():
    assert {name for name, _ in CASES} == {a.name for a in ACTIVATIONS_TABLE}


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_torch_elementwise_is_fastacts(case, tdt, torch):
    """Every activation and parameter set: fastact.torch's forward, its module's forward,
    and the autograd backward equal fastact's NumPy functions on the same 16-bit data
    bit for bit (from y where the backward saved y, else from x), in the tensor's dtype."""
    import fastact.torch as ft
    tdtype, dt = tdt
    name, params = case
    x = half_tensor(torch, tdtype, (5, 37), seed=1).requires_grad_()
    g = half_tensor(torch, tdtype, (5, 37), seed=2, scale=2.0, specials=False)
    xn, gn = to_np(x), to_np(g)
    y = getattr(ft, name)(x, **params)
    assert y.dtype == tdtype and y.shape == x.shape
    yn = getattr(fastact, name)(xn, **params)
    assert_bits(y, yn, f"{name} forward")
    module = getattr(ft, _module_name(ACTIVATIONS_BY_NAME[name]))(**params)
    assert_bits(module(x), yn, f"{name} module")
    saved, = y.grad_fn.saved_tensors
    y.backward(g)
    assert x.grad.dtype == tdtype
    if saved.data_ptr() == y.data_ptr():
        want = getattr(fastact, name + "_backward")(gn, y=yn, **params)
    else:
        assert saved.data_ptr() == x.data_ptr()
        want = getattr(fastact, name + "_backward")(gn, xn, **params)
    assert_bits(x.grad, want, f"{name} backward")


@pytest.mark.parametrize("bounds", HARDTANH_BOUNDS, ids=str)
def test_torch_hardtanh_gradient_is_pytorchs(bounds, tdt, torch):
    """fastact.torch's hardtanh (function and module) in 16 bits, every pattern but NaN:
    the gradient of PyTorch's hardtanh, whether or not the bounds are values of the type
    (fastact saves y for backward only where they are: float16(0.1) is both a clipped y
    and an x inside the bounds of 0.1)."""
    import fastact.torch as ft
    tdtype, _ = tdt
    lo, hi = bounds
    x = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16).view(tdtype)
    x = x[~torch.isnan(x)]
    g = torch.empty(x.shape, dtype=torch.float32).uniform_(0.5, 4.0,
                                                           generator=torch.Generator().manual_seed(0))
    g = g.to(tdtype)
    # PyTorch's 16-bit hardtanh refuses bounds past float16's range: its float32 one then
    want = x.clone().requires_grad_()
    try:
        want_y = torch.nn.functional.hardtanh(want, lo, hi)
    except RuntimeError as e:
        assert "overflow" in str(e) and max(abs(lo), abs(hi)) > 65504
        want = x.float().requires_grad_()
        want_y = torch.nn.functional.hardtanh(want, lo, hi)
    want_y.backward(g.float() if want.dtype == torch.float32 else g)
    for f in (lambda t: ft.hardtanh(t, lo, hi), ft.Hardtanh(lo, hi)):
        got = x.clone().requires_grad_()
        y = f(got)
        assert torch.equal(y, want_y.detach().to(tdtype))
        y.backward(g)
        assert torch.equal(got.grad, want.grad.to(tdtype)), (lo, hi)


@pytest.mark.parametrize("case", GATED, ids=gid)
def test_torch_gated_is_fastacts(case, tdt, torch):
    """The gated units, split along every dim and as two tensors, their modules and
    their autograd backward: fastact's NumPy results on the same 16-bit data."""
    import fastact.torch as ft
    tdtype, dt = tdt
    name, params = case
    module_cls = getattr(ft, {"glu": "GLU", "swiglu": "SwiGLU", "geglu": "GeGLU",
                              "reglu": "ReGLU"}[name])
    for dim in (0, 1, -1):
        x = half_tensor(torch, tdtype, (6, 8, 10), seed=3).requires_grad_()
        xn = to_np(x)
        yn = getattr(fastact, name)(xn, dim, **params)
        y = getattr(ft, name)(x, dim, **params)
        assert y.dtype == tdtype
        assert_bits(y, yn, f"{name} dim={dim}")
        assert_bits(module_cls(dim, **params)(x), yn, f"{name} module dim={dim}")
        g = half_tensor(torch, tdtype, tuple(y.shape), seed=4, scale=2, specials=False)
        y.backward(g)
        assert x.grad.dtype == tdtype
        assert_bits(x.grad, getattr(fastact, name + "_backward")(to_np(g), xn, dim, **params),
                    f"{name} backward dim={dim}")
    a = half_tensor(torch, tdtype, (6, 8), seed=5).requires_grad_()
    gate = half_tensor(torch, tdtype, (6, 8), seed=6).requires_grad_()
    y = getattr(ft, name)(a, gate, **params)
    an, bn = to_np(a), to_np(gate)
    assert_bits(y, getattr(fastact, name)(an, bn, **params), f"{name} two tensors")
    assert_bits(module_cls(-1, **params)(a, gate), getattr(fastact, name)(an, bn, **params))
    g = half_tensor(torch, tdtype, (6, 8), seed=7, scale=2, specials=False)
    y.backward(g)
    ga, gg = getattr(fastact, name + "_backward")(to_np(g), an, bn, **params)
    assert_bits(a.grad, ga, f"{name} grad a")
    assert_bits(gate.grad, gg, f"{name} grad gate")


def test_torch_prelu_is_fastacts(tdt, torch):
    """prelu and PReLU: y, grad_x and grad_weight (the weight's dtype) equal fastact's
    prelu / prelu_backward on the same 16-bit data."""
    import fastact.torch as ft
    tdtype, dt = tdt
    x = half_tensor(torch, tdtype, (4, 3, 5), seed=8).requires_grad_()
    for w0 in ([0.25, -1.5, 3.0], [0.375]):
        w = torch.tensor(w0, dtype=tdtype, requires_grad=True)
        x.grad = None
        y = ft.prelu(x, w)
        xn, wn = to_np(x), to_np(w)
        assert y.dtype == tdtype
        assert_bits(y, fastact.prelu(xn, wn), f"prelu w={w0}")
        g = half_tensor(torch, tdtype, (4, 3, 5), seed=9, scale=2, specials=False)
        g[0, 0, 0] = 1.0                      # x there is 0: grad_weight stays finite
        x2 = x.detach().clone()
        x2[0, 0, :5] = torch.tensor([0.0, -0.0, 1.0, -1.0, 2.0]).to(tdtype)
        x2.requires_grad_()
        y2 = ft.prelu(x2, w)
        y2.backward(g)
        gx, gw = fastact.prelu_backward(to_np(g), to_np(x2), wn)
        assert x2.grad.dtype == tdtype and w.grad.dtype == tdtype
        assert_bits(x2.grad, gx, "prelu grad_x")
        assert_bits(w.grad, np.asarray(gw).reshape(w.shape), "prelu grad_weight")
    m = ft.PReLU(3, init=0.2).to(tdtype)
    xf = half_tensor(torch, tdtype, (4, 3, 5), seed=10, specials=False)
    assert m.weight.dtype == tdtype
    assert_bits(m(xf), fastact.prelu(to_np(xf), to_np(m.weight)), "PReLU")


def test_torch_rrelu_is_fastacts(tdt, torch, monkeypatch):
    """rrelu in training: the slopes are fastact's for the seed drawn from torch's
    generator (the spy records it); y and the backward (grad_output times the slopes)
    equal fastact's NumPy results with that seed; torch.manual_seed reproduces them;
    in evaluation leaky_relu with the mean slope."""
    import fastact.torch as ft
    from fastact import _api_gated
    tdtype, dt = tdt
    seeds = []
    real = _api_gated.rrelu_forward_backward

    def spy(*args, **kwargs):
        seeds.append(kwargs.get("seed"))
        return real(*args, **kwargs)
    monkeypatch.setattr(_api_gated, "rrelu_forward_backward", spy)
    x = half_tensor(torch, tdtype, (6, 50), seed=11).requires_grad_()
    xn = to_np(x)
    torch.manual_seed(123)
    y = ft.rrelu(x, 0.1, 0.3, training=True)
    assert len(seeds) == 1 and y.dtype == tdtype
    yn, noise = fastact.rrelu_forward_backward(xn, 0.1, 0.3, True, seed=seeds[0])
    assert_bits(y, yn, "rrelu training")
    g = half_tensor(torch, tdtype, (6, 50), seed=12, scale=2, specials=False)
    y.backward(g)
    assert_bits(x.grad, fastact.rrelu_backward(to_np(g), xn, 0.1, 0.3, True, noise=noise),
                "rrelu backward")
    torch.manual_seed(123)
    assert_bits(ft.rrelu(x, 0.1, 0.3, training=True), yn, "rrelu reproducible")
    m = ft.RReLU(0.1, 0.3)
    torch.manual_seed(123)
    assert_bits(m(x), yn, "RReLU training")
    m.eval()
    assert_bits(m(x), fastact.leaky_relu(xn, 0.2), "RReLU eval")
    assert_bits(ft.rrelu(x, 0.1, 0.3), fastact.leaky_relu(xn, 0.2), "rrelu eval")


@pytest.mark.parametrize("func", FUNCS)
def test_torch_softmax_is_fastacts(func, tdt, torch):
    """softmax, log_softmax, softmin and their modules along every dim, rows with +inf
    and NaN included: y and the autograd backward (from the saved y) equal fastact's
    NumPy results on the same 16-bit data."""
    import fastact.torch as ft
    tdtype, dt = tdt
    module_cls = getattr(ft, {"softmax": "Softmax", "log_softmax": "LogSoftmax",
                              "softmin": "Softmin"}[func])
    for dim in (0, 1, 2, -1):
        x = half_tensor(torch, tdtype, (4, 6, 5), seed=13, specials=False)
        x[1, 2, :] = float("inf") if func != "softmin" else float("-inf")
        x[2, :, 3] = float("nan")
        x[3, 1, 1] = float("-inf")
        x.requires_grad_()
        xn = to_np(x)
        y = getattr(ft, func)(x, dim)
        assert y.dtype == tdtype and type(y.grad_fn).__name__.endswith("FunctionBackward")
        yn = getattr(fastact, func)(xn, axis=dim)
        assert_bits(y, yn, f"{func} dim={dim}")
        assert_bits(module_cls(dim)(x), yn, f"{func} module dim={dim}")
        g = half_tensor(torch, tdtype, (4, 6, 5), seed=14, scale=2, specials=False)
        y.backward(g)
        assert x.grad.dtype == tdtype
        assert_bits(x.grad, getattr(fastact, func + "_backward")(to_np(g), y=yn, axis=dim),
                    f"{func} backward dim={dim}")


def _layouts(torch, tdtype, seed):
    """The same values in four layouts: contiguous, transposed, channels-last, and a
    view with gaps."""
    base = half_tensor(torch, tdtype, (2, 4, 6, 8), seed=seed)
    wide = torch.zeros((2, 4, 6, 16), dtype=tdtype)
    wide[..., ::2] = base
    return {"contiguous": base,
            "transposed": base.transpose(1, 3).contiguous().transpose(1, 3),
            "channels_last": base.contiguous(memory_format=torch.channels_last),
            "strided": wide[..., ::2]}


def test_torch_layouts(tdt, torch):
    """Transposed, channels-last and strided (gaps) 16-bit tensors: the values and
    gradients of the contiguous tensor; dense layouts keep their strides (the kernels
    ran on the tensor's memory)."""
    import fastact.torch as ft
    tdtype, dt = tdt
    # (what, the call, whether the output keeps a dense input's layout: docs/torch.md and
    # docs/softmax.md say so of the elementwise functions and the softmax family)
    calls = [("gelu", lambda t: ft.gelu(t), True), ("relu", lambda t: ft.relu(t), True),
             ("swiglu", lambda t: ft.swiglu(t, 1), False),
             ("softmax", lambda t: ft.softmax(t, 1), True),
             ("log_softmax", lambda t: ft.log_softmax(t, 3), True),
             ("prelu", lambda t: ft.prelu(t, torch.tensor([0.25, -1.0, 2.0, 0.5], dtype=tdtype)),
              False)]
    layouts = _layouts(torch, tdtype, 15)
    for what, fn, keeps_layout in calls:
        results = {}
        for lname, t in layouts.items():
            t = t.detach().clone(memory_format=torch.preserve_format) if lname != "strided" \
                else t.detach()
            x = t.requires_grad_()
            y = fn(x)
            assert y.dtype == tdtype
            if lname in ("transposed", "channels_last") and keeps_layout:
                assert y.stride() == x.stride(), (what, lname, y.stride(), x.stride())
            g = torch.linspace(-2, 2, y.numel(), dtype=torch.float64).reshape(y.shape).to(tdtype)
            y.backward(g)
            results[lname] = (to_np(y), to_np(x.grad))
        for lname, (yv, gv) in results.items():
            assert_bits(yv, results["contiguous"][0], f"{what} {lname}")
            assert_bits(gv, results["contiguous"][1], f"{what} {lname} gradient")


def test_torch_kernel_path_ran_not_pytorch(tdt, torch, monkeypatch):
    """Spies: with PyTorch's own functions made to raise, fastact.torch still computes
    16-bit tensors (forward and backward), and fastact's entry points were called."""
    import torch.nn.functional as F
    import fastact.torch as ft
    from fastact import _api, _api_gated, _gated, _softmax
    tdtype, dt = tdt

    def boom(*args, **kwargs):
        raise AssertionError("PyTorch's implementation ran")
    for fname in ("gelu", "silu", "glu", "prelu", "rrelu", "softmax", "log_softmax", "softmin",
                  "leaky_relu", "relu"):
        monkeypatch.setattr(F, fname, boom)
    calls = []

    def spy(module, attr):
        real = getattr(module, attr)

        def wrapper(*args, **kwargs):
            calls.append(attr)
            return real(*args, **kwargs)
        monkeypatch.setattr(module, attr, wrapper)
    real_launch = ft._launch                # the elementwise kernels' one launch
    monkeypatch.setattr(ft, "_launch", lambda spec, entry, *a: calls.append(
        "_forward" if entry == _api.FWD else "_backward") or real_launch(spec, entry, *a))
    for module, attr in ((_gated, "split"),
                         (_gated, "pair"), (_api_gated, "prelu"),
                         (_api_gated, "prelu_backward"), (_api_gated, "rrelu_forward_backward")):
        spy(module, attr)
    real_run = ft._softmax_run               # the softmax family's call of the backends
    monkeypatch.setattr(ft, "_softmax_run", lambda name, op, *a: calls.append(
        {_softmax.FWD: "softmax", _softmax.BWDY: "softmax_backward"}[op])
        or real_run(name, op, *a))
    x = half_tensor(torch, tdtype, (4, 6), seed=16).requires_grad_()
    w = torch.tensor([0.25] * 6, dtype=tdtype, requires_grad=True)
    steps = [(lambda: ft.gelu(x), ["_forward", "_backward"]),
             (lambda: ft.GELU(approximate="tanh")(x), ["_forward", "_backward"]),
             (lambda: ft.silu(x), ["_forward", "_backward"]),
             (lambda: ft.swiglu(x, 1), ["split", "split"]),
             (lambda: ft.glu(x[:, :3], x[:, 3:]), ["pair", "pair"]),
             (lambda: ft.prelu(x, w), ["prelu", "prelu_backward"]),
             (lambda: ft.rrelu(x, training=True), ["rrelu_forward_backward"]),
             (lambda: ft.softmax(x, 1), ["softmax", "softmax_backward"]),
             (lambda: ft.Softmax(0)(x), ["softmax", "softmax_backward"])]
    for make, expected in steps:
        calls.clear()
        y = make()
        y.backward(torch.ones_like(y))
        assert y.dtype == tdtype and calls == expected, (expected, calls)


def test_torch_grad_output_of_another_dtype(tdt, torch, monkeypatch):
    """A grad_output of another dtype: autograd casts it to the output's dtype before the
    backward (then the kernels compute it); a backward called with it directly falls back
    to PyTorch's formula (no kernel call), with PyTorch's promotion, close to the float64
    gradient."""
    import fastact.torch as ft
    from fastact import _api
    tdtype, dt = tdt
    calls = []
    real = ft._launch
    monkeypatch.setattr(ft, "_launch", lambda spec, entry, *a: (
        entry != _api.FWD and calls.append(1)) or real(spec, entry, *a))
    x = half_tensor(torch, tdtype, (3, 7), seed=17, scale=2, specials=False).requires_grad_()
    g32 = torch.linspace(-2, 2, 21, dtype=torch.float32).reshape(3, 7)
    for name in ("gelu", "sigmoid", "relu"):
        y = getattr(ft, name)(x)
        calls.clear()
        via_engine, = torch.autograd.grad(y, x, g32, retain_graph=True)
        cast, = torch.autograd.grad(y, x, g32.to(tdtype), retain_graph=True)
        assert len(calls) == 2 and via_engine.dtype == tdtype and torch.equal(via_engine, cast)
        calls.clear()
        with torch.no_grad():
            direct = y.grad_fn.apply(g32)
        direct = direct[0] if isinstance(direct, tuple) else direct
        assert calls == [] and direct.dtype in (tdtype, torch.float32), (name, direct.dtype)
        x64 = x.detach().double().requires_grad_()
        expected, = torch.autograd.grad(getattr(torch.nn.functional, name)(x64), x64,
                                        g32.double())
        tol = 2.0 ** -7 if dt.name == "bfloat16" else 2.0 ** -9
        torch.testing.assert_close(direct.double(), expected, rtol=tol, atol=tol)
    # the softmax family and the gated units take the same route
    for fn, ref in ((lambda t: ft.softmax(t, 1), lambda t: torch.softmax(t, 1)),
                    (lambda t: ft.swiglu(t[:, :3], t[:, 3:6]),
                     lambda t: t[:, :3] * torch.nn.functional.silu(t[:, 3:6]))):
        y = fn(x)
        with torch.no_grad():
            direct = y.grad_fn.apply(g32[:, :y.shape[1]])
        direct = [d for d in (direct if isinstance(direct, tuple) else (direct,))
                  if isinstance(d, torch.Tensor)]
        x64 = x.detach().double().requires_grad_()
        y64 = ref(x64)
        want, = torch.autograd.grad(y64, x64, g32[:, :y.shape[1]].double())
        got = direct[0] if len(direct) == 1 else torch.cat(
            direct + [torch.zeros(3, x.shape[1] - 6, dtype=direct[0].dtype)], 1)
        tol = 2.0 ** -6 if dt.name == "bfloat16" else 2.0 ** -8
        torch.testing.assert_close(got.double(), want, rtol=tol, atol=tol)


def test_torch_bfloat16_training_step(torch, monkeypatch):
    """A small bfloat16 model of fastact.torch modules (GELU, SwiGLU, PReLU, RReLU,
    LogSoftmax, Softmax): a training step runs on fastact's kernels, its loss is close to
    the same model with torch.nn's activations, and every gradient is finite, nonzero and
    bfloat16."""
    half_dtype("bfloat16")
    import torch.nn.functional as F
    import fastact.torch as ft
    from fastact import _api

    class Model(torch.nn.Module):
        def __init__(self, ours):
            super().__init__()
            nn = torch.nn
            self.l1 = nn.Linear(16, 64)
            self.act1 = ft.GELU(approximate="tanh") if ours else nn.GELU(approximate="tanh")
            self.l2 = nn.Linear(64, 64)
            self.glu = ft.SwiGLU() if ours else None
            self.prelu = ft.PReLU(32) if ours else nn.PReLU(32)
            self.rrelu = ft.RReLU() if ours else nn.RReLU()
            self.l3 = nn.Linear(32, 10)
            self.out = ft.LogSoftmax(dim=1) if ours else nn.LogSoftmax(dim=1)
            self.soft = ft.Softmax(dim=1) if ours else nn.Softmax(dim=1)

        def forward(self, x):
            h = self.l2(self.act1(self.l1(x)))
            h = self.glu(h) if self.glu is not None else h[:, :32] * F.silu(h[:, 32:])
            h = self.l3(self.rrelu(self.prelu(h)))
            return self.out(h), self.soft(h)

    gen = torch.Generator().manual_seed(0)
    data = torch.randn(128, 16, generator=gen).to(torch.bfloat16)
    target = torch.randint(0, 10, (128,), generator=gen)
    losses, grads = [], []
    calls = []
    real = ft._launch
    monkeypatch.setattr(ft, "_launch", lambda spec, entry, *a: (
        entry == _api.FWD and calls.append(1)) or real(spec, entry, *a))
    for ours in (False, True):
        torch.manual_seed(1)
        model = Model(ours).to(torch.bfloat16)
        model.eval() if not ours else None          # RReLU: the same mean slope in both
        model.rrelu.eval()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        logp, p = model(data)
        assert logp.dtype == p.dtype == torch.bfloat16
        loss = F.nll_loss(logp, target) + (p * p).sum() / 128
        opt.zero_grad()
        loss.backward()
        for pname, param in model.named_parameters():
            assert param.grad is not None and param.grad.dtype == torch.bfloat16, pname
            assert torch.isfinite(param.grad).all() and param.grad.abs().sum() > 0, pname
        grads.append({n: p_.grad.float() for n, p_ in model.named_parameters()})
        opt.step()
        losses.append(float(loss.detach()))
    assert calls, "fastact's kernels did not run"
    assert abs(losses[0] - losses[1]) <= 0.02 * abs(losses[0]), losses
    for n in grads[0]:
        diff = (grads[0][n] - grads[1][n]).norm()
        assert diff <= 0.1 * grads[0][n].norm() + 1e-3, (n, float(diff))
    # and in training mode, the random slopes of RReLU too
    model = Model(True).to(torch.bfloat16)
    model.train()
    logp, p = model(data)
    F.nll_loss(logp, target).backward()
    assert all(torch.isfinite(p_.grad).all() for p_ in model.parameters())


def test_torch_bfloat16_without_ml_dtypes_falls_back_to_pytorch(torch):
    """Without ml_dtypes (its import blocked), bfloat16 tensors are computed by PyTorch
    (the same values and gradients as torch.nn.functional, no fastact autograd node);
    float16 tensors are still fastact's."""
    code = r'''
import sys
sys.modules["ml_dtypes"] = None
import torch, torch.nn.functional as F
import fastact.torch as ft
x = (torch.randn(4, 6, generator=torch.Generator().manual_seed(0)) * 3).to(torch.bfloat16)
w = torch.tensor([0.25] * 6, dtype=torch.bfloat16)
cases = [(ft.gelu, F.gelu), (ft.silu, F.silu),
         (lambda t: ft.softmax(t, 1), lambda t: F.softmax(t, 1)),
         (lambda t: ft.log_softmax(t, 0), lambda t: F.log_softmax(t, 0)),
         (lambda t: ft.glu(t, 1), lambda t: F.glu(t, 1)),
         (lambda t: ft.swiglu(t, 1), lambda t: t[:, :3] * F.silu(t[:, 3:])),
         (lambda t: ft.prelu(t, w), lambda t: F.prelu(t, w)),
         (lambda t: ft.rrelu(t, 0.1, 0.3), lambda t: F.rrelu(t, 0.1, 0.3))]
for i, (ours, theirs) in enumerate(cases):
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = ours(a), theirs(b)
    assert ya.dtype == torch.bfloat16 and torch.equal(ya, yb), i
    assert "Function" not in type(ya.grad_fn).__name__, (i, type(ya.grad_fn).__name__)
    ya.sum().backward(); yb.sum().backward()
    assert torch.equal(a.grad, b.grad), i
y16 = ft.gelu(x.to(torch.float16).requires_grad_())
assert type(y16.grad_fn).__name__ == "GELUFunctionBackward", type(y16.grad_fn).__name__
assert "ml_dtypes" not in sys.modules or sys.modules["ml_dtypes"] is None
print("ok")
'''
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), r.stdout + r.stderr


# ---------------------------------------------------------------------------------------
# dask: lazy 16-bit arrays, computed block by block, equal to the NumPy results

@pytest.fixture(scope="module")
def da():
    return pytest.importorskip("dask.array")


def _assert_lazy(da, lazy, eager, what):
    pairs = zip(lazy, eager) if isinstance(eager, tuple) else [(lazy, eager)]
    for lz, w in pairs:
        assert isinstance(lz, da.Array), what
        assert lz.dtype == w.dtype and lz.shape == w.shape, (what, lz.dtype, w.dtype)
        assert lz._meta.dtype == w.dtype, what
        got = lz.compute(scheduler="threads")
        assert got.dtype == w.dtype and np.array_equal(bits(got), bits(w)), what


ELEMENTWISE_DASK = [("gelu", {}), ("silu", {}), ("sigmoid", {}), ("relu", {}),
                    ("elu", {"alpha": 0.5}), ("softplus", {"beta": 2.0, "threshold": 10.0})]


def test_dask_every_entry_point_kind(half, da):
    """Elementwise (forward, grad, backward from x and from y, forward_backward with and
    without grad_output), gated (one array along a single-chunk dim, two arrays), the
    softmax family (forward, backward from x and from y, forward_backward), rrelu in
    evaluation: dask arrays of the 16-bit dtype over several chunks give lazy arrays of
    that dtype whose values are the NumPy results bit for bit."""
    dt = half
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((30, 24)) * 4).astype(dt)
    g = rng.uniform(-2, 2, (30, 24)).astype(dt)
    dx, dg = da.from_array(x, chunks=(7, 10)), da.from_array(g, chunks=(7, 10))
    assert dx.npartitions > 4
    for name, params in ELEMENTWISE_DASK:
        f = lambda s: getattr(fastact, name + s)       # noqa: E731
        _assert_lazy(da, f("")(dx, **params), f("")(x, **params), name)
        _assert_lazy(da, f("_grad")(dx, **params), f("_grad")(x, **params), name + "_grad")
        _assert_lazy(da, f("_backward")(dg, dx, **params), f("_backward")(g, x, **params),
                     name + "_backward")
        _assert_lazy(da, f("_forward_backward")(dx, **params),
                     f("_forward_backward")(x, **params), name + "_forward_backward")
        _assert_lazy(da, f("_forward_backward")(dx, grad_output=dg, **params),
                     f("_forward_backward")(x, grad_output=g, **params), name + " fbg")
        if name in ("sigmoid", "relu"):
            y = f("")(x)
            _assert_lazy(da, f("_backward")(dg, y=da.from_array(y, chunks=(7, 10))),
                         f("_backward")(g, y=y), name + " backward from y")
    # gated: one array (the gated dim in one chunk), two arrays
    dxs = da.from_array(x, chunks=(7, -1))
    gh = g[:, :12]
    dgh = da.from_array(gh, chunks=(7, 12))
    for name, params in GATED:
        f = lambda s: getattr(fastact, name + s)       # noqa: E731
        w = gid((name, params))
        _assert_lazy(da, f("")(dxs, -1, **params), f("")(x, -1, **params), w)
        _assert_lazy(da, f("_grad")(dxs, -1, **params), f("_grad")(x, -1, **params), w + " grad")
        _assert_lazy(da, f("_backward")(dgh, dxs, -1, **params),
                     f("_backward")(gh, x, -1, **params), w + " backward")
        _assert_lazy(da, f("_forward_backward")(dxs, -1, grad_output=dgh, **params),
                     f("_forward_backward")(x, -1, grad_output=gh, **params), w + " fbg")
        a, b = x[:, :12], x[:, 12:]
        da_, db_ = da.from_array(a, chunks=(7, 5)), da.from_array(b, chunks=(7, 5))
        _assert_lazy(da, f("")(da_, db_, **params), f("")(a, b, **params), w + " pair")
        _assert_lazy(da, f("_backward")(dgh.rechunk((7, 5)), da_, db_, **params),
                     f("_backward")(gh, a, b, **params), w + " pair backward")
        _assert_lazy(da, f("_forward_backward")(da_, db_, **params),
                     f("_forward_backward")(a, b, **params), w + " pair fb")
    # the softmax family: rows in one chunk along the axis
    xs = x.copy()
    xs[3, :] = np.array(np.inf).astype(dt)
    for func in FUNCS:
        f = lambda s: getattr(fastact, func + s)       # noqa: E731
        for axis, chunks in ((1, (7, -1)), (0, (-1, 10))):
            dxx, dgg = da.from_array(xs, chunks=chunks), da.from_array(g, chunks=chunks)
            y = f("")(xs, axis)
            _assert_lazy(da, f("")(dxx, axis), y, f"{func} axis={axis}")
            _assert_lazy(da, f("_backward")(dgg, dxx, axis=axis), f("_backward")(g, xs, axis=axis),
                         f"{func} backward from x")
            _assert_lazy(da, f("_backward")(dgg, y=da.from_array(y, chunks=chunks), axis=axis),
                         f("_backward")(g, y=y, axis=axis), f"{func} backward from y")
            _assert_lazy(da, f("_forward_backward")(dxx, axis, dgg),
                         f("_forward_backward")(xs, axis, g), f"{func} fb")
            _assert_lazy(da, f("_forward_backward")(dxx, axis), f("_forward_backward")(xs, axis),
                         f"{func} fb ones")
    # rrelu in evaluation: leaky_relu, lazily; prelu and rrelu in training refuse dask
    _assert_lazy(da, fastact.rrelu(dx, 0.1, 0.3), fastact.rrelu(x, 0.1, 0.3), "rrelu eval")
    with pytest.raises(TypeError, match="dask"):
        fastact.prelu(dx, 0.25)
    with pytest.raises(TypeError, match="dask"):
        fastact.rrelu(dx, training=True, seed=0)


def test_dask_mixed_dtypes(half, da):
    """Promotion with dask arrays as with NumPy ones: a 16-bit x with a float32 or float64
    grad_output gives the wider dtype; float16 with bfloat16 as ml_dtypes defines it
    (float32, or TypeError naming both arguments where it defines none)."""
    dt = half
    x = np.linspace(-3, 3, 40).astype(dt).reshape(8, 5)
    dx = da.from_array(x, chunks=(3, 5))
    for other in (np.float32, np.float64):
        g = np.ones((8, 5), other)
        r = fastact.gelu_backward(da.from_array(g, chunks=(3, 5)), dx)
        assert r.dtype == other
        assert np.array_equal(r.compute(), fastact.gelu_backward(g, x))
        r = fastact.softmax_backward(g, dx, axis=1)
        assert r.dtype == other
        assert np.array_equal(r.compute(), fastact.softmax_backward(g, x, axis=1))
    if dt.name == "bfloat16":
        g16 = da.from_array(np.ones((8, 5), np.float16), chunks=(3, 5))
        check_half_pair(lambda: fastact.gelu_backward(g16, dx).compute(),
                        lambda: fastact.gelu_backward(np.ones((8, 5), np.float32),
                                                      x.astype(np.float32)),
                        r"grad_output \(float16\) and x \(bfloat16\)")


@pytest.mark.parametrize("shape", [(0,), (0, 4), (3, 0, 2)])
def test_torch_empty_16bit_tensors(shape, tdt, torch):
    """Empty float16 and bfloat16 tensors, through every entry of fastact.torch (the
    elementwise functions and modules with their backward, the gated units in both forms,
    prelu, rrelu in training, the softmax family): an empty tensor of the input's shape
    and dtype, as torch.nn.functional gives (bfloat16 had raised TypeError: torch has no
    NumPy bfloat16 to view)."""
    import torch.nn.functional as F
    import fastact.torch as ft
    from helpers import torch_function
    tdtype, _ = tdt
    x = torch.empty(shape, dtype=tdtype, requires_grad=True)
    for name, params in CASES:
        y = getattr(ft, name)(x, **params)
        want = torch_function(name, params)(x)
        assert y.shape == want.shape and y.dtype == want.dtype == tdtype, name
        y.sum().backward()
        assert x.grad.shape == x.shape and x.grad.dtype == tdtype, name
        x.grad = None
    even = torch.empty(shape[:-1] + (0,) if len(shape) > 1 else (0,), dtype=tdtype)
    for name, _ in GATED:
        y = getattr(ft, name)(even)
        assert y.shape == F.glu(even).shape and y.dtype == tdtype, name
        assert getattr(ft, name)(even, even).shape == even.shape, name
    w = torch.full((1,), 0.25, dtype=tdtype)
    assert ft.prelu(x, w).shape == x.shape and ft.prelu(x, w).dtype == tdtype
    assert ft.rrelu(x, training=True).shape == x.shape
    for func in FUNCS:
        y = getattr(ft, func)(x, -1)
        assert y.shape == x.shape and y.dtype == tdtype, func
