"""softmax, log_softmax, softmin: the contract of the softmax family.

References are independent of fastact:
- mpmath (40 digits) for the accuracy sweeps and the special values. Rows are built from
  a few distinct values with multiplicities where they are long, so the exact row sum is
  sum(m_k e^(v_k - max)) over the distinct values and every output is one of a few exact
  values (RowRef);
- PyTorch float64 (torch.softmax, torch.log_softmax, F.softmin and autograd for the
  gradient from x; torch._softmax_backward_data / _log_softmax_backward_data for the
  gradient from a given y) for the axes, layouts, dtypes and out= arguments.

Bounds (the contract):
- forward: every element within 4 ulp of the exact value;
- backward from y: |computed - exact(g, y)| <= 4 ulp(exact) + 4 u S_i, u the unit
  roundoff, S_i = y_i sum_j |g_j y_j| + y_i |g_i| (softmax, softmin) or
  |g_i| + e^y_i sum_j |g_j| (log_softmax);
- backward from x: the same with y the exact forward, plus 4 ulp(y_i) |g_i - s| for
  softmax and softmin (y is rounded inside);
- below the smallest normal number results may be flushed (an exact value and a result
  both below it match), and a backward whose y (softmax) or e^y (log_softmax) is below
  it may carry that flush times |g_i - s| or sum_j |g_j|.
PyTorch float64 is not exact itself: its softmax is off by about (|x_i - max| + log S)
float64 epsilons relative (20 ulp for rows of normal values of length 1000), its
log_softmax by as many epsilons absolute (it is a difference of large numbers near the
maximum), and its sums lose about sqrt(n) / 8 epsilons more on long rows (65 ulp at
n = 2^20); comparisons with it add that (TORCH_EPS) to the bound.
"""
import functools
import math
import pickle

import ml_dtypes
import mpmath as mp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import fastact
from conftest import using
from cpu_probe import softmax_constant

FUNCS = ("softmax", "log_softmax", "softmin")
DTYPES = (np.float32, np.float64)
BOUND = 4.0
DPS = 40
U = {np.dtype(np.float32): 2.0 ** -24, np.dtype(np.float64): 2.0 ** -53,
     np.dtype(np.float16): 2.0 ** -11}
EPS64 = 2.0 ** -52
TORCH_EPS = 2.0      # PyTorch float64's error: TORCH_EPS eps (|d| + L + 4 + sqrt(n) / 4)


