"""float16 and bfloat16 (SPEC section 3, docs/contract.md Arrays): read as 16 bits,
computed in float32, rounded once; every result within 1 ulp of the 16-bit type of the
exact value.

- Exhaustively: all 65536 bit patterns of each type as x (and as y for backward from
  y), every case of tests/cases.py, every entry point (forward, grad, backward from x
  and from y with grad_output cycled over a grid of 16-bit values at two shifts,
  forward_backward with and without grad_output), on the compiled kernels of every SIMD
  level this machine runs and on the NumPy backend, against mpmath (half_reference.py,
  cached on disk); NaN in gives NaN out, +-inf the limits.
- The FMA levels give the same bits, baseline within 1 ulp of them; the NumPy backend
  within 1 ulp of the compiled one.
- The conversions: linear returns every pattern unchanged; leaky_relu's x <= 0 side is
  NumPy's / ml_dtypes' rounding of the float32 product, bit for bit; every compiled
  16-bit entry point is the float32 kernel on the widened input rounded once, bit for
  bit (signed zeros included), but exact gelu's, sigmoid's and logsigmoid's, whose shorter
  float32 math for the 16-bit types (OWN_16BIT_MATH) is within 1 ulp of it, with its
  zeros' signs.
- The dtype rules: results keep the type (functions and classes), out= must be exactly
  it, in place, layouts, 0-d, empty, mixed dtypes and their promotion, and `import
  fastact` does not import ml_dtypes.
- PyTorch's float16/bfloat16 CPU kernels on the same inputs: where PyTorch is correctly
  rounded fastact agrees within 1 ulp; the worst errors of both are reported (terminal
  summary with -v or -s, and as JSON to $FASTACT_HALF_REPORT).

The bound has no flush clause (docs/contract.md's float32 one: results below float32's
smallest normal number may flush): bfloat16's subnormals lie below it, and a bfloat16
result there, or a backward g * f'(x) whose f'(x) lies there, is held to 1 ulp like any
other. The references take a few CPU-minutes on a cold cache (half_reference.py).
"""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastact
from fastact import _backend
from fastact._activations import ACTIVATIONS_BY_NAME, KERNELS

import half_reference as H
import reference
from cases import CASES, HARDTANH_BOUNDS, case_id
from conftest import using
from helpers import half_pair_dtype, same

TYPES = H.TYPE_NAMES
# ml_dtypes warns when it widens a bfloat16 NaN (the tests widen all 65536 patterns)
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
# float32's overflow threshold: a derivative beyond it is inf in the kernels' float32
# (docs/contract.md: backward is grad_output * f'(x) literally, f'(x) = inf there)
F32_OVERFLOW = float(np.finfo(np.float32).max) * (1 + 2.0 ** -25)
F32_TINY = float(np.finfo(np.float32).tiny)     # 2^-126: float32's (and bfloat16's) smallest normal


def _type(tname):
    if tname == "bfloat16":
        pytest.importorskip("ml_dtypes")
    return np.dtype(H.np_type(tname))


def _levels():
    """(backend, SIMD level): the compiled kernels of every level this machine runs,
    then the NumPy backend."""
    return [("compiled", lv) for lv in reversed(_backend.supported_levels())] + [("numpy", None)]


def _label(backend, level):
    return f"compiled-{level}" if level else backend


def _takes_y(name, params):
    obj = fastact.get(name, **params)
    return KERNELS[obj._kernel].takes_y(obj._params)


def _y_form(name, params):
    return H.y_form_params(name, params) if _takes_y(name, params) else None


def _params_key(params):
    return tuple(sorted(params.items()))


def _available_types():
    return TYPES if importlib.util.find_spec("ml_dtypes") else ("float16",)


# ---------------------------------------------------------------------------------------
# The exhaustive check: one (case, type) at a time, shared by the tests that use it

SHIFTS = (0, 3)            # grad_output positions on the grid: every x meets two values
ENTRIES = ("forward", "grad", "backward@0", "backward@1", "backward_y@0", "backward_y@1",
           "fb.y", "fb.d", "fbg.y", "fbg.d")


class Spec:
    """What an entry point must give at each of the 65536 inputs: within 1 ulp of the
    fractional key fk; NaN (nan); exactly eq (limits, infinities); a zero of the sign of
    the limit (neg0 / pos0); inf_ok: +-inf (inf_sign) also right (f' beyond float32)."""

    def __init__(self, n):
        self.fk = np.full(n, np.nan)
        self.nan = np.zeros(n, bool)
        self.eq = np.full(n, np.nan)
        self.neg0 = np.zeros(n, bool)
        self.pos0 = np.zeros(n, bool)
        self.inf_ok = np.zeros(n, bool)
        self.inf_sign = np.zeros(n)
        self.g = None
        # the float32 contract's flush (docs/contract.md, Accuracy), which bfloat16 shares
        # (its smallest normal number is float32's): where the exact value, or f' of a
        # backward, is below 2^-126, the result may be off by tol (2^-126, or |g| 2^-126)
        self.exact = np.full(n, np.nan)
        self.tol = np.zeros(n)


class HalfCase:
    def __init__(self, case, tname):
        self.case, self.tname = case, tname
        self.name, self.params = case
        self.type = _type(tname)
        self.x = H.patterns(tname)
        self.g = [H.grad_outputs(tname, s) for s in SHIFTS]
        self.y_form = _y_form(self.name, self.params)
        self.ref = H.load((self.name, _params_key(self.params)), tname, self.y_form)
        self.specs = self._specs()
        self._outputs = {}

    # -- what is expected --
    def _round(self, v):
        return H.round_to(np.asarray(v, np.float64), self.tname).astype(np.float64)

    def _specs(self):
        name, tname, ref = self.name, self.tname, self.ref
        n = self.x.size
        xf = self.x.astype(np.float64)
        nanx, pinf, ninf = np.isnan(xf), xf == np.inf, xf == -np.inf
        linear = name == "linear"
        lim = {"+": H.limits(name, self.params, ""), "-": H.limits(name, self.params, "-")}

        def base(fk, which):                 # forward (which=0) or grad (which=1)
            s = Spec(n)
            s.fk = fk.copy()
            with np.errstate(invalid="ignore"):
                s.exact = H.key_value(fk, tname).astype(np.float64)
                s.tol = np.where(np.abs(s.exact) < F32_TINY, F32_TINY, 0.0)
            if linear and which == 1:
                s.eq[nanx] = 1.0
            else:
                s.nan = nanx.copy()
            for mask, sign in ((pinf, "+"), (ninf, "-")):
                value, side = lim[sign][which], lim[sign][2 + which]
                s.eq[mask] = self._round(value)
                if value == 0 and side is not None:
                    (s.neg0 if side else s.pos0)[mask] = True
            return s

        forward, grad = base(ref["fy"], 0), base(ref["fd"], 1)

        def times_g(g, hi, lo, finite_input, inf_input):
            """g * (hi + lo): within 1 ulp where the input is finite, +-inf allowed where
            f' overflows float32; exactly g * hi where the input is infinite and hi is 0
            or infinite (a limit), else within 1 ulp of it."""
            s = Spec(n)
            s.g = g
            gf = g.astype(np.float64)
            p, e = reference.dd_mul(gf, hi, lo)
            fk = H.frac_key(p, e, tname)
            exact_special = inf_input & ((hi == 0) | np.isinf(hi))
            with np.errstate(invalid="ignore"):
                s.eq[exact_special] = (gf * hi)[exact_special]
            s.fk = np.where((finite_input | inf_input) & ~exact_special, fk, np.nan)
            s.inf_ok = finite_input & (np.abs(hi) >= F32_OVERFLOW)
            with np.errstate(invalid="ignore", over="ignore"):
                s.exact = p + e
                s.tol = np.where(finite_input & (np.abs(hi) < F32_TINY), np.abs(gf) * F32_TINY, 0.0)
                s.tol = np.where(finite_input & (np.abs(s.exact) < F32_TINY),
                                 np.maximum(s.tol, F32_TINY), s.tol)
            s.inf_sign = np.sign(gf) * np.sign(hi)
            nan_input = ~(finite_input | inf_input)
            if linear:
                s.eq[nan_input] = gf[nan_input]
            else:
                s.nan = nan_input
            return s

        specs = {"forward": forward, "grad": grad, "fb.y": forward, "fb.d": grad,
                 "fbg.y": forward}
        d_hi, d_lo = ref["d_hi"].copy(), ref["d_lo"].copy()
        for mask, sign in ((pinf, "+"), (ninf, "-")):
            d_hi[mask], d_lo[mask] = lim[sign][1], 0.0
        finite = np.isfinite(xf)
        for i, g in enumerate(self.g):
            specs[f"backward@{i}"] = times_g(g, d_hi, d_lo, finite, pinf | ninf)
            if self.y_form is not None:
                specs[f"backward_y@{i}"] = times_g(g, ref["dy_hi"], ref["dy_lo"], finite,
                                                   pinf | ninf)
        specs["fbg.d"] = specs["backward@0"]
        return specs

    # -- what fastact gives --
    def compute(self):
        x, p = self.x, self.params
        f = lambda suffix: getattr(fastact, self.name + suffix)    # noqa: E731
        out = {"forward": f("")(x, **p), "grad": f("_grad")(x, **p)}
        for i, g in enumerate(self.g):
            out[f"backward@{i}"] = f("_backward")(g, x, **p)
            if self.y_form is not None:
                out[f"backward_y@{i}"] = f("_backward")(g, y=x, **p)
        out["fb.y"], out["fb.d"] = f("_forward_backward")(x, **p)
        out["fbg.y"], out["fbg.d"] = f("_forward_backward")(x, grad_output=self.g[0], **p)
        return out

    def outputs(self, backend, level=None):
        key = (backend, level)
        if key not in self._outputs:
            with using(backend, level):
                self._outputs[key] = self.compute()
        return self._outputs[key]

    # -- the comparison --
    def describe(self, entry, got, spec, idx, err=None):
        lines = []
        for i in idx[:6]:
            xtxt = (f"{'y' if 'backward_y' in entry else 'x'}={float(self.x[i])!r} "
                    f"(0x{int(H.bits(self.x[i:i + 1])[0]):04x})")
            gtxt = f", g={float(spec.g[i])!r}" if spec.g is not None else ""
            if not np.isnan(spec.eq[i]):
                want = f"exactly {spec.eq[i]!r}"
            elif spec.nan[i]:
                want = "NaN"
            else:
                fk = spec.fk[i]
                want = (f"exact {float(H.key_value(fk, self.tname))!r} (key {fk:.3f}, "
                        f"rounded {float(self._round(H.key_value(fk, self.tname)))!r})")
            etxt = f" [{err[i]:.2f} ulp]" if err is not None and np.isfinite(err[i]) else ""
            lines.append(f"    {xtxt}{gtxt}: got {float(got[i])!r}, {want}{etxt}")
        return lines

    def failures(self, entry, got, label):
        spec = self.specs[entry]
        head = f"{case_id(self.case)} {self.tname} {label} {entry}"
        if got.dtype != self.type or got.shape != self.x.shape:
            return [f"{head}: dtype {got.dtype}, shape {got.shape}"]
        gf = got.astype(np.float64)
        with np.errstate(invalid="ignore"):
            bad = spec.nan & ~np.isnan(gf)
            want = ~np.isnan(spec.eq)
            bad |= want & ~(gf == spec.eq)
            bad |= want & (gf == 0) & ((spec.neg0 & ~np.signbit(gf)) | (spec.pos0 & np.signbit(gf)))
            err = H.ulp_error(got, spec.fk)
            inf_ok = spec.inf_ok & np.isinf(gf) & (np.sign(gf) == spec.inf_sign)
            flushed = (spec.tol > 0) & (np.abs(gf - spec.exact) <= 2 * spec.tol)
            bad |= ~np.isnan(spec.fk) & (err > 1) & ~inf_ok & ~flushed
        idx = np.flatnonzero(bad)
        if idx.size == 0:
            return []
        # the worst first
        idx = idx[np.argsort(-np.where(np.isfinite(err[idx]), err[idx], np.inf), kind="stable")]
        return [(f"{head}: {idx.size} of {bad.size} inputs wrong",
                 self.describe(entry, got, spec, idx, err))]