@pytest.fixture(scope="module", autouse=True)
def torch_one_thread():
    """PyTorch on one thread here: its thread pool's hand-offs cost milliseconds per call
    on small tensors, more than the computations; restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def sign_of(func):
    return -1.0 if func == "softmin" else 1.0


def fwd(func, *args, **kw):
    return getattr(fastact, func)(*args, **kw)


def bwd(func, *args, **kw):
    return getattr(fastact, func + "_backward")(*args, **kw)


def fb(func, *args, **kw):
    return getattr(fastact, func + "_forward_backward")(*args, **kw)


def ulp(v, dtype):
    """The ulp of v's binade in dtype (that of the smallest normal number below it, of
    the largest finite number beyond it)."""
    info = np.finfo(dtype)
    with np.errstate(invalid="ignore"):
        a = np.abs(np.asarray(v, np.float64))
        a = np.where(np.isfinite(a), np.maximum(a, float(info.tiny)), float(info.max))
    _, e = np.frexp(a)
    return np.ldexp(float(info.eps), e - 1)


def check(actual, hi, lo, slack, dtype, what, x=None, bound=BOUND, allowed=None,
          describe=None):
    """actual within bound (4) ulp(hi + lo) + slack (or within allowed, when given) of
    the exact value hi + lo (float64 arrays); NaN only where the exact value is NaN, equal
    infinities (or an infinity where the exact value is beyond the largest finite
    number), and a result below the smallest normal number where the exact value is
    below it too. describe: index -> words on where that is, for the message."""
    info = np.finfo(dtype)
    tiny = float(info.tiny)
    c = np.asarray(actual).astype(np.float64)
    assert c.shape == np.shape(hi), (what, c.shape, np.shape(hi))
    with np.errstate(all="ignore"):
        err = np.abs((c - hi) - lo)
        if allowed is None:
            allowed = bound * ulp(hi, dtype) + slack
        ok = err <= allowed
        if ok.all():
            return
        idx = np.flatnonzero(~ok)                      # the exceptions, where it is not
        cf, hf = c.reshape(-1)[idx], np.reshape(hi, -1)[idx]
        fine = (np.abs(hf) < tiny) & (np.abs(cf) < tiny)
        fine |= np.isnan(hf) & np.isnan(cf)
        fine |= np.isinf(hf) & (cf == hf)
        fine |= (np.abs(hf) > float(info.max)) & np.isinf(cf) & (np.sign(cf) == np.sign(hf))
    bad = idx[~fine]
    if bad.size:
        i = np.unravel_index(bad[0], c.shape)
        al = np.broadcast_to(allowed, c.shape)
        where = "" if x is None else f", x there {np.asarray(x)[i]!r}"
        where += "" if describe is None else f" ({describe(i)})"
        raise AssertionError(
            f"{what}: {bad.size} of {c.size} elements beyond the bound, e.g. at "
            f"{tuple(int(k) for k in i)}{where}: got {c[i]!r}, exact {hi[i] + lo[i]!r} "
            f"(error {err[i]:.3g} = {err[i] / ulp(hi[i], dtype):.3g} ulp, "
            f"allowed {al[i]:.3g})")


def bits(a):
    a = np.ascontiguousarray(a)
    return a.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize])


def assert_bitwise(a, b, what):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, (what, a.dtype, b.dtype, a.shape, b.shape)
    diff = bits(a) != bits(b)
    assert not diff.any(), (f"{what}: {diff.sum()} elements differ, e.g. at "
                            f"{tuple(np.argwhere(diff)[0])}")


# ---- exact references (mpmath) ----

def _split(v):
    """mpf -> (hi, lo) float64, hi + lo = v to ~106 bits; NaN / infinities as they are."""
    hi = float(v)
    if not np.isfinite(hi):
        return hi, 0.0
    return hi, float(v - hi)


def _exact_forward(xs, counts):
    """(softmax, log_softmax) as mpf of the row holding each distinct value xs[k] (float64,
    any value) counts[k] times, by the contract's rules: a NaN, or all -inf: NaN; +inf
    entries: the limit (1/c and -log c there, 0 and -inf elsewhere); -inf entries with a
    finite max: 0 and -inf; log_softmax at the max: -log1p(the others' sum)."""
    n = len(xs)
    nan = [mp.nan] * n
    if np.isnan(xs).any() or (xs == -np.inf).all():
        return nan, nan
    if (xs == np.inf).any():
        c = int(counts[xs == np.inf].sum())
        sm = [mp.mpf(1) / c if v == np.inf else mp.mpf(0) for v in xs]
        lg = [-mp.log(c) if v == np.inf else mp.ninf for v in xs]
        return sm, lg
    v = [mp.mpf(float(a)) for a in xs]            # -inf stays -inf
    m = max(v)
    d = [a - m for a in v]
    e = [mp.exp(t) if t > -1e5 else mp.mpf(0) for t in d]      # e^-1e5: far below any
    c = sum(int(k) for t, k in zip(d, counts) if t == 0)
    rest = mp.fsum(int(k) * ek for t, k, ek in zip(d, counts, e) if t != 0)
    total = c + rest
    lse = mp.log1p(rest) if c == 1 else mp.log(total)
    return [ek / total for ek in e], [t - lse for t in d]


class RowRef:
    """Exact forward, backward from x and backward from y of one row x with
    grad_output g, for every function: tables over the distinct (x, g) pairs and the
    pair of each element (inv)."""

    def __init__(self, x, g, dtype):
        dtype = np.dtype(dtype)
        x, g = np.asarray(x, np.float64), np.asarray(g, np.float64)
        ux, ix = np.unique(x, return_inverse=True)          # NaN: one value; -0.0 == 0.0
        ug, ig = np.unique(g, return_inverse=True)
        keys, inv, cnt = np.unique(ix.astype(np.int64) * len(ug) + ig,
                                   return_inverse=True, return_counts=True)
        self.inv = inv.reshape(-1)
        px, pg = keys // len(ug), ug[keys % len(ug)]
        mx = np.bincount(ix.reshape(-1), minlength=len(ux))
        with mp.workdps(DPS):
            self.tabs = {f: _tables(f, ux, mx, px, pg, cnt, dtype) for f in FUNCS}

    def el(self, func, name):
        return self.tabs[func][name][self.inv]


def _tables(func, ux, mx, px, pg, cnt, dtype):
    sign, log = sign_of(func), func == "log_softmax"
    u, tiny = U[dtype], float(np.finfo(dtype).tiny)
    sm, lg = _exact_forward(sign * ux, mx)
    out_x = lg if log else sm
    t = {}
    fh, fl = np.array([_split(v) for v in out_x]).T.reshape(2, -1)
    t["fwd_hi"], t["fwd_lo"] = fh[px], fl[px]
    with np.errstate(over="ignore"):
        yin_x = fh.astype(dtype)                     # the rounded forward: bwdy's input
    t["yin"] = yin_x[px]
    g = [mp.mpf(float(v)) for v in pg]
    k = [int(c) for c in cnt]
    p = [sm[i] for i in px]
    yin = [mp.mpf(float(yin_x[i])) for i in px]
    pf = np.array([float(v) for v in p])
    gf, cf = pg, cnt.astype(np.float64)
    yf = yin_x[px].astype(np.float64)
    with np.errstate(all="ignore"):
        if log:
            total = mp.fsum(c * gi for c, gi in zip(k, g))
            rx = [gi - pi * total for gi, pi in zip(g, p)]
            ry = [gi - mp.exp(yi) * total for gi, yi in zip(g, yin)]
            a = np.sum(cf * np.abs(gf))
            ey = np.exp(yf)
            slack_x = 4 * u * (np.abs(gf) + pf * a) + np.where(pf < tiny, tiny * a, 0.0)
            slack_y = 4 * u * (np.abs(gf) + ey * a) + np.where(ey < tiny, tiny * a, 0.0)
        else:
            s = mp.fsum(c * gi * pi for c, gi, pi in zip(k, g, p))
            sy = mp.fsum(c * gi * yi for c, gi, yi in zip(k, g, yin))
            rx = [sign * pi * (gi - s) for gi, pi in zip(g, p)]
            ry = [sign * yi * (gi - sy) for gi, yi in zip(g, yin)]
            ds, dsy = np.abs(gf - float(s)), np.abs(gf - float(sy))
            sx = pf * np.sum(cf * np.abs(gf * pf)) + pf * np.abs(gf)
            syv = yf * np.sum(cf * np.abs(gf * yf)) + yf * np.abs(gf)
            slack_x = (4 * u * sx + 4 * ulp(pf, dtype) * ds
                       + np.where(pf < tiny, tiny * ds, 0.0))
            slack_y = 4 * u * syv + np.where(yf < tiny, tiny * dsy, 0.0)
    t["bwdx_hi"], t["bwdx_lo"] = np.array([_split(v) for v in rx]).T.reshape(2, -1)
    t["bwdy_hi"], t["bwdy_lo"] = np.array([_split(v) for v in ry]).T.reshape(2, -1)
    t["bwdx_slack"], t["bwdy_slack"] = slack_x, slack_y
    t["fwd_slack"] = np.zeros_like(fh[px])
    for part in ("fwd", "bwdx", "bwdy"):      # the bound, absolute
        with np.errstate(invalid="ignore"):
            t[part + "_allowed"] = BOUND * ulp(t[part + "_hi"], dtype) + t[part + "_slack"]
    return t


class Batch:
    """Rows of one length (2-D, rows along axis 1) with their grad_output and RowRefs."""

    def __init__(self, names, xs, gs, dtype):
        self.names, self.dtype = names, np.dtype(dtype)
        self.x = np.array(xs, dtype=dtype)
        self.g = np.array(gs, dtype=dtype)
        self.x.flags.writeable = self.g.flags.writeable = False
        self.refs = [RowRef(a, b, dtype) for a, b in zip(self.x, self.g)]

    def ref(self, func, name):
        return np.stack([r.el(func, name) for r in self.refs]).reshape(self.x.shape)


def check_batch(b, func, layouts=("rows", "columns"), ops=("fwd", "bwdy", "bwdx", "fb")):
    """Every op of func on the batch's rows, as rows (axis=-1 of a C array) and as
    columns (axis=0 of the C-contiguous transpose: the kernels' column tiles)."""
    dt = b.dtype
    refs = {p + n: b.ref(func, p + n) for p in ("fwd", "bwdx", "bwdy")
            for n in ("_hi", "_lo", "_allowed")}
    refs["yin"] = b.ref(func, "yin")
    for layout in layouts:
        if layout == "rows":
            ax, tr = -1, (lambda a: a)
        else:
            ax, tr = 0, (lambda a: np.ascontiguousarray(a.T))
        x, g, yin = tr(b.x), tr(b.g), tr(refs["yin"].astype(dt))
        r = {k: tr(v) for k, v in refs.items()}
        ctx = f"{func} {np.dtype(dt).name} n={b.x.shape[1]} {layout}"

        def describe(i, layout=layout):
            return f"row kind {b.names[int(i[0] if layout == 'rows' else i[1])]!r}"

        def chk(got, op):
            got = np.asarray(got)
            assert got.dtype == dt and got.shape == x.shape, (ctx, op, got.dtype, got.shape)
            part = "fwd" if op in ("fwd", "fb-y") else ("bwdy" if op == "bwdy" else "bwdx")
            check(got, r[part + "_hi"], r[part + "_lo"], None, dt, f"{ctx} {op}", x,
                  allowed=r[part + "_allowed"], describe=describe)

        if "fwd" in ops:
            chk(fwd(func, x, axis=ax), "fwd")
        if "bwdy" in ops:
            chk(bwd(func, g, y=yin, axis=ax), "bwdy")
        if "bwdx" in ops:
            chk(bwd(func, g, x, axis=ax), "bwdx")
        if "fb" in ops:
            y, gx = fb(func, x, ax, g)
            chk(y, "fb-y")
            chk(gx, "fb-grad")


# ---- the rows of the accuracy sweep ----

KINDS = ("normal", "dominant", "dominant_far", "equal", "ulps", "span", "ascending",
         "descending", "huge", "tiny", "negzero", "spread")
FEW = 61                          # distinct values of rows longer than 100


def make_row(kind, n, dtype, rng):
    """A row of n values of dtype: rows longer than 100 take FEW distinct values."""
    dtype = np.dtype(dtype)
    f32 = dtype == np.float32
    info = np.finfo(dtype)
    k = n if n <= 100 else FEW

    def spread(vals):
        return vals if n <= 100 else vals[rng.integers(0, k, n)]

    if kind == "normal":
        row = spread(rng.standard_normal(k) * 3)
    elif kind in ("dominant", "dominant_far"):
        # one maximum; the others far below it: log_softmax there tiny (dominant_far: the
        # others' e^(x - max) subnormal or below, and so is log_softmax at the max)
        lo, hi = {("dominant", True): (16, 30), ("dominant", False): (35, 60),
                  ("dominant_far", True): (88, 104),
                  ("dominant_far", False): (700, 750)}[kind, bool(f32)]
        top = rng.uniform(-5, 5)
        row = spread(top - rng.uniform(lo, hi, k))
        row[rng.integers(n)] = top
    elif kind == "equal":
        row = np.full(n, rng.standard_normal() * 10)
    elif kind == "ulps":                         # x0 + k ulp(x0), k < 16
        x0 = np.array(10 ** rng.uniform(-3, 6) * rng.choice([-1, 1]), dtype)
        steps = rng.integers(0, 16, n)
        ints = {4: np.int32, 8: np.int64}[dtype.itemsize]
        row = (x0.view(ints) + steps.astype(ints)).view(dtype).astype(np.float64)
    elif kind == "span":                         # 1e-30 .. 1e30, random signs
        row = spread(rng.choice([-1.0, 1.0], k) * 10 ** rng.uniform(-30, 30, k))
    elif kind in ("ascending", "descending"):
        row = np.sort(spread(rng.standard_normal(k) * 3))
        row = row if kind == "ascending" else row[::-1].copy()
    elif kind == "huge":                         # +-80 .. +-3e38 (float64: 700 .. 1.7e308)
        lo, hi = (80.0, 3e38) if f32 else (700.0, 1.7e308)
        row = spread(rng.choice([-1.0, 1.0], k) * np.exp(rng.uniform(np.log(lo), np.log(hi), k)))
        if n >= 3:
            i, j = rng.choice(n, 2, replace=False)
            row[i], row[j] = info.max, -info.max
    elif kind == "tiny":                         # subnormal .. 1e-30, and zeros
        smallest = float(np.nextafter(dtype.type(0), dtype.type(1)))
        row = spread(rng.choice([-1.0, 1.0], k)
                     * 10 ** rng.uniform(np.log10(smallest), -30, k))
        row[rng.integers(n)] = smallest
        if n >= 3:
            row[rng.integers(n)] = -0.0
    elif kind == "negzero":                      # -0.0 and +0.0 among normal values
        vals = rng.standard_normal(k) * 3
        vals[: max(1, k // 3)] = -0.0
        vals[k // 3: k // 2] = 0.0
        row = rng.permutation(vals) if n <= 100 else spread(vals)
    elif kind == "spread":                       # many e^(x - max) subnormal or zero
        row = spread(rng.standard_normal(k) * (30 if f32 else 250))
    else:
        raise KeyError(kind)
    return np.asarray(row, np.float64).astype(dtype)


def make_g(n, dtype, rng):
    if n <= 100:
        return rng.standard_normal(n).astype(dtype)
    return (rng.standard_normal(7) * 2).astype(dtype)[rng.integers(0, 7, n)]


@functools.lru_cache(maxsize=None)
def accuracy_batch(dtype_name, n, kinds):
    """The rows of kinds, length n, with their references (cached across backends)."""
    dtype = np.dtype(dtype_name)
    rng = np.random.default_rng([n, dtype.itemsize, len(kinds)])
    xs = [make_row(kind, n, dtype, rng) for kind in kinds]
    gs = [make_g(n, dtype, rng) for _ in kinds]
    return Batch(kinds, xs, gs, dtype)


SHORT = (1, 2, 3, 7, 16, 17, 100, 1000)
LONG_KINDS = ("normal", "dominant", "equal", "ulps", "ascending", "descending")
HUGE_ROW_KINDS = {"softmax": "normal", "log_softmax": "dominant", "softmin": "descending"}


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("func", FUNCS)
def test_accuracy_short_rows(backend_level, func, dtype):
    """Every kind of row, lengths 1..1000, rows and columns, every op, within the bound
    of the mpmath value."""
    for n in SHORT:
        check_batch(accuracy_batch(np.dtype(dtype).name, n, KINDS), func)


@pytest.mark.parametrize("n", (4097, 65537, 10 ** 6))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_accuracy_long_rows(backend_level, dtype, n):
    """Long rows (few distinct values, many repeats: the exact sum is over the distinct
    values) within the bound, for every function."""
    for func in FUNCS:
        if n == 4097:
            kinds, layouts, ops = KINDS, ("rows", "columns"), ("fwd", "bwdy", "bwdx", "fb")
        elif n == 65537:
            kinds, layouts, ops = LONG_KINDS, ("rows", "columns"), ("fwd", "bwdy", "bwdx")
        else:
            kinds, layouts, ops = (HUGE_ROW_KINDS[func],), ("rows",), ("fwd", "bwdy", "bwdx")
        check_batch(accuracy_batch(np.dtype(dtype).name, n, kinds), func, layouts, ops)


def test_reference_is_sound():
    """The mpmath reference itself, against closed forms (so that a wrong reference
    cannot pass fastact's errors): equal rows give 1/n and -log n, two values give the
    logistic function, log_softmax([0, -50]) = -log1p(e^-50)."""
    with mp.workdps(DPS):
        r = RowRef(np.full(5, 3.25), np.arange(5.0), np.float64)
        assert np.all(r.el("softmax", "fwd_hi") == 0.2)
        assert np.all(r.el("log_softmax", "fwd_hi") == -np.log(5.0))
        r = RowRef(np.array([0.0, -50.0]), np.array([1.0, 0.0]), np.float64)
        assert r.el("log_softmax", "fwd_hi")[0] == -1.9287498479639178e-22
        assert r.el("softmax", "fwd_hi")[1] == float(1 / (1 + mp.exp(50)))
        assert r.el("softmin", "fwd_hi")[0] == float(1 / (1 + mp.exp(50)))
        # gradient of softmax_0 = sigmoid(x0 - x1): d/dx0 = s(1 - s)
        s = 1 / (1 + mp.exp(-50))
        assert r.el("softmax", "bwdx_hi")[0] == float(s * (1 - s))
        assert r.el("log_softmax", "bwdx_hi")[0] == float(1 - s)


# ---- special values ----

def special_rows(n, dtype, rng):
    """(name, row) of length n holding NaN / +-inf per the contract's cases; the other
    entries normal values (few distinct ones beyond 100)."""
    dtype = np.dtype(dtype)
    big = float(np.finfo(dtype).max)

    def base():
        return make_row("normal", n, dtype, rng).astype(np.float64)

    def put(row, value, count):
        row[rng.choice(n, count, replace=False)] = value
        return row

    rows = [("nan", put(base(), np.nan, 1)), ("inf", put(base(), np.inf, 1)),
            ("ninf-all", np.full(n, -np.inf)), ("inf-all", np.full(n, np.inf)),
            ("nan-all", np.full(n, np.nan))]
    if n >= 2:
        rows += [("inf2", put(base(), np.inf, 2)), ("ninf", put(base(), -np.inf, n // 2)),
                 ("nan-inf", put(put(base(), np.inf, 1), np.nan, 1)),
                 ("inf-ninf", put(np.full(n, np.inf), -np.inf, n // 2)),
                 ("inf-max", put(put(base(), np.inf, 1), big, 1)),
                 ("max-ninf", put(put(base(), -np.inf, 1), big, 1))]
    if n >= 3:
        rows += [("nan-ninf", put(put(base(), -np.inf, 1), np.nan, 1)),
                 ("inf-ninf-finite", put(put(base(), np.inf, 2), -np.inf, 1)),
                 ("ninf-but-one", put(np.full(n, -np.inf), rng.standard_normal(), 1))]
    return rows


LONG_SPECIALS = ("nan", "inf2", "ninf", "inf-ninf-finite")


@functools.lru_cache(maxsize=None)
def special_batch(dtype_name, n, names=None):
    dtype = np.dtype(dtype_name)
    rng = np.random.default_rng([n, dtype.itemsize, 7])
    rows = [r for r in special_rows(n, dtype, rng) if names is None or r[0] in names]
    gs = [make_g(n, dtype, rng) for _ in rows]
    return Batch(tuple(name for name, _ in rows), [r for _, r in rows], gs, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("func", FUNCS)
def test_special_values(backend, func, dtype):
    """NaN rows all NaN, +inf rows the limit, -inf entries 0 / -inf, all -inf NaN: forward,
    backward from x and from y (the rule's output as y), forward_backward, rows and
    columns, lengths around the vector widths and long rows; other rows of the same
    array unaffected."""
    for n in (1, 2, 3, 8, 17, 1000):
        check_batch(special_batch(np.dtype(dtype).name, n), func)
    check_batch(special_batch(np.dtype(dtype).name, 70000, LONG_SPECIALS), func, ("rows",))


@pytest.mark.parametrize("axis", (-1, 0))
@pytest.mark.parametrize("dtype", (np.float16, np.float32, np.float64),
                         ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("func", FUNCS)
def test_many_special_rows_in_bounded_memory(func, dtype, axis):
    """Rows with a NaN or an infinite max (masked attention rows, a diverging model's NaN
    logits) among ordinary ones, many more than one hand-off to the NumPy rules takes,
    as rows (axis -1) and as columns (axis 0): each gives the NumPy backend's bits of
    the row alone, and the memory the compiled call allocates (outputs given) peaks at a
    few MB (it had been about ten float64 or long double copies of the special rows:
    125-200 MB here)."""
    import tracemalloc
    rng = np.random.default_rng(11)
    rows, n = 2000, 1000
    x = (rng.standard_normal((rows, n)) * 4).astype(dtype)
    kind = rng.integers(0, 4, rows)       # 0 ordinary, 1 NaN, 2 all -inf, 3 max +inf
    x[kind == 1, 5] = np.nan
    x[kind == 2] = -np.inf * sign_of(func)
    x[kind == 3, 7] = np.inf * sign_of(func)
    g = rng.standard_normal((rows, n)).astype(dtype)
    lay = (lambda a: a) if axis == -1 else (lambda a: np.ascontiguousarray(a.T))
    xa, ga = lay(x), lay(g)
    ys, gs = np.empty_like(xa), np.empty_like(xa)
    with using("compiled"):
        fb(func, xa, axis, grad_output=ga, out=ys, grad_out=gs)   # warm, then measured
        tracemalloc.start()
        try:
            fb(func, xa, axis, grad_output=ga, out=ys, grad_out=gs)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 8 << 20, peak
    ys, gs = lay(ys), lay(gs)                          # back to one row per first index
    with using("numpy"):
        for r in np.flatnonzero(kind)[::7]:
            want = fb(func, x[r:r + 1], grad_output=g[r:r + 1])
            np.testing.assert_array_equal(ys[r:r + 1], want[0])
            np.testing.assert_array_equal(gs[r:r + 1], want[1])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_special_values_exact(backend, dtype):
    """The rules' values on small rows, written out (independent of RowRef)."""
    nan, inf = np.nan, np.inf
    x = np.array([[nan, 1.0, 2.0, 3.0], [inf, 1.0, -inf, 2.0], [inf, inf, 0.0, inf],
                  [-inf, 0.0, -inf, 0.0], [-inf, -inf, -inf, -inf], [inf, -inf, inf, 5.0]],
                 dtype)
    zero = np.zeros(x.shape)
    sm = fastact.softmax(x)
    exp_sm = np.array([[nan] * 4, [1, 0, 0, 0], [1 / 3, 1 / 3, 0, 1 / 3], [0, 0.5, 0, 0.5],
                       [nan] * 4, [0.5, 0, 0.5, 0]])
    check(sm, exp_sm, zero, 0.0, dtype, "softmax")
    ls = fastact.log_softmax(x)
    l3, l2 = -np.log(3.0), -np.log(2.0)
    exp_ls = np.array([[nan] * 4, [0.0, -inf, -inf, -inf], [l3, l3, -inf, l3],
                       [-inf, l2, -inf, l2], [nan] * 4, [l2, -inf, l2, -inf]])
    check(ls, exp_ls, zero, 0.0, dtype, "log_softmax")
    assert ls[1, 0] == 0 and not np.signbit(ls[1, 0])  # +0.0 at the one +inf (c == 1)
    sn = fastact.softmin(x)                             # the rules applied to -x
    exp_sn = np.array([[nan] * 4, [0, 0, 1, 0], [0, 0, 1, 0], [0.5, 0, 0.5, 0], [0.25] * 4,
                       [0, 1, 0, 0]])
    check(sn, exp_sn, zero, 0.0, dtype, "softmin")
    # backward from x on the +inf rows: the limit's gradient; NaN rows: all NaN
    g = np.array([[1.0, 2.0, 3.0, 4.0]] * 6, dtype)
    tol = dict(rtol=2e-6 if dtype == np.float32 else 1e-14, atol=0)
    gx = fastact.softmax_backward(g, x)
    assert np.isnan(gx[0]).all() and np.isnan(gx[4]).all()
    assert np.all(gx[1] == 0), gx[1]
    s = (1 + 2 + 4) / 3                                # y = 1/3 at the three +inf
    assert np.allclose(gx[2], [(1 - s) / 3, (2 - s) / 3, 0, (4 - s) / 3], **tol), gx[2]
    assert gx[2][2] == 0
    lx = fastact.log_softmax_backward(g, x)
    assert np.isnan(lx[0]).all() and np.isnan(lx[4]).all()
    assert np.allclose(lx[1], [1 - 10, 2, 3, 4], **tol), lx[1]
    assert np.allclose(lx[3], [1, 2 - 5, 3, 4 - 5], **tol), lx[3]
    # softmin: row 4 (all -inf) is four +inf for it: y = 1/4, -(1/4)(g - 10/4)
    nx = fastact.softmin_backward(g, x)
    assert np.allclose(nx[4], [-(1 - 2.5) / 4, -(2 - 2.5) / 4, -(3 - 2.5) / 4,
                               -(4 - 2.5) / 4], **tol), nx[4]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_log_softmax_small_values(backend, dtype):
    """log_softmax at the max is -log1p(the others' sum), not a difference of large
    numbers: [0, -50] in float64 gives -1.9287498479639178e-22 (not 0)."""
    gap = 50.0 if dtype == np.float64 else 20.0
    with mp.workdps(DPS):
        for n in (2, 3, 17, 1000):
            x = np.full(n, -gap, dtype)
            x[n // 2] = 0
            exact = -mp.log1p((n - 1) * mp.exp(-gap))
            got = fastact.log_softmax(x)[n // 2]
            assert abs(mp.mpf(float(got)) - exact) <= BOUND * ulp(float(exact), dtype), (n, got)
            assert got < 0
            got = fastact.log_softmax(np.ascontiguousarray(x.reshape(n, 1)), axis=0)[n // 2, 0]
            assert abs(mp.mpf(float(got)) - exact) <= BOUND * ulp(float(exact), dtype), (n, got)
    if dtype == np.float64:                   # the documented example, within the bound
        got = fastact.log_softmax(np.array([0.0, -50.0]))[0]
        assert abs(got + 1.9287498479639178e-22) <= BOUND * ulp(1.9287498479639178e-22, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("func", FUNCS)
def test_nan_grad_output(backend, func, dtype):
    """NaN in grad_output: that row's gradient all NaN (the formulas' sums are NaN), from
    x, from y and in forward_backward; the other rows finite."""
    rng = np.random.default_rng(3)
    for n in (1, 5, 33, 5000):
        x = rng.standard_normal((3, n)).astype(dtype)
        g = rng.standard_normal((3, n)).astype(dtype)
        g[1, rng.integers(n)] = np.nan
        y = fwd(func, x)
        for got in (bwd(func, g, x), bwd(func, g, y=y), fb(func, x, -1, g)[1],
                    np.ascontiguousarray(bwd(func, np.ascontiguousarray(g.T),
                                             np.ascontiguousarray(x.T), axis=0).T)):
            assert np.isnan(got[1]).all(), (func, n)
            assert np.isfinite(got[[0, 2]]).all(), (func, n)


@pytest.mark.parametrize("func", ["softmax", "softmin"])
def test_backward_from_y_with_a_sum_past_float32s_range(backend, func):
    """float32 y and g whose sum(g y) is past float32's range (a y that is no softmax's:
    entries of 1): the gradient y (g - sum(g y)) is finite where the exact one is, along
    the last axis and along axis 0 (float32's write rounds that sum; past its range the
    float64 write takes the row), within the bound of the exact value (float64 here)."""
    y = np.array([1.0, 1.0, 1e-10, 0.25], np.float32)
    g = np.array([3e38, 3e38, 0.0, -1e38], np.float32)
    y64, g64 = y.astype(np.float64), g.astype(np.float64)
    sign = 1.0 if func == "softmax" else -1.0
    want = sign * y64 * (g64 - (g64 * y64).sum())
    for got in (bwd(func, g, y=y), bwd(func, g[:, None], y=y[:, None], axis=0)[:, 0],
                bwd(func, np.tile(g, (3, 1)), y=np.tile(y, (3, 1)))[1]):
        finite = np.abs(want) <= np.finfo(np.float32).max
        assert np.isfinite(got[finite]).all() and np.isinf(got[~finite]).all(), got
        err = np.abs(got[finite] - want[finite])
        s = y64 * (np.abs(g64 * y64).sum() + np.abs(g64))
        assert (err <= 4 * ulp(want[finite], np.float32) + 4 * 2.0 ** -24 * s[finite]).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_log_softmax_backward_from_y_over_every_sum_and_y(backend, dtype):
    """log_softmax's gradient from y, g - e^y sum(g), for rows whose sum(g) spans float32's
    range and beyond (for float32 data, float32's write takes 2^-100 <= |sum| <= 2^100,
    the float64 write the rest) and whose y goes past float32's exponential (e^y overflows
    float32 above 88.7, is subnormal below -87.3, 0 below -103.9; for float32 data past
    float64's too, and +inf), with -0.0, -inf and NaN: within the bound of the exact value
    (mpmath), NaN only where it is NaN, along the last axis, along axis 0 (each column's
    own sum: the columns of one tile mix the two writes), in rows of a group and in a long
    row split over threads; a y past the exponential changes no other element's bits."""
    ys = [-0.0, -1e-3, -0.7, -5.0, -40.0, -87.5, -95.0, -103.5, -120.0, -800.0, 0.5, 30.0,
          88.5, 95.0, 300.0, 720.0, 1e30, -np.inf, np.inf, np.nan]
    if dtype == np.float64:        # float64's exponential's edge, and past it
        ys += [709.0, 709.7, 709.8, 710.0, -745.2]
    tiny, u = float(np.finfo(dtype).tiny), U[np.dtype(dtype)]
    sums = [2.0 ** -140, -(2.0 ** -101), 2.0 ** -100, -(2.0 ** -99), 1e-20, -0.5, 1.0, 3e5,
            2.0 ** 99, -(2.0 ** 100), 2.0 ** 101, 1e38]
    rng = np.random.default_rng(11)
    y = np.array(ys, dtype)
    rows = []
    for s in sums:                 # g's last entry sets the sum, the others around it
        g = (rng.standard_normal(y.size) * min(abs(s), 1e30)).astype(dtype)
        g[-1] = dtype(s - math.fsum(g[:-1].astype(np.float64)))
        rows.append(g)
    rows.append(np.resize(np.array([1.5, -1.5, 0.25, -0.25, -0.0, 3.0, 0.0, -3.0, 0.5, -0.5],
                                   dtype), y.size))                       # sum 0: g
    g = np.array(rows)
    yy = np.tile(y, (g.shape[0], 1))

    def exact(gr, yr, total=None, a=None):
        """the exact g - e^y total (total: sum(gr) unless given), its bound's slack"""
        total = mp.fsum(mp.mpf(float(v)) for v in gr) if total is None else total
        a = np.sum(np.abs(gr.astype(np.float64))) if a is None else a
        with mp.workdps(DPS):
            want = [mp.nan if yi != yi else mp.mpf(float(gi)) - mp.exp(float(yi)) * total
                    for gi, yi in zip(gr, yr)]
            hi = np.array([float(w) for w in want])
            lo = np.array([0.0 if not np.isfinite(h) else float(w - mp.mpf(h))
                           for w, h in zip(want, hi)])
        with np.errstate(over="ignore", invalid="ignore"):
            ey = np.exp(yr.astype(np.float64))       # e^y a finite where e^y is not
            slack = (4 * u * (np.abs(gr) + np.exp(yr.astype(np.float64) + np.log(a)))
                     + np.where(ey < tiny, tiny * a, 0.0))
        return hi, lo, slack

    refs = [exact(gr, yr) for gr, yr in zip(g, yy)]
    inside = [r for r, gr in enumerate(g)          # the tile all in float32's write
              if 2.0 ** -100 <= abs(np.float32(math.fsum(gr.astype(float)))) <= 2.0 ** 100]
    assert 0 < len(inside) < len(g)
    for r, (gr, yr) in enumerate(zip(g, yy)):
        for got, where in ((bwd("log_softmax", gr, y=yr), "one row"),
                           (bwd("log_softmax", g, y=yy)[r], "rows"),
                           (bwd("log_softmax", g.T.copy(), y=yy.T.copy(), axis=0)[:, r],
                            "axis 0")):
            check(got, *refs[r], dtype, f"log_softmax bwdy, row {r}, {where}", x=yr)
    got = bwd("log_softmax", g[inside].T.copy(), y=yy[inside].T.copy(), axis=0)
    for c, r in enumerate(inside):
        check(got[:, c], *refs[r], dtype, f"log_softmax bwdy, row {r}, a tile", x=yy[r])
    n = 70000                                       # a long row: blocks over threads
    yl = np.tile(y, -(-n // y.size))[:n]
    for scale in (1e-2, 2.0 ** 88, 2.0 ** 96, 0):   # sums near 1, 2^96, 2^104, and 0
        gl = rng.standard_normal(n).astype(dtype) * dtype(scale or 1)
        if not scale:
            gl[n // 2:] = -gl[:n // 2]
        total = mp.fsum(mp.mpf(float(v)) for v in gl)
        hi, lo, slack = exact(gl[:y.size], yl[:y.size], total, np.abs(gl).sum(dtype=float))
        for threads in (1, 2):
            with fastact.threads(threads):
                got = bwd("log_softmax", gl, y=yl)
            check(got[:y.size], hi, lo, slack, dtype,
                  f"log_softmax bwdy, a long row, sum {float(total)!r}, {threads} threads",
                  x=yl[:y.size])
    # ordinary y, then one past the exponential in some block: the others' bits unchanged
    yo = -rng.exponential(5.0, size=(3, 5000)).astype(dtype)
    go = rng.standard_normal((3, 5000)).astype(dtype)
    base = bwd("log_softmax", go, y=yo)
    for at in (0, 1500, 4999):
        for big in (np.inf, 720.0, 1e30):
            yb = yo.copy()
            yb[1, at] = big
            for got, want in ((bwd("log_softmax", go, y=yb), base),
                              (bwd("log_softmax", go.T.copy(), y=yb.T.copy(), axis=0).T,
                               bwd("log_softmax", go.T.copy(), y=yo.T.copy(), axis=0).T)):
                keep = np.ones(got.shape, bool)
                keep[1, at] = False
                np.testing.assert_array_equal(got[keep], want[keep], err_msg=f"{big} at {at}")
                assert got[1, at] == -np.inf * np.sign(np.sum(go[1], dtype=float)), (big, at)
            yi = yb.copy()                              # in place: the same bits
            np.testing.assert_array_equal(bwd("log_softmax", go, y=yi, out=yi),
                                          bwd("log_softmax", go, y=yb))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("func", FUNCS)
def test_scalar_input(backend, func, dtype):
    """A 0-d x is one row of one: softmax 1, log_softmax 0, gradient 0; the special values'
    rules; a 0-d result of the dtype; axis 0, -1 and None accepted, 1 not."""
    info = np.finfo(dtype)
    for v in (0.5, -3.0, float(info.max), float(info.tiny), np.inf, -np.inf, np.nan, -0.0):
        x = np.array(v, dtype)
        g = np.array(1.5, dtype)
        ref = RowRef(x.reshape(1), g.reshape(1), dtype)
        for axis in (-1, 0, None):
            for got, part in ((fwd(func, x, axis=axis), "fwd"),
                              (bwd(func, g, x, axis=axis), "bwdx"),
                              (bwd(func, g, y=ref.el(func, "yin").astype(dtype)[0],
                                   axis=axis), "bwdy")):
                assert np.ndim(got) == 0 and np.asarray(got).dtype == dtype, (v, part, got)
                check(np.reshape(got, 1), ref.el(func, part + "_hi"),
                      ref.el(func, part + "_lo"), ref.el(func, part + "_slack"), dtype,
                      f"{func} {part} of the scalar {v}")
        y, gx = fb(func, x, -1, g)
        assert np.ndim(y) == 0 and np.ndim(gx) == 0
        check(np.reshape(y, 1), ref.el(func, "fwd_hi"), ref.el(func, "fwd_lo"), 0.0, dtype,
              f"{func} fb of {v}")
    assert fwd(func, np.array(2.0, dtype)) == (0 if func == "log_softmax" else 1)
    assert fwd(func, dtype(2.0)) == (0 if func == "log_softmax" else 1)   # numpy scalar
    r = fwd(func, 2.5)                                                     # Python number
    assert isinstance(r, np.float64) and r == (0 if func == "log_softmax" else 1)
    with pytest.raises(np.exceptions.AxisError):
        fwd(func, np.array(1.0, dtype), axis=1)


# ---- PyTorch parity: axes, layouts, dtypes, out= ----

def torch_fwd_bwd(func, x64, axis, g64):
    """PyTorch float64: (y, grad_x from autograd) along axis (None: the flat array)."""
    t = torch.tensor(x64, requires_grad=True)
    src, dim = (t.reshape(-1), 0) if axis is None else (t, axis)
    if func == "softmax":
        y = torch.softmax(src, dim)
    elif func == "log_softmax":
        y = torch.log_softmax(src, dim)
    else:
        y = F.softmin(src, dim=dim)
    y = y.reshape(x64.shape)
    y.backward(torch.tensor(g64))
    return y.detach().numpy(), t.grad.numpy()


def torch_bwd_from_y(func, g64, y64, axis):
    """PyTorch float64's backward from a given y."""
    shape = g64.shape
    g, y = torch.tensor(g64), torch.tensor(y64)
    if axis is None:
        g, y, axis = g.reshape(-1), y.reshape(-1), 0
    if func == "log_softmax":
        r = torch._log_softmax_backward_data(g, y, axis, torch.float64)
    else:
        r = torch._softmax_backward_data(g, y, axis, torch.float64)
        r = -r if func == "softmin" else r
    return r.reshape(shape).numpy()


def torch_slack(func, x64, axis, g64, dtype, y_given=None):
    """(forward slack, backward-from-x slack, backward-from-y slack) against PyTorch
    float64 for finite rows: fastact's sensitivity terms and PyTorch's own error."""
    dtype = np.dtype(dtype)
    u, tiny = U[dtype], float(np.finfo(dtype).tiny)
    kd = dict(axis=axis, keepdims=True)
    xs = sign_of(func) * x64
    m = np.max(xs, **kd)
    d = np.abs(xs - m)
    lse = np.log(np.sum(np.exp(xs - m), **kd))
    p = np.exp((xs - m) - lse)
    n = x64.size if axis is None else x64.shape[axis]
    te = TORCH_EPS * EPS64 * (d + lse + 4 + np.sqrt(n) / 4)   # PyTorch's relative error
    tmax = TORCH_EPS * EPS64 * (np.max(d, **kd) + lse + 4 + np.sqrt(n) / 4)
    g = g64
    out = []
    if func == "log_softmax":
        fwd_slack = te
        a = np.sum(np.abs(g), **kd)
        sens = np.abs(g) + p * a
        flush = np.where(p < tiny, tiny * a, 0.0)
        bx = 4 * u * sens + flush + tmax * sens
        out = [fwd_slack, bx]
        if y_given is not None:
            ey = np.exp(y_given)
            sens_y = np.abs(g) + ey * a
            out.append(4 * u * sens_y + np.where(ey < tiny, tiny * a, 0.0) + tmax * sens_y)
    else:
        fwd_slack = te * p
        s = np.sum(g * p, **kd)
        ds = np.abs(g - s)
        sens = p * np.sum(np.abs(g * p), **kd) + p * np.abs(g)
        bx = (4 * u * sens + 4 * ulp(p, dtype) * ds + np.where(p < tiny, tiny * ds, 0.0)
              + tmax * (sens + p * ds))
        out = [fwd_slack, bx]
        if y_given is not None:
            yv = y_given
            sy = np.sum(g * yv, **kd)
            dsy = np.abs(g - sy)
            sens_y = yv * np.sum(np.abs(g * yv), **kd) + yv * np.abs(g)
            out.append(4 * u * sens_y + np.where(yv < tiny, tiny * dsy, 0.0) + tmax * sens_y)
    return out


def check_against_torch(func, x, axis, g, dtype, what, ops=("fwd", "bwdx", "bwdy", "fb"), **kw):
    """fastact's forward, backward from x, from y (PyTorch's y rounded to dtype) and
    forward_backward of x (any layout, dtype) against PyTorch float64; kw: axis as
    dim= instead. Returns the forward result."""
    dtype = np.dtype(dtype)
    x64, g64 = np.asarray(x, np.float64), np.asarray(g, np.float64)
    ty, tg = torch_fwd_bwd(func, x64, axis, g64)
    yin = ty.astype(dtype)
    sf, sx, sy = torch_slack(func, x64, axis, g64, dtype, yin.astype(np.float64))
    zero = np.zeros(x64.shape)
    akw = kw if kw else {"axis": axis}
    results = []
    y = fwd(func, x, **akw)
    results.append(y)
    check(y, ty, zero, sf, dtype, f"{what} forward vs torch", x64)
    if "bwdx" in ops:
        gx = bwd(func, g, x, **akw)
        results.append(gx)
        check(gx, tg, zero, sx, dtype, f"{what} backward(x) vs torch", x64)
    if "bwdy" in ops:
        ty_in = torch_bwd_from_y(func, g64, yin.astype(np.float64), axis)
        gy = bwd(func, g, y=yin, **akw)
        results.append(gy)
        check(gy, ty_in, zero, sy, dtype, f"{what} backward(y) vs torch", x64)
    if "fb" in ops:
        y2, gx = fb(func, x, grad_output=g, **akw)
        results += [y2, gx]
        check(y2, ty, zero, sf, dtype, f"{what} fb y vs torch", x64)
        check(gx, tg, zero, sx, dtype, f"{what} fb grad vs torch", x64)
    for r in results:
        assert np.asarray(r).dtype == dtype and np.shape(r) == x64.shape
    return y


def layouts(shape, dtype, rng):
    """(name, x) of shape: C, F, strided (every other element of the last axis) and
    transposed (a permutation of a C array: neither C nor F from 3-D on)."""
    nd = len(shape)
    yield "C", (rng.standard_normal(shape) * 3).astype(dtype)
    if nd > 1:
        yield "F", np.asfortranarray((rng.standard_normal(shape) * 3).astype(dtype))
    big = (rng.standard_normal(shape[:-1] + (2 * shape[-1],)) * 3).astype(dtype)
    yield "strided", big[..., ::2]
    if nd > 1:
        perm = tuple(range(1, nd)) + (0,)
        inv = tuple(np.argsort(perm))
        src = (rng.standard_normal(tuple(shape[i] for i in perm)) * 3).astype(dtype)
        yield "transposed", np.transpose(src, inv)


def expected_order(x):
    if x.flags.c_contiguous or x.ndim < 2:
        return "C"
    return "F" if x.flags.f_contiguous else "C"


SHAPES = {1: (7,), 2: (3, 5), 3: (2, 3, 4), 4: (2, 3, 4, 5)}


@pytest.mark.parametrize("ndim", sorted(SHAPES))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("func", FUNCS)
def test_axes_and_layouts_vs_torch(backend, func, dtype, ndim):
    """Every axis (negative ones, axis=None, dim=) of C, F, strided and transposed
    arrays against PyTorch; results follow x's layout (C or F, else C)."""
    shape = SHAPES[ndim]
    rng = np.random.default_rng(ndim)
    for name, x in layouts(shape, dtype, rng):
        g = rng.standard_normal(shape).astype(dtype)
        for axis in list(range(-ndim, ndim)) + [None]:
            what = f"{func} {np.dtype(dtype).name} {name} {shape} axis={axis}"
            y = check_against_torch(func, x, axis, g, dtype, what)
            order = expected_order(x)
            assert (y.flags.f_contiguous if order == "F" else y.flags.c_contiguous), what
            if axis is not None:
                check_against_torch(func, x, axis, g, dtype, what + " as dim", dim=axis)
                # axis and dim both given and naming the same axis: accepted (1 and -1
                # of a 2-D array too); naming different ones: TypeError (but axis=-1,
                # the default, which cannot be told from an explicit -1)
                for same in {axis, axis - ndim if axis >= 0 else axis + ndim}:
                    assert_bitwise(fwd(func, x, axis=axis, dim=same), y, what + " axis=dim=")
                if ndim > 1 and axis != -1:
                    with pytest.raises(TypeError, match="not both"):
                        fwd(func, x, axis=axis, dim=(axis + 1) % ndim)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_row_lengths_around_vector_widths(backend, dtype):
    """Row lengths 1..40 (the SIMD widths and their tails), as rows and columns, several
    rows at once, against PyTorch."""
    rng = np.random.default_rng(11)
    for n in range(1, 41):
        x = (rng.standard_normal((3, n)) * 4).astype(dtype)
        g = rng.standard_normal((3, n)).astype(dtype)
        for func in FUNCS:
            check_against_torch(func, x, -1, g, dtype, f"{func} rows n={n}")
            check_against_torch(func, np.ascontiguousarray(x.T), 0,
                                np.ascontiguousarray(g.T), dtype, f"{func} columns n={n}")


@pytest.mark.parametrize("n", (16383, 16384, 16385, 65535, 65536, 65537, 2 ** 20 + 3))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_block_boundaries(backend, dtype, n):
    """Row lengths around the kernels' block sizes, one long row and a few columns of
    that length, against PyTorch."""
    rng = np.random.default_rng(n)
    x = (rng.standard_normal(n) * 4).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    if n > 2 ** 20:                           # one function, a row: to keep the time down
        func = FUNCS[np.dtype(dtype).itemsize % 3]
        check_against_torch(func, x, -1, g, dtype, f"{func} n={n} row", ops=("fwd", "bwdx"))
        return
    for func in FUNCS:
        check_against_torch(func, x, -1, g, dtype, f"{func} n={n} row")
    cols = (rng.standard_normal((n, 3)) * 4).astype(dtype)
    gc = rng.standard_normal((n, 3)).astype(dtype)
    check_against_torch(FUNCS[n % 3], cols, 0, gc, dtype, f"{FUNCS[n % 3]} n={n} columns",
                        ops=("fwd", "bwdx", "bwdy"))


@pytest.mark.parametrize("func", FUNCS)
def test_float16_and_integer_inputs(backend, func):
    """float16: computed in float, a float16 result within 1 float16 ulp of float32's
    rounded (docs/half.md: rows sum in float lanes) and of PyTorch float64's; bool and
    integers: float64 (the float64 result), against PyTorch float64."""
    rng = np.random.default_rng(5)
    x16 = (rng.standard_normal((4, 37)) * 3).astype(np.float16)
    g16 = rng.standard_normal((4, 37)).astype(np.float16)
    for axis in (-1, 0, None):
        y = fwd(func, x16, axis=axis)
        assert y.dtype == np.float16
        y32 = fwd(func, x16.astype(np.float32), axis=axis).astype(np.float16)
        assert np.all(np.abs(y.view(np.int16).astype(int) - y32.view(np.int16)) <= 1), \
            f"{func} float16 axis={axis} vs float32's rounded"
        ty, tg = torch_fwd_bwd(func, x16.astype(np.float64), axis, g16.astype(np.float64))
        sf, sx = torch_slack(func, x16.astype(np.float64), axis, g16.astype(np.float64),
                             np.float32)
        # within 4 float32 ulp before the rounding to float16: 1 float16 ulp after it
        check(y, ty, np.zeros(ty.shape), sf, np.float16,
              f"{func} float16 axis={axis} vs torch", bound=1.0)
        gx = bwd(func, g16, x16, axis=axis)
        assert gx.dtype == np.float16
        check(gx, tg, np.zeros(tg.shape), sx, np.float16,
              f"{func} float16 backward axis={axis} vs torch", bound=1.0)
        y2, gx2 = fb(func, x16, axis, g16)
        assert y2.dtype == gx2.dtype == np.float16
        assert_bitwise(y2, y, f"{func} float16 fb y")
        assert_bitwise(gx2, gx, f"{func} float16 fb grad")
    for xi in (rng.integers(-20, 20, (3, 9)).astype(np.int32), rng.integers(-20, 20, 9),
               rng.integers(0, 200, (2, 5)).astype(np.uint8), rng.random((3, 4)) > 0.5):
        y = fwd(func, xi)
        assert y.dtype == np.float64, xi.dtype
        assert_bitwise(y, fwd(func, xi.astype(np.float64)), f"{func} {xi.dtype}")
        gi = np.ones(xi.shape, np.int64)
        gx = bwd(func, gi, xi)
        assert gx.dtype == np.float64
        assert_bitwise(gx, bwd(func, gi.astype(np.float64), xi.astype(np.float64)),
                       f"{func} backward {xi.dtype}")
        check_against_torch(func, xi.astype(np.float64), -1,
                            rng.standard_normal(xi.shape), np.float64, f"{func} {xi.dtype}")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("func", FUNCS)
def test_out_arguments(backend, func, dtype):
    """out= and grad_out=: returned and filled (the values without them); any layout of
    out; wrong dtype TypeError, wrong shape ValueError; out sharing memory with x, y or
    grad_output still right."""
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((6, 33)) * 3).astype(dtype)
    g = rng.standard_normal((6, 33)).astype(dtype)
    for axis in (-1, 0, None):
        y = fwd(func, x, axis=axis)
        gy = bwd(func, g, y=y, axis=axis)
        gx = bwd(func, g, x, axis=axis)
        outs = [np.empty_like(x), np.empty(x.shape, dtype, order="F"),
                np.empty((6, 66), dtype)[:, ::2]]
        for o in outs:
            assert fwd(func, x, axis=axis, out=o) is o
            assert_bitwise(o, y, f"{func} out= axis={axis}")
            o[...] = 0
            assert bwd(func, g, x, axis=axis, out=o) is o
            assert_bitwise(o, gx, f"{func} backward out= axis={axis}")
            assert bwd(func, g, y=y, axis=axis, out=o) is o
            assert_bitwise(o, gy, f"{func} backward(y) out= axis={axis}")
            o2 = np.empty_like(x)
            r = fb(func, x, axis, g, out=o, grad_out=o2)
            assert r[0] is o and r[1] is o2
            assert_bitwise(o, y, "fb out=")
            assert_bitwise(o2, gx, "fb grad_out=")
            o2[...] = 0
            r = fb(func, x, axis, g, grad_out=o2)
            assert r[1] is o2 and r[0] is not o2
            assert_bitwise(r[0], y, "fb y with grad_out=")
            assert_bitwise(o2, gx, "fb grad_out= alone")
        # sharing memory: in place, and a reversed view of the input
        xc = x.copy()
        assert fwd(func, xc, axis=axis, out=xc) is xc
        assert_bitwise(xc, y, f"{func} out=x axis={axis}")
        xc = x.copy()
        rev = xc[::-1]
        fwd(func, xc, axis=axis, out=rev)
        assert_bitwise(rev, y, f"{func} out=x[::-1] axis={axis}")
        yc = y.copy()
        assert bwd(func, g, y=yc, axis=axis, out=yc) is yc
        assert_bitwise(yc, gy, f"{func} backward(y) out=y axis={axis}")
        gc = g.copy()
        assert bwd(func, gc, x, axis=axis, out=gc) is gc
        assert_bitwise(gc, gx, f"{func} backward out=grad_output axis={axis}")
        xc, gc = x.copy(), g.copy()
        r = fb(func, xc, axis, gc, out=gc, grad_out=xc)
        assert r[0] is gc and r[1] is xc
        assert_bitwise(gc, y, "fb out=grad_output")
        assert_bitwise(xc, gx, "fb grad_out=x")
    other = np.float64 if dtype == np.float32 else np.float32
    with pytest.raises(TypeError):
        fwd(func, x, out=np.empty(x.shape, other))
    with pytest.raises(TypeError):
        bwd(func, g, x, out=np.empty(x.shape, other))
    with pytest.raises(TypeError):
        fb(func, x, grad_out=np.empty(x.shape, other))
    with pytest.raises(ValueError):
        fwd(func, x, out=np.empty((6, 32), dtype))
    with pytest.raises(ValueError):
        fwd(func, x, out=np.empty((33, 6), dtype))
    with pytest.raises(ValueError):
        bwd(func, g, y=x, out=np.empty(x.size, dtype))
    with pytest.raises(ValueError):
        fb(func, x, out=np.empty((6, 34), dtype))
    with pytest.raises(ValueError):            # out and grad_out overlapping
        o = np.empty_like(x)
        fb(func, x, out=o, grad_out=o)
    x16 = x.astype(np.float16)
    o16 = np.empty(x.shape, np.float16)
    assert fwd(func, x16, out=o16) is o16
    assert_bitwise(o16, fwd(func, x16), "float16 out=")
    with pytest.raises(TypeError):
        fwd(func, x16, out=np.empty(x.shape, np.float32))


def test_mixed_dtypes_promote(backend):
    """grad_output and x (or y) of different dtypes: the promoted dtype (float16 with
    float32: float32), the values of the promoted inputs."""
    rng = np.random.default_rng(23)
    x = rng.standard_normal((3, 20))
    g = rng.standard_normal((3, 20))
    for xd, gd, rd in ((np.float32, np.float64, np.float64), (np.float64, np.float32, np.float64),
                       (np.float16, np.float32, np.float32), (np.float16, np.float16, np.float16),
                       (np.int32, np.float32, np.float64)):
        xa, ga = x.astype(xd), g.astype(gd)
        for func in FUNCS:
            r = bwd(func, ga, xa)
            assert r.dtype == rd, (xd, gd, r.dtype)
            cd = np.float32 if rd == np.float16 else rd
            ref = bwd(func, ga.astype(cd), xa.astype(cd)).astype(rd)
            assert_bitwise(r, ref, f"{func} {np.dtype(xd).name} x, {np.dtype(gd).name} g")
            y, gx = fb(func, xa, -1, ga)
            assert y.dtype == gx.dtype == rd
            assert bwd(func, ga, y=xa).dtype == rd


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("func", FUNCS)
def test_out_checked_before_writing(backend, func, dtype):
    """A bad grad_out (or a bad grad_output) raises before out is written."""
    x = np.linspace(-3, 3, 24, dtype=dtype).reshape(4, 6)
    other = np.float64 if dtype == np.float32 else np.float32
    for bad in (dict(grad_out=np.empty(x.shape, other)), dict(grad_out=np.empty((4, 5), dtype)),
                dict(grad_output=np.ones((4, 5), dtype))):
        o = np.full(x.shape, 7.0, dtype)
        with pytest.raises((TypeError, ValueError)):
            fb(func, x, out=o, **bad)
        assert np.all(o == 7.0), bad
    o = np.full(x.shape, 7.0, dtype)
    with pytest.raises(np.exceptions.AxisError):
        fwd(func, x, axis=2, out=o)
    assert np.all(o == 7.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_softmax_zeros_are_positive(backend, dtype):
    """softmax and softmin are positive: where they round to zero (-inf entries, e^(x -
    max) underflowing, a difference x - max too large to be exact) the zero is +0.0, the
    sign the limit approaches from (docs/contract.md: a zero limit carries that sign)."""
    info = np.finfo(dtype)
    rows = [[0.0, -1000.0, 5.0], [1e20, 1e30, -np.inf], [1e17, 3e26, 0.0],
            [1e25, 1e30, 1e10], [-np.inf, 2.0, 1e30], [float(info.max) / 3, float(info.max), 0.0]]
    x = np.array(rows, dtype)
    for func in ("softmax", "softmin"):
        xx = x if func == "softmax" else -x
        for got in (fwd(func, xx), fb(func, xx)[0],
                    fwd(func, np.ascontiguousarray(xx.T), axis=0).T):
            zero = got == 0
            assert zero.any()
            assert not np.signbit(got[zero]).any(), (func, got)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_empty_arrays(backend, dtype):
    """Empty arrays along every axis: empty results of the shape and dtype, out= too."""
    for shape in ((3, 0), (0, 5), (0,), (2, 0, 3)):
        x = np.empty(shape, dtype)
        for axis in list(range(-len(shape), len(shape))) + [None]:
            for func in FUNCS:
                for r in (fwd(func, x, axis=axis), bwd(func, x, x, axis=axis),
                          bwd(func, x, y=x, axis=axis), *fb(func, x, axis)):
                    assert r.shape == shape and r.dtype == dtype, (func, shape, axis)
                o = np.empty(shape, dtype)
                assert fwd(func, x, axis=axis, out=o) is o


# ---- determinism ----

def _det_cases(dtype, rng):
    n = 10 ** 6
    long_row = (rng.standard_normal(n) * 4).astype(dtype)
    short_rows = (rng.standard_normal((20000, 7)) * 4).astype(dtype)
    columns = (rng.standard_normal((3001, 37)) * 4).astype(dtype)
    middle = (rng.standard_normal((7, 2049, 5)) * 4).astype(dtype)
    return [("1e6 row", long_row, -1), ("short rows", short_rows, -1),
            ("columns", columns, 0), ("middle axis", middle, 1),
            ("long columns", (rng.standard_normal((70001, 3)) * 4).astype(dtype), 0)]


def _all_ops(func, x, axis, g):
    y = fwd(func, x, axis=axis)
    return [y, bwd(func, g, x, axis=axis), bwd(func, g, y=y, axis=axis),
            *fb(func, x, axis, g)]


@pytest.mark.parametrize("dtype", DTYPES + (np.float16, ml_dtypes.bfloat16),
                         ids=lambda d: np.dtype(d).name)
def test_threads_bitwise(dtype):
    """The compiled kernels give the same bits on 1 and 2 threads (and when called
    again): long rows split over threads, many short rows, columns, a middle axis; the
    16-bit types too (their long rows' blocks are widened piece by piece). (The NumPy
    backend runs no threads.)"""
    previous = fastact.set_backend("compiled")
    try:
        rng = np.random.default_rng(21)
        for name, x, axis in _det_cases(dtype, rng):
            g = rng.standard_normal(x.shape).astype(dtype)
            for func in FUNCS:
                with fastact.threads(1):
                    one = _all_ops(func, x, axis, g)
                with fastact.threads(2):
                    two = _all_ops(func, x, axis, g)
                    again = _all_ops(func, x, axis, g)
                for a, b, c in zip(one, two, again):
                    assert_bitwise(a, b, f"{func} {name}: 1 vs 2 threads")
                    assert_bitwise(b, c, f"{func} {name}: repeated call")
    finally:
        fastact.set_backend(previous)


def _ref_softmax(func, x, axis):
    v = np.asarray(x, np.float64) * sign_of(func)
    with np.errstate(invalid="ignore", over="ignore"):
        d = v - np.max(v, axis=axis, keepdims=True)
        lse = np.log(np.sum(np.exp(d), axis=axis, keepdims=True))
    return d - lse if func == "log_softmax" else np.exp(d - lse)


@pytest.mark.parametrize("dtype", DTYPES + (np.float16, ml_dtypes.bfloat16),
                         ids=lambda d: np.dtype(d).name)
def test_fast_path_matches_the_general_path(dtype):
    """The common case (C-contiguous ndarrays of one dtype, an int axis or None, out=
    absent or of x's layout) goes straight to the kernels (fastact._runner.softmax_fast);
    dim= takes the general path (fastact._softmax.run) to the same kernels. Every op of
    every function, every axis of 1-4 dimensions and the flat array, few rows and more
    than the flags on the stack (256), with rows of NaN, +inf and -inf among them, out=
    given, absent and the input itself (in place): the same bits both ways, out= the very
    array returned, and the float64 reference's values."""
    previous = fastact.set_backend("compiled")
    rng = np.random.default_rng(31)
    tol = 2.0 ** -6 if np.dtype(dtype).itemsize == 2 else 1e-5
    try:
        for shape in ((7,), (3, 5), (300, 9), (2, 3, 4), (2, 1, 3, 130)):
            x = (rng.standard_normal(shape) * 3).astype(dtype)
            g = rng.standard_normal(shape).astype(dtype)
            flat = x.reshape(-1)
            flat[[1, 5]] = np.asarray([np.nan, np.inf]).astype(dtype)
            if x.ndim > 1:
                x[-1] = -np.inf
            for axis in (*range(-x.ndim, x.ndim), None):
                # the general path: dim= (for the flat array, of the flattened arrays)
                xx, gg, d = (x.ravel(), g.ravel(), -1) if axis is None else (x, g, axis)
                nan = np.isnan(x).any(axis=axis, keepdims=True) | np.zeros(x.shape, bool)
                for func in FUNCS:
                    y = fwd(func, x, axis)
                    want = _ref_softmax(func, x, axis)
                    finite = np.isfinite(want)
                    assert np.allclose(np.asarray(y, np.float64)[finite], want[finite],
                                       rtol=tol, atol=tol), (func, shape, axis)
                    assert np.isnan(np.asarray(y, np.float64)[nan]).all()
                    yy = y.ravel() if axis is None else y
                    general = [fwd(func, xx, dim=d), bwd(func, gg, xx, dim=d),
                               bwd(func, gg, y=yy, dim=d), *fb(func, xx, dim=d, grad_output=gg)]
                    got = [y, bwd(func, g, x, axis=axis), bwd(func, g, y=y, axis=axis),
                           *fb(func, x, axis, g)]
                    for a, b in zip(got, general):
                        assert a.shape == x.shape and a.dtype == x.dtype
                        assert_bitwise(a.reshape(b.shape), b,
                                       f"{func} {shape} axis={axis}: fast vs general")
                    out, out2 = np.empty_like(x), np.empty_like(x)
                    assert fwd(func, x, axis, out=out) is out
                    assert_bitwise(out, y, "out=")
                    r = fb(func, x, axis, g, out=out, grad_out=out2)
                    assert r[0] is out and r[1] is out2
                    assert_bitwise(out2, got[3 + 1], "grad_out=")
                    assert bwd(func, g, y=y, axis=axis, out=out) is out
                    assert_bitwise(out, got[2], "backward out=")
                    inplace = x.copy()
                    assert fwd(func, inplace, axis, out=inplace) is inplace
                    assert_bitwise(inplace, y, "in place")
    finally:
        fastact.set_backend(previous)


@pytest.mark.parametrize("dtype", DTYPES + (np.float16, ml_dtypes.bfloat16),
                         ids=lambda d: np.dtype(d).name)
def test_threads_bitwise_special_grad_output(dtype):
    """A long row whose grad_output holds infinities, a NaN or the largest finite values
    (sums of g y or g that overflow, in the first block or a later one): the same bits on
    1 thread (the row whole) and 2 (its blocks on both threads, combined in order)."""
    previous = fastact.set_backend("compiled")
    try:
        rng = np.random.default_rng(5)
        n = 10 ** 6
        x = (rng.standard_normal(n) * 4).astype(dtype)
        big = float(ml_dtypes.finfo(dtype).max)            # the largest finite value
        for where in (0, 3, n - 5002):
            for special in ([np.inf], [-np.inf, np.inf], [np.nan], [big] * 5000):
                g = rng.standard_normal(n).astype(dtype)
                g[where: where + len(special)] = np.asarray(special, np.float64).astype(dtype)
                for func in FUNCS:
                    with fastact.threads(1):
                        one = _all_ops(func, x, -1, g)
                    with fastact.threads(2):
                        two = _all_ops(func, x, -1, g)
                    for a, b in zip(one, two):
                        assert_bitwise(a, b, f"{func} g[{where}] = {special[0]}: 1 vs 2 threads")
    finally:
        fastact.set_backend(previous)


@pytest.mark.parametrize("dtype", DTYPES + (np.float16, ml_dtypes.bfloat16),
                         ids=lambda d: np.dtype(d).name)
def test_rows_do_not_depend_on_their_neighbours(dtype):
    """Rows are computed in groups (their write constants together), 16-bit short rows
    as many at a time as the buffers hold, and rows of up to FA_SMX_SHORT elements
    (16-bit: FA_SMX_HSHORT, FA_SMX_HODD - 1) as the columns of tiles (several tiles at
    300 rows, their rows rounded down to a multiple of 16 at short // 2 + 1): every row
    of a many-row array,
    special rows (NaN, +inf, all -inf) among ordinary ones at any place of a group, gives
    the bits of the same row computed alone, in every op, on 1 and 2 threads."""
    previous = fastact.set_backend("compiled")
    half = np.dtype(dtype).itemsize == 2
    short = softmax_constant("FA_SMX_HSHORT" if half else "FA_SMX_SHORT")
    odd = softmax_constant("FA_SMX_HODD") - 1 if half else short
    try:
        rng = np.random.default_rng(8)
        for n in sorted({1, 5, 16, short // 2 + 1, short, short + 1, odd, 130, 1500, 4097}):
            for count in (1, 15, 16, 17, 40, 300):
                if n * count > 300000 or (count == 300 and n > odd):
                    continue
                x = (rng.standard_normal((count, n)) * 8).astype(dtype)
                g = rng.standard_normal((count, n)).astype(dtype)
                for r in rng.choice(count, size=min(count, 3), replace=False):
                    kind = rng.integers(3)
                    if kind == 0:
                        x[r, rng.integers(n)] = np.nan
                    elif kind == 1:
                        x[r, rng.integers(n)] = np.inf
                    else:
                        x[r] = -np.inf
                for func in FUNCS:
                    for t in (1, 2):
                        with fastact.threads(t):
                            whole = _all_ops(func, x, -1, g)
                            alone = [_all_ops(func, x[r:r + 1], -1, g[r:r + 1])
                                     for r in range(count)]
                        for k, res in enumerate(whole):
                            got = np.concatenate([a[k] for a in alone])
                            assert_bitwise(res, got, f"{func} {count}x{n} op {k}, {t} threads")
    finally:
        fastact.set_backend(previous)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("func", FUNCS)
def test_compiled_matches_numpy(func, dtype):
    """The compiled and the NumPy backends within twice the bound of each other (both
    are within it of the exact value), rows, columns, a middle axis, special values."""
    rng = np.random.default_rng(31)
    u = U[np.dtype(dtype)]
    cases = [((5, 1000), -1), ((1000, 6), 0), ((3, 257, 4), 1), ((2, 30011), -1)]
    for shape, axis in cases:
        x = (rng.standard_normal(shape) * 5).astype(dtype)
        x.flat[rng.integers(x.size, size=3)] = [np.inf, -np.inf, np.nan]
        g = rng.standard_normal(shape).astype(dtype)
        results = {}
        y_in = None
        for name in ("numpy", "compiled"):
            previous = fastact.set_backend(name)
            try:
                y = fwd(func, x, axis=axis)
                y_in = y if y_in is None else y_in     # both backward from the same y
                results[name] = [y, bwd(func, g, x, axis=axis), bwd(func, g, y=y_in, axis=axis),
                                 *fb(func, x, axis, g)]
            finally:
                fastact.set_backend(previous)
        ny, ngx = results["numpy"][:2]
        with np.errstate(all="ignore"):
            y64 = ny.astype(np.float64)
            p = np.exp(y64) if func == "log_softmax" else y64
            g64 = g.astype(np.float64)
            kd = dict(axis=axis, keepdims=True)
            if func == "log_softmax":
                sens = np.abs(g64) + p * np.sum(np.abs(g64), **kd)
                extra = 0.0
            else:
                sens = p * np.sum(np.abs(g64 * p), **kd) + p * np.abs(g64)
                extra = 8 * ulp(p, dtype) * np.abs(g64 - np.sum(g64 * p, **kd))
            slack_g = 8 * u * sens + extra + BOUND * ulp(ngx, dtype)
            slack_g = np.where(np.isfinite(slack_g), slack_g, 0.0)
        zero = np.zeros(shape)
        what = f"{func} {shape} axis={axis} compiled vs numpy"
        for c, n_, sl in zip(results["compiled"], results["numpy"],
                             (BOUND * ulp(ny, dtype), slack_g, slack_g,
                              BOUND * ulp(ny, dtype), slack_g)):
            check(c, n_.astype(np.float64), zero, sl, dtype, what, x)


# ---- the API ----

def test_names_and_table():
    assert fastact.SOFTMAX == ("softmax", "log_softmax", "softmin")
    for name in fastact.SOFTMAX:
        assert callable(getattr(fastact, name))
        assert callable(getattr(fastact, name + "_backward"))
        assert callable(getattr(fastact, name + "_forward_backward"))
        assert not hasattr(fastact, name + "_grad")
    assert not hasattr(fastact, "softmax_grad")
    for cls in (fastact.Softmax, fastact.LogSoftmax, fastact.Softmin):
        assert issubclass(cls, fastact.SoftmaxFunction)


CLASSES = {"softmax": "Softmax", "log_softmax": "LogSoftmax", "softmin": "Softmin"}


@pytest.mark.parametrize("func", FUNCS)
def test_assigned_axis_is_used_and_validated(backend, func):
    """Assigning axis (or dim) of a Softmax/LogSoftmax/Softmin object: validated as the
    constructor does (the object unchanged after an error), and used from the next call."""
    cls = getattr(fastact, CLASSES[func])
    x = np.random.default_rng(14).standard_normal((3, 5))
    for attr in ("axis", "dim"):
        obj = cls()
        for bad in (1.5, "0", True):
            with pytest.raises(TypeError, match="axis must be an integer"):
                setattr(obj, attr, bad)
            assert obj == cls()
        setattr(obj, attr, 0)
        assert obj == cls(0) and obj.axis == obj.dim == 0 and repr(obj) == repr(cls(0))
        assert_bitwise(obj(x), fwd(func, x, axis=0), f"{func} after {attr} = 0")


@pytest.mark.parametrize("func", FUNCS)
def test_classes(backend, func):
    """Softmax/LogSoftmax/Softmin: axis/dim, params, repr, eq, hash, pickle, get(), and
    their calls equal to the functions'."""
    cls = getattr(fastact, CLASSES[func])
    rng = np.random.default_rng(13)
    x = rng.standard_normal((4, 5, 6))
    g = rng.standard_normal((4, 5, 6))
    for axis in (-1, 0, 1, 2, -2, None):
        obj = cls(axis)
        assert obj.axis == axis and obj.dim == axis
        assert obj.params == {"axis": axis}
        assert repr(obj) == f"{CLASSES[func]}(axis={axis!r})"
        assert obj == cls(axis=axis) and hash(obj) == hash(cls(axis=axis))
        back = pickle.loads(pickle.dumps(obj))
        assert back == obj and type(back) is cls and back.axis == axis
        if axis is not None:
            assert cls(dim=axis) == obj and cls(dim=axis).axis == axis
            assert cls(axis, dim=axis) == obj
        assert_bitwise(obj(x), fwd(func, x, axis=axis), f"{func} {axis}")
        assert_bitwise(obj.backward(g, x), bwd(func, g, x, axis=axis), "backward")
        y = obj(x)
        assert_bitwise(obj.backward(g, y=y), bwd(func, g, y=y, axis=axis), "backward(y)")
        r, r_ref = obj.forward_backward(x, g), fb(func, x, axis, g)
        assert_bitwise(r[0], r_ref[0], "fb y")
        assert_bitwise(r[1], r_ref[1], "fb grad")
        o, o2 = np.empty_like(x), np.empty_like(x)
        assert obj(x, out=o) is o
        assert obj.backward(g, x, out=o) is o
        assert_bitwise(o, r_ref[1], "class backward out=")
        r = obj.forward_backward(x, g, out=o, grad_out=o2)
        assert r[0] is o and r[1] is o2
        assert fastact.get(func, axis=axis) == obj
        assert fastact.get(CLASSES[func], axis=axis) == obj
    assert cls() == cls(-1) and cls().axis == -1
    assert cls(1) != cls(2) and cls(1) != cls(None)
    others = [c for f, c in CLASSES.items() if f != func]
    for other in others:
        assert cls(1) != getattr(fastact, other)(1)
    assert fastact.get(CLASSES[func]) == cls()
    assert fastact.get(CLASSES[func].lower(), dim=0) == cls(0)
    assert isinstance(fastact.get(func), cls)
    with pytest.raises(TypeError):
        cls(0, dim=1)
    with pytest.raises(TypeError):
        cls(1.5)
    with pytest.raises(TypeError):
        cls(True)
    with pytest.raises(TypeError):
        obj.backward(g)                       # neither x nor y
    with pytest.raises(np.exceptions.AxisError):
        cls(3)(x)
    # y wins over x
    z = np.zeros_like(x)
    y = cls(1)(x)
    assert_bitwise(cls(1).backward(g, z, y=y), cls(1).backward(g, y=y), "y wins (class)")


@pytest.mark.parametrize("func", FUNCS)
def test_argument_errors(backend, func):
    """axis and dim different: TypeError; a bad axis: AxisError; a non-integer axis:
    TypeError; backward with neither x nor y: TypeError; grad_output of another shape:
    ValueError (no broadcasting); unsupported dtypes: TypeError."""
    rng = np.random.default_rng(17)
    x = rng.standard_normal((3, 4))
    g = rng.standard_normal((3, 4))
    with pytest.raises(TypeError):
        fwd(func, x, axis=0, dim=1)
    with pytest.raises(TypeError, match="axis or dim"):     # None: the flat array, not dim 1
        fwd(func, x, axis=None, dim=1)
    with pytest.raises(TypeError, match="axis or dim"):
        getattr(fastact, CLASSES[func])(None, dim=1)
    with pytest.raises(TypeError):
        bwd(func, g, x, axis=0, dim=1)
    with pytest.raises(TypeError):
        fb(func, x, 0, dim=1)
    for axis in (2, -3, 10):
        with pytest.raises(np.exceptions.AxisError):
            fwd(func, x, axis=axis)
        with pytest.raises(np.exceptions.AxisError):
            bwd(func, g, x, axis=axis)
        with pytest.raises(np.exceptions.AxisError):
            bwd(func, g, y=x, axis=axis)
        with pytest.raises(np.exceptions.AxisError):
            fb(func, x, axis)
    with pytest.raises(np.exceptions.AxisError):
        fwd(func, x, dim=5)
    for axis in (1.0, "0", True, (0, 1)):
        with pytest.raises(TypeError):
            fwd(func, x, axis=axis)
    with pytest.raises(TypeError):
        bwd(func, g)
    with pytest.raises(TypeError):
        bwd(func, g, None, y=None)
    for bad in (g[:, :3], g[:1], g.reshape(4, 3), g[0]):
        with pytest.raises(ValueError):
            bwd(func, bad, x)
        with pytest.raises(ValueError):
            bwd(func, bad, y=x)
        with pytest.raises(ValueError):
            fb(func, x, -1, bad)
    for bad in (x.astype(np.complex128), x.astype(object), x.astype(str)):
        with pytest.raises(TypeError):
            fwd(func, bad)
    # the axis is the same axis whatever its spelling
    assert_bitwise(fwd(func, x, 0), fwd(func, x, dim=0), "dim")
    assert_bitwise(fwd(func, x, -2), fwd(func, x, axis=0), "negative axis")
    assert_bitwise(fwd(func, x, np.int64(1)), fwd(func, x), "numpy integer axis")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("func", FUNCS)
def test_backward_sources(backend, func, dtype):
    """y= wins over x when both are given; grad_output None in forward_backward is all
    ones; forward_backward's parts are the forward and the backward from x."""
    rng = np.random.default_rng(19)
    x = (rng.standard_normal((5, 40)) * 3).astype(dtype)
    g = rng.standard_normal((5, 40)).astype(dtype)
    y = fwd(func, x)
    other = np.zeros_like(x)                  # a different x: a different gradient
    from_y = bwd(func, g, y=y)
    assert_bitwise(bwd(func, g, other, y=y), from_y, "y wins")
    assert not np.allclose(bwd(func, g, other), from_y)
    y1, g1 = fb(func, x)
    ones = np.ones_like(x)
    assert_bitwise(y1, y, "fb y")
    assert_bitwise(g1, fb(func, x, -1, ones)[1], "fb default grad_output")
    assert_bitwise(g1, bwd(func, ones, x), "fb default grad vs backward")
    assert_bitwise(fb(func, x, -1, g)[1], bwd(func, g, x), "fb grad vs backward from x")
    # the gradient of sum(softmax) is 0 (of sum(log_softmax) is 1 - n softmax)
    if func != "log_softmax":
        assert np.all(np.abs(g1) <= 8 * U[np.dtype(dtype)])