_ALL_HALF_CASES = [(case, t) for t in TYPES for case in CASES]


@pytest.fixture(scope="session")
def half_references():
    """Every (case, type)'s reference, computed in one process pool where not cached."""
    types = _available_types()
    H.ensure([(case, t, _y_form(*case)) for case, t in _ALL_HALF_CASES if t in types])


@pytest.fixture(scope="module", params=_ALL_HALF_CASES,
                ids=[f"{case_id(c)}-{t}" for c, t in _ALL_HALF_CASES])
def half_case(request, half_references):
    case, tname = request.param
    return HalfCase(case, tname)


def test_exhaustive_within_one_ulp(half_case):
    """All 65536 patterns, every entry point, every SIMD level and the NumPy backend:
    within 1 ulp of the exact value, NaN for NaN, the limits at +-inf."""
    hc = half_case
    problems = []
    for backend, level in _levels():
        out = hc.outputs(backend, level)
        assert set(out) == set(hc.specs)
        for entry in ENTRIES:
            if entry in out:
                problems += hc.failures(entry, out[entry], _label(backend, level))
    if hc.y_form is None:
        for backend, level in _levels():
            with using(backend, level), pytest.raises(TypeError, match="pass x"):
                getattr(fastact, hc.name + "_backward")(hc.g[0], y=hc.x, **hc.params)
    if problems:
        lines = [head for head, _ in problems]
        for head, details in problems[:4]:
            lines += [head] + details
        pytest.fail("beyond 1 ulp of the 16-bit type:\n  " + "\n  ".join(lines), pytrace=False)


def test_simd_levels_same_bits(half_case):
    """The FMA levels (avx2, avx512) give identical bits for every pattern (NaN as NaN),
    baseline within 1 ulp of them."""
    hc = half_case
    levels = _backend.supported_levels()
    fma = [lv for lv in levels if lv != "baseline"]
    problems = []
    for a, b in zip(fma, fma[1:]):
        oa, ob = hc.outputs("compiled", a), hc.outputs("compiled", b)
        for entry in oa:
            u, v = oa[entry], ob[entry]
            same_bits = (H.bits(u) == H.bits(v)) | (np.isnan(u.astype(np.float64))
                                                    & np.isnan(v.astype(np.float64)))
            idx = np.flatnonzero(~same_bits)
            if idx.size:
                problems.append(f"{entry}: {a} vs {b} differ at {idx.size} inputs, e.g. "
                                f"x={float(hc.x[idx[0]])!r}: {float(u[idx[0]])!r} vs "
                                f"{float(v[idx[0]])!r}")
    if "baseline" in levels and fma:
        oa, ob = hc.outputs("compiled", "baseline"), hc.outputs("compiled", fma[0])
        for entry in oa:
            d = H.key_distance(oa[entry], ob[entry])
            idx = np.flatnonzero(d > 1)
            if idx.size:
                problems.append(f"{entry}: baseline vs {fma[0]} beyond 1 ulp at {idx.size} "
                                f"inputs, e.g. x={float(hc.x[idx[0]])!r}: "
                                f"{float(oa[entry][idx[0]])!r} vs {float(ob[entry][idx[0]])!r}")
    assert not problems, f"{case_id(hc.case)} {hc.tname}:\n" + "\n".join(problems)


def test_numpy_backend_within_one_ulp_of_compiled(half_case):
    """The NumPy fallback (float64, rounded once) against the compiled kernels (the best
    level): within 1 ulp of each other on every pattern, NaN where the other is NaN."""
    hc = half_case
    levels = _backend.supported_levels()
    if not levels:
        pytest.skip("no compiled kernels in this build")
    numpy_out = hc.outputs("numpy")
    compiled = hc.outputs("compiled", levels[-1])
    problems = []
    for entry, a in numpy_out.items():
        b = compiled[entry]
        d = H.key_distance(a, b)
        # where f' overflows float32 the compiled kernels' g * inf is right too; where
        # the contract lets them flush (Spec.tol), the NumPy backend's float64 does not
        spec = hc.specs[entry]
        with np.errstate(invalid="ignore", over="ignore"):
            flushed = (spec.tol > 0) & (np.abs(b.astype(np.float64) - spec.exact) <= 2 * spec.tol)
        idx = np.flatnonzero((d > 1) & ~spec.inf_ok & ~flushed)
        if idx.size:
            problems.append(f"{entry}: {idx.size} inputs, e.g. x={float(hc.x[idx[0]])!r}: "
                            f"numpy {float(a[idx[0]])!r}, compiled {float(b[idx[0]])!r}")
    assert not problems, f"{case_id(hc.case)} {hc.tname}:\n" + "\n".join(problems)


# ---------------------------------------------------------------------------------------
# The conversions

@pytest.fixture(params=_levels(), ids=lambda p: _label(*p))
def level(request):
    with using(*request.param):
        yield _label(*request.param)


@pytest.mark.parametrize("tname", TYPES)
def test_linear_returns_every_pattern(tname, level):
    """Widening and narrowing are exact: linear (and its backward's grad_output, and
    forward_backward's value and gradient) give back all 65536 patterns bit for bit: -0.0,
    +-inf, the subnormals, NaN with its sign and payload (PyTorch's copy_); its
    derivative is 1."""
    dt = _type(tname)
    x = H.patterns(tname)
    ones = np.ones(x.size, dt)
    y, d = fastact.linear_forward_backward(x)
    yg, gd = fastact.linear_forward_backward(x, grad_output=x[::-1].copy())
    assert H.bits(d).tolist() == H.bits(ones).tolist()
    for what, got, want in (("linear", fastact.linear(x), x),
                            ("linear_backward", fastact.linear_backward(x, ones), x),
                            ("forward_backward", y, x),
                            ("forward_backward with grad_output", yg, x),
                            ("its gradient", gd, x[::-1]),
                            ("identity", fastact.identity(x), x)):
        assert got.dtype == dt, what
        bad = np.flatnonzero(H.bits(got) != H.bits(want))
        assert bad.size == 0, (f"{what} {tname}: {bad.size} patterns changed, e.g. "
                               f"0x{int(H.bits(want)[bad[0]]):04x} -> "
                               f"0x{int(H.bits(got)[bad[0]]):04x}")


SLOPES = (0.01, 0.2, 1 / 3, -0.5, 0.75, 1.0, -1.0, 1e-3, 3.0, 7.0, 0.1, -0.9999999,
          1 + 2.0 ** -11, 1 + 2.0 ** -8, 1 - 2.0 ** -12, 3 * 2.0 ** -9, 1.2345e-6, -1e-7,
          2.0 ** -20, 12345.678, 3e4, -65504.0, 1e-30, -1e-38, 1e30, 3e38, 0.0)


@pytest.mark.parametrize("tname", TYPES)
def test_leaky_relu_narrowing_bit_exact(tname, level):
    """leaky_relu's x <= 0 side on the compiled kernels is the float32 product x * slope
    rounded once to the type: NumPy's (float16) and ml_dtypes' (bfloat16)
    round-to-nearest-even, bit for bit, for every pattern and many slopes: ties,
    subnormal results, overflow to inf. The NumPy backend computes the product in
    float64 (exact) and rounds that: within 1 ulp of the exact product (it differs from
    the float32 route where that rounds twice)."""
    dt = _type(tname)
    x = H.patterns(tname)
    x32 = x.astype(np.float32)
    problems = []
    for slope in SLOPES:
        s = np.float32(slope)
        with np.errstate(over="ignore", invalid="ignore"):
            expected = np.where(x32 > 0, x32, x32 * s).astype(dt)
            exact = np.where(x32 > 0, x32, x32.astype(np.float64) * np.float64(s))
        got = fastact.leaky_relu(x, negative_slope=float(s))
        assert got.dtype == dt
        check = ~np.isnan(x32) & ~((s == 0) & np.isinf(x32))   # -inf * 0: test_parity_torch
        if level == "numpy":
            err = H.ulp_error(got, H.frac_key(exact, np.zeros_like(exact), tname))
            wrong = check & (err > 1)
        else:
            wrong = check & (H.bits(got) != H.bits(expected))
        wrong |= np.isnan(x32) & ~np.isnan(got.astype(np.float32))
        bad = np.flatnonzero(wrong)
        if bad.size:
            i = bad[0]
            problems.append(f"slope={float(s)!r}: {bad.size} patterns, e.g. x={float(x[i])!r}: "
                            f"got {float(got[i])!r} (0x{int(H.bits(got)[i]):04x}), float32 "
                            f"product rounded {float(expected[i])!r} "
                            f"(0x{int(H.bits(expected)[i]):04x}), exact {float(exact[i])!r}")
    assert not problems, f"{tname} {level}:\n" + "\n".join(problems)


@pytest.mark.parametrize("tname", TYPES)
@pytest.mark.parametrize("lv", _backend.supported_levels())
def test_compiled_is_the_float32_kernel_rounded_once(tname, lv):
    """The compiled 16-bit entry points compute what the float32 ones do on the widened
    input, rounded once by NumPy / ml_dtypes (round to nearest even): the same bits for
    every pattern and case (signed zeros included), every entry point. Exact gelu, sigmoid
    and logsigmoid are the exception (OWN_16BIT_MATH): their 16-bit types have their own,
    shorter float32 math,
    held to the 1 ulp bound by test_exhaustive_within_one_ulp."""
    dt = _type(tname)
    x = H.patterns(tname)
    g = H.grad_outputs(tname, 0)
    x32, g32 = x.astype(np.float32), g.astype(np.float32)
    problems = []
    checked = 0
    with using("compiled", lv):
        for name, p in CASES:
            if KERNELS[fastact.get(name, **p)._kernel].name in OWN_16BIT_MATH:
                continue
            checked += 1
            f = lambda suffix: getattr(fastact, name + suffix)      # noqa: E731
            pairs = {"forward": (f("")(x, **p), f("")(x32, **p)),
                     "grad": (f("_grad")(x, **p), f("_grad")(x32, **p)),
                     "backward": (f("_backward")(g, x, **p), f("_backward")(g32, x32, **p))}
            y16, d16 = f("_forward_backward")(x, grad_output=g, **p)
            y32, d32 = f("_forward_backward")(x32, grad_output=g32, **p)
            pairs["fbg.y"], pairs["fbg.d"] = (y16, y32), (d16, d32)
            if _takes_y(name, p):
                pairs["backward_y"] = (f("_backward")(g, y=x, **p), f("_backward")(g32, y=x32, **p))
            for entry, (a, b) in pairs.items():
                with np.errstate(over="ignore", invalid="ignore"):
                    b16 = b.astype(dt)
                nan = np.isnan(a.astype(np.float32)) & np.isnan(b)
                diff = np.flatnonzero((H.bits(a) != H.bits(b16)) & ~nan)
                if diff.size:
                    i = diff[0]
                    problems.append(f"{case_id((name, p))} {entry}: {diff.size} patterns, e.g. "
                                    f"x={float(x[i])!r}: {float(a[i])!r}, float32 kernel "
                                    f"{float(b[i])!r} -> {float(b16[i])!r}")
    assert checked > len(CASES) // 2 and not problems, f"{tname} {lv}:\n" + "\n".join(problems[:40])


# lengths around the 16-bit loops' chunks (two vectors: 16 or 32 elements) and blocks
# (256), with the offsets that put a slice's start anywhere in them
_SLICES = [(0, 1), (3, 7), (0, 15), (1, 16), (0, 31), (5, 32), (2, 33), (7, 47), (0, 64),
           (9, 95), (0, 255), (1, 256), (3, 257), (11, 700)]


@pytest.mark.parametrize("tname", TYPES)
@pytest.mark.parametrize("lv", _backend.supported_levels())
def test_any_length_and_offset_same_bits(tname, lv):
    """A slice of any length, from any offset, gives the bits of the same elements of
    the whole array, for every case and entry point: the chunks of two vectors, their
    tails and the blocks of the 16-bit loops (and the threads' pieces) all compute each
    element alike. One thread, so that the whole array is one loop."""
    dt = _type(tname)
    x, g = _sample(dt, (720,)), _sample(dt, (720,), seed=1)
    problems = []
    with using("compiled", lv), fastact.threads(1):
        for name, p in CASES:
            whole = dict(_flat(_all_entries(name, x, g, p)))
            for at, n in _SLICES:
                part = dict(_flat(_all_entries(name, x[at:at + n], g[at:at + n], p)))
                for label, r in part.items():
                    if not same(r, whole[label][at:at + n]):
                        problems.append(f"{case_id((name, p))} {label} [{at}:{at + n}]")
    assert not problems, f"{tname} {lv}: {len(problems)} differ:\n" + "\n".join(problems[:20])


# the kernels whose 16-bit types compute with their own float32 math (fa_K_h32 in
# fastact/_src/fa_activations_impl.h), not the float32 kernel's
OWN_16BIT_MATH = {"gelu", "sigmoid", "logsigmoid"}


@pytest.mark.parametrize("tname", TYPES)
@pytest.mark.parametrize("lv", _backend.supported_levels())
def test_own_16bit_math_differs_from_float32_kernel(tname, lv):
    """OWN_16BIT_MATH is the kernels that need it: their 16-bit results are not all
    the float32 kernel's rounded (else the shorter math would not be in use, and the
    exception above would hide nothing), while staying within 1 ulp of the exact value
    (test_exhaustive_within_one_ulp) and, here, of the float32 kernel's rounded result."""
    dt = _type(tname)
    x = H.patterns(tname)
    x32 = x.astype(np.float32)
    for kernel in OWN_16BIT_MATH:
        with using("compiled", lv):
            y16, d16 = getattr(fastact, kernel + "_forward_backward")(x)
            y32, d32 = getattr(fastact, kernel + "_forward_backward")(x32)
        finite = np.isfinite(x32)
        differ = 0
        for a, b in ((y16, y32), (d16, d32)):
            b16 = b.astype(dt)
            dist = H.key_distance(a[finite], b16[finite])
            assert dist.max() <= 1, (kernel, tname, lv)
            zero = (a.astype(np.float32) == 0) & (b16.astype(np.float32) == 0)
            assert same(np.signbit(a.astype(np.float32)[zero]),
                        np.signbit(b16.astype(np.float32)[zero])), (kernel, tname, lv, "signed zeros")
            nan = np.isnan(a.astype(np.float32))
            assert same(nan, np.isnan(b16.astype(np.float32))), (kernel, tname, lv, "NaN")
            assert same(a[~finite].astype(np.float32), b16[~finite].astype(np.float32)), \
                (kernel, tname, lv, "+-inf and NaN inputs")
            differ += int(np.count_nonzero(dist))
        assert differ > 0, f"{kernel} {tname} {lv}: the 16-bit math is the float32 kernel's"


# ---------------------------------------------------------------------------------------
# The dtype rules

THRESHOLD = {"threshold": 0.25, "value": -1.0}


def _params(name):
    return THRESHOLD if name == "threshold" else {}


def _sample(dt, shape=(23,), seed=0):
    """Values of both signs around the kinks, with 0, -0.0, +-inf and NaN."""
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(int(np.prod(shape))) * 3
    v[:5] = [0.0, -0.0, np.inf, -np.inf, np.nan]
    return v.reshape(shape).astype(dt)


def _all_entries(name, x, g, p, obj=None):
    """Every way to compute with an activation: (label, result) pairs, functions and the
    class's methods."""
    f = lambda suffix: getattr(fastact, name + suffix)      # noqa: E731
    out = [("forward", f("")(x, **p)), ("grad", f("_grad")(x, **p)),
           ("backward", f("_backward")(g, x, **p)),
           ("forward_backward", f("_forward_backward")(x, **p)),
           ("forward_backward(g)", f("_forward_backward")(x, grad_output=g, **p))]
    act = fastact.get(name, **p)
    out += [("class()", act(x)), ("class.gradient", act.gradient(x)),
            ("class.backward", act.backward(g, x)),
            ("class.forward_backward", act.forward_backward(x)),
            ("class.forward_backward(g)", act.forward_backward(x, grad_output=g))]
    if _takes_y(name, p):
        y = f("")(x, **p)
        out += [("backward(y)", f("_backward")(g, y=y, **p)),
                ("class.backward(y)", act.backward(g, y=y))]
    return out


def _flat(results):
    for label, r in results:
        for i, a in enumerate(r if isinstance(r, tuple) else (r,)):
            yield f"{label}[{i}]", a


@pytest.mark.parametrize("tname", TYPES)
def test_every_entry_and_class_keeps_the_type(tname, backend):
    dt = _type(tname)
    x, g = _sample(dt), _sample(dt, seed=1)
    for name in fastact.ACTIVATIONS:
        p = _params(name)
        results = dict(_flat(_all_entries(name, x, g, p)))
        for label, r in results.items():
            assert r.dtype == dt and r.shape == x.shape, (name, label, r.dtype)
        # the class computes what the functions do
        for a, b in (("forward[0]", "class()[0]"), ("grad[0]", "class.gradient[0]"),
                     ("backward[0]", "class.backward[0]"),
                     ("forward_backward(g)[1]", "class.forward_backward(g)[1]")):
            assert same(results[a], results[b]), (name, a, b)


@pytest.mark.parametrize("tname", TYPES)
def test_hardtanh_from_y_only_where_the_bounds_are_values_of_the_type(tname, backend):
    """hardtanh's backward from a 16-bit y, for every pattern: where min_val and max_val
    are values of the type, g f' with f' of x (0 at and past the bounds, as PyTorch);
    where one is not, refused (float16(0.1) is both a clipped y and an x inside the
    bounds of 0.1), with a 16-bit or a float32 grad_output."""
    dt = _type(tname)
    x = np.arange(65536, dtype=np.uint16).view(dt)
    g = np.random.default_rng(3).uniform(-4, 4, x.size).astype(np.float32).astype(dt)
    x32, g32 = x.astype(np.float32), g.astype(np.float32)
    for lo, hi in HARDTANH_BOUNDS:
        lo32, hi32 = np.float32(lo), np.float32(hi)
        with np.errstate(over="ignore"):
            exact = all(v.astype(dt).astype(np.float32) == v for v in (lo32, hi32))
        y = fastact.hardtanh(x, lo, hi)
        if not exact:
            for gg in (g, g32):
                with pytest.raises(TypeError, match=f"is not a {tname} value.*pass x"):
                    fastact.hardtanh_backward(gg, y=y, min_val=lo, max_val=hi)
            continue
        d = np.where(np.isnan(x32), x32, ((x32 > lo32) & (x32 < hi32)).astype(np.float32))
        with np.errstate(invalid="ignore"):               # inf g times f' = 0: NaN
            want = (g32 * d).astype(dt)
        for got in (fastact.hardtanh_backward(g, y=y, min_val=lo, max_val=hi),
                    fastact.Hardtanh(lo, hi).backward(g, y=y)):
            assert got.dtype == dt and same(got, want), (lo, hi)


@pytest.mark.parametrize("tname", TYPES)
def test_out_must_be_exactly_the_type(tname, backend):
    dt = _type(tname)
    other = np.dtype(np.float16) if tname == "bfloat16" else _other_half()
    x, g = _sample(dt), _sample(dt, seed=1)
    for name in fastact.ACTIVATIONS:
        p = _params(name)
        f = lambda suffix: getattr(fastact, name + suffix)      # noqa: E731
        expected = f("")(x, **p)
        out = np.empty_like(x)
        assert f("")(x, out=out, **p) is out and same(out, expected)
        out = np.empty_like(x)
        assert f("_backward")(g, x, out=out, **p) is out
        assert same(out, f("_backward")(g, x, **p))
        o1, o2 = np.empty_like(x), np.empty_like(x)
        y, d = f("_forward_backward")(x, grad_output=g, out=o1, grad_out=o2, **p)
        assert y is o1 and d is o2 and same((o1, o2), f("_forward_backward")(x, grad_output=g, **p))
        wrong = [np.float32, np.float64] + ([other] if other is not None else [])
        for bad in wrong:
            sentinel = np.full(x.shape, 7, bad)
            with pytest.raises(TypeError, match="dtype"):
                f("")(x, out=sentinel, **p)
            with pytest.raises(TypeError, match="dtype"):
                f("_grad")(x, out=sentinel, **p)
            with pytest.raises(TypeError, match="dtype"):
                f("_backward")(g, x, out=sentinel, **p)
            with pytest.raises(TypeError, match="dtype"):
                f("_forward_backward")(x, out=np.empty_like(x), grad_out=sentinel, **p)
            assert np.all(sentinel == 7)
        # in place
        xc = x.copy()
        assert f("")(xc, out=xc, **p) is xc and same(xc, expected)
        gc = g.copy()
        assert f("_backward")(gc, x, out=gc, **p) is gc and same(gc, f("_backward")(g, x, **p))


def _other_half():
    try:
        import ml_dtypes
        return np.dtype(ml_dtypes.bfloat16)
    except ImportError:
        return None


@pytest.mark.parametrize("tname", TYPES)
def test_layouts_scalars_and_empty(tname, backend):
    """Non-contiguous, Fortran, negative strides, unaligned and byte-swapped 16-bit
    inputs give the contiguous computation's bits, in its layout; 0-d gives a NumPy
    scalar of the type; empty arrays keep shape and type."""
    dt = _type(tname)
    base = _sample(dt, (6, 8))
    gbase = _sample(dt, (6, 8), seed=1)
    views = [(np.asfortranarray(base), "F"), (base.T, "F"), (base[:, ::-1], "C"),
             (base[::2, ::3], "C"), (base[::-1], "C"), (base.ravel()[1:].reshape(47, 1), "C")]
    raw = np.frombuffer(b"\0" + base.tobytes(), dtype=dt, offset=1).reshape(6, 8)
    assert not raw.flags.aligned or dt.alignment == 1
    views.append((raw, "C"))
    if tname == "float16":
        views.append((base.astype(">f2"), "C"))
    for name in fastact.ACTIVATIONS:
        p = _params(name)
        for view, order in views:
            g = gbase.reshape(-1)[:view.size].reshape(view.shape)
            got = dict(_flat(_all_entries(name, view, g, p)))
            want = dict(_flat(_all_entries(name, np.ascontiguousarray(view, dt), g, p)))
            for label, r in got.items():
                assert r.dtype == dt and r.dtype.isnative, (name, label, r.dtype)
                assert same(r, want[label]), (name, label, view.strides)
                assert r.flags.f_contiguous if order == "F" else r.flags.c_contiguous
        for shape in [(0,), (3, 0)]:
            e = np.empty(shape, dt)
            for label, r in _flat(_all_entries(name, e, e, p)):
                assert r.shape == shape and r.dtype == dt, (name, label)
        for scalar in (dt.type(0.75), np.array(-1.25, dt)):
            r = getattr(fastact, name)(scalar, **p)
            assert isinstance(r, np.generic) and r.dtype == dt, (name, type(r))
            assert same(r, getattr(fastact, name)(np.array([scalar], dt), **p)[0])
            b = getattr(fastact, name + "_backward")(dt.type(2), scalar, **p)
            assert isinstance(b, np.generic) and b.dtype == dt


# (grad_output dtype, x dtype, result dtype): NumPy's promotion as ml_dtypes defines it;
# integers and booleans count as float64
MIXED = [("bfloat16", "float32", "float32"), ("float32", "bfloat16", "float32"),
         ("bfloat16", "float64", "float64"), ("float64", "bfloat16", "float64"),
         ("bfloat16", "int64", "float64"), ("int32", "bfloat16", "float64"),
         ("bfloat16", "bool", "float64"),
         ("float16", "float32", "float32"), ("float32", "float16", "float32"),
         ("float16", "float64", "float64"), ("int8", "float16", "float64"),
         ("float16", "uint16", "float64"), ("bfloat16", "bfloat16", "bfloat16"),
         ("float16", "float16", "float16")]


def _dtype(name):
    return _type(name) if name in TYPES else np.dtype(name)


@pytest.mark.parametrize("gt, xt, rt", MIXED, ids=["-".join(m) for m in MIXED])
def test_mixed_dtypes_promote(gt, xt, rt, backend):
    gd, xd, rd = _dtype(gt), _dtype(xt), _dtype(rt)
    values = np.array([-3.0, -1.0, -0.5, 0.0, 1.0, 2.0, 5.0])
    x = (values > 0) if xd == bool else (np.abs(values) if xd.kind == "u" else values).astype(xd)
    g = (values < 1) if gd == bool else (values * 0.5 + 1.0).astype(gd)
    for name in fastact.ACTIVATIONS:
        p = _params(name)
        f = lambda suffix: getattr(fastact, name + suffix)      # noqa: E731
        b = f("_backward")(g, x, **p)
        assert b.dtype == rd, (name, b.dtype)
        assert same(b, f("_backward")(g.astype(rd), x.astype(rd), **p)), name
        y, d = f("_forward_backward")(x, grad_output=g, **p)
        assert y.dtype == rd and d.dtype == rd, name
        assert same((y, d), f("_forward_backward")(x.astype(rd), grad_output=g.astype(rd), **p))
        if _takes_y(name, p):
            yy = x if xd != bool else x.astype(np.float64)
            by = f("_backward")(g, y=yy, **p)
            assert by.dtype == rd and same(by, f("_backward")(g.astype(rd), y=yy.astype(rd), **p))


def test_float16_with_bfloat16(backend):
    """float16 with bfloat16, in either role: NumPy's promotion as ml_dtypes defines it.
    Where there is a common dtype (float32, from ml_dtypes 0.7 on) every entry point
    computes in it from both values, and out= must have it; where there is none (before
    0.7), TypeError naming both arguments before anything is computed or written."""
    bf = _type("bfloat16")
    f16 = np.dtype(np.float16)
    common = half_pair_dtype()
    v = np.array([-1.0, 0.5, 2.0])
    for a, b in ((bf, f16), (f16, bf)):
        g, x = v.astype(a), v.astype(b)
        gw, xw = g.astype(np.float32), x.astype(np.float32)
        for name in fastact.ACTIVATIONS:
            p = _params(name)
            f = lambda suffix: getattr(fastact, name + suffix)      # noqa: E731
            if common is not None:
                want = f("_backward")(gw, xw, **p)
                got = f("_backward")(g, x, **p)
                assert got.dtype == common and same(got, want), name
                out = np.full(3, 9, common)
                assert f("_backward")(g, x, out=out, **p) is out and same(out, want)
                for bad in (a, b):
                    keep = np.full(3, 9, bad)
                    with pytest.raises(TypeError, match="out"):
                        f("_backward")(g, x, out=keep, **p)
                    assert np.all(keep == 9)
                r = f("_forward_backward")(x, grad_output=g, **p)
                assert all(u.dtype == common for u in r)
                assert same(r, f("_forward_backward")(xw, grad_output=gw, **p)), name
                assert same(fastact.get(name, **p).backward(g, x), want)
                if _takes_y(name, p):
                    assert same(f("_backward")(g, y=x, **p), f("_backward")(gw, y=xw, **p))
                continue
            for out_dt in (a, b, np.dtype(np.float32)):
                out = np.full(3, 9, out_dt)
                with pytest.raises(TypeError) as raised:
                    f("_backward")(g, x, out=out, **p)
                msg = str(raised.value)
                assert "grad_output" in msg and "x" in msg and str(a) in msg and str(b) in msg, msg
                assert np.all(out == 9)
                o1, o2 = np.full(3, 9, out_dt), np.full(3, 9, out_dt)
                with pytest.raises(TypeError, match="grad_output.*x|x.*grad_output"):
                    f("_forward_backward")(x, grad_output=g, out=o1, grad_out=o2, **p)
                assert np.all(o1 == 9) and np.all(o2 == 9)
                act = fastact.get(name, **p)
                with pytest.raises(TypeError, match="grad_output"):
                    act.backward(g, x)
            if _takes_y(name, p):
                with pytest.raises(TypeError) as raised:
                    f("_backward")(g, y=x, **p)
                msg = str(raised.value)
                assert "grad_output" in msg and "y" in msg and str(a) in msg and str(b) in msg, msg


@pytest.mark.parametrize("backend_name", ["compiled", "numpy"])
def test_import_does_not_import_ml_dtypes(backend_name):
    """fastact recognises bfloat16 without importing ml_dtypes: a float16 program pays
    nothing for it."""
    code = ("import sys, numpy as np, fastact\n"
            f"fastact.set_backend({backend_name!r})\n"
            "x = np.linspace(-3, 3, 2000).astype(np.float16)\n"
            "y = fastact.gelu(x); d = fastact.sigmoid_backward(x, x)\n"
            "a, b = fastact.elu_forward_backward(x, grad_output=x)\n"
            "assert y.dtype == d.dtype == a.dtype == np.float16\n"
            "assert 'ml_dtypes' not in sys.modules, 'ml_dtypes imported'\n")
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastact.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in [env.get("PYTHONPATH")] if p])
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]


# ---------------------------------------------------------------------------------------
# PyTorch's float16 / bfloat16 CPU kernels

TORCH_CASES = [c for c in CASES if ACTIVATIONS_BY_NAME[c[0]].torch_module is not None]
TORCH_ERRORS = {}          # (case id, type) -> the worst errors, reported at the end


class _Report:
    """Terminal summary (with -v, -s or FASTACT_HALF_REPORT) and the JSON file."""

    def __init__(self, config):
        self.config = config

    def pytest_terminal_summary(self, terminalreporter):
        if not TORCH_ERRORS:
            return
        path = os.environ.get("FASTACT_HALF_REPORT")
        if path:
            data = {}
            for (cid, tname), row in TORCH_ERRORS.items():
                data.setdefault(cid, {})[tname] = row
            with open(path, "w") as f:      # inf (a NaN where a number was due) as "inf"
                json.dump(_json_safe(data), f, indent=1, sort_keys=True)
        if not (path or self.config.getoption("verbose") > 0
                or self.config.getoption("capture") == "no"):
            return
        tr = terminalreporter
        tr.section("float16 / bfloat16: worst error in ulps of the type, all finite inputs")
        fmt = lambda v: "   n/a" if v is None else f"{v:6.2f}"       # noqa: E731
        tr.write_line(f"{'case':40s} {'type':8s} {'forward fastact':>15s} {'torch':>6s}   "
                      f"{'backward fastact':>16s} {'torch':>6s}")
        for (cid, tname), row in sorted(TORCH_ERRORS.items()):
            tr.write_line(f"{cid:40s} {tname:8s} {fmt(row['fastact_forward']):>15s} "
                          f"{fmt(row['torch_forward']):>6s}   {fmt(row['fastact_backward']):>16s} "
                          f"{fmt(row['torch_backward']):>6s}")


def _json_safe(v):
    if isinstance(v, dict):
        return {k: _json_safe(w) for k, w in v.items()}
    if isinstance(v, float) and not np.isfinite(v):
        return str(v)
    return v


@pytest.fixture(scope="session")
def torch_report(request):
    pm = request.config.pluginmanager
    if not pm.has_plugin("fastact-half-report"):
        pm.register(_Report(request.config), "fastact-half-report")


def _to_torch(torch, a, tname):
    if tname == "bfloat16":
        return torch.from_numpy(a.view(np.int16).copy()).view(torch.bfloat16)
    return torch.from_numpy(a.copy())


def _from_torch(t, tname, dt):
    if tname == "bfloat16":
        import torch
        return t.detach().contiguous().view(torch.int16).numpy().view(dt)
    return t.detach().numpy()


@pytest.mark.parametrize("tname", TYPES)
@pytest.mark.parametrize("case", TORCH_CASES, ids=case_id)
def test_torch_parity(case, tname, half_references, torch_report):
    """fastact against PyTorch's own float16/bfloat16 CPU kernels (forward, and autograd's
    backward with the same grad_output) on every finite pattern: wherever PyTorch is
    correctly rounded (within 0.5 ulp) fastact is within 1 ulp of it; the worst error of
    each is recorded (PyTorch's own accuracy is not asserted)."""
    torch = pytest.importorskip("torch")
    from helpers import torch_function
    name, params = case
    dt = _type(tname)
    x = H.patterns(tname)
    g = H.grad_outputs(tname, 0)
    ref = H.load((name, _params_key(params)), tname, _y_form(name, params))
    finite = np.isfinite(x.astype(np.float64))
    p, e = reference.dd_mul(g.astype(np.float64), ref["d_hi"], ref["d_lo"])
    fb = H.frac_key(p, e, tname)
    with using("compiled" if _backend.supported_levels() else "numpy"):
        ours = {"forward": getattr(fastact, name)(x, **params),
                "backward": getattr(fastact, name + "_backward")(g, x, **params)}
    t = _to_torch(torch, x, tname).requires_grad_()
    y = torch_function(name, params)(t)
    y.backward(_to_torch(torch, g, tname))
    theirs = {"forward": _from_torch(y, tname, dt), "backward": _from_torch(t.grad, tname, dt)}
    row, problems = {}, []
    for entry, fk in (("forward", ref["fy"]), ("backward", fb)):
        a, b = ours[entry], theirs[entry]
        assert a.dtype == dt and b.dtype == dt
        # (f' beyond float32, where inf is right too: exponential only, not in PyTorch)
        over = (np.abs(ref["d_hi"]) >= F32_OVERFLOW if entry == "backward"
                else np.zeros(x.size, bool))
        # (and the float32 contract's flush region, which bfloat16 shares: f, or f' of a
        # backward, below 2^-126; both libraries flush there: docs/half.md)
        with np.errstate(invalid="ignore"):
            tiny = np.abs(H.key_value(fk, tname).astype(np.float64)) < F32_TINY
            if entry == "backward":
                tiny |= np.abs(ref["d_hi"]) < F32_TINY
        tiny &= fk != 0
        over |= tiny
        ea = np.where(finite & ~over, H.ulp_error(a, fk), 0.0)
        eb = np.where(finite & ~over, H.ulp_error(b, fk), 0.0)
        torch_right = finite & ~over & (eb <= 0.5)
        apart = H.key_distance(a, b)
        bad = np.flatnonzero(torch_right & (apart > 1))
        if bad.size:
            i = bad[0]
            problems.append(f"{entry}: {bad.size} inputs where PyTorch is correctly rounded "
                            f"and fastact differs by more than 1 ulp, e.g. x={float(x[i])!r}: "
                            f"fastact {float(a[i])!r}, PyTorch {float(b[i])!r}")
        worst_a, worst_b = int(np.argmax(ea)), int(np.argmax(eb))
        row[f"fastact_{entry}"] = float(ea[worst_a])
        row[f"torch_{entry}"] = float(eb[worst_b])
        row[f"torch_{entry}_worst_x"] = float(x[worst_b])
        row[f"torch_{entry}_beyond_1ulp"] = int(np.sum(eb > 1))
        row[f"fastact_{entry}_beyond_1ulp"] = int(np.sum(ea > 1))
    TORCH_ERRORS[(case_id(case), tname)] = row
    # (fastact's own bound is test_exhaustive_within_one_ulp's)
    assert not problems, f"{case_id(case)} {tname}:\n" + "\n".join(problems)
