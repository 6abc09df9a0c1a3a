"""Exact references and ulp errors for float16 and bfloat16 (tests/test_half.py).

Every one of the 65536 bit patterns of each 16-bit type is an input. The exact values
come from tests/reference.py's mpmath definitions, called with the inputs widened to
float32 and dtype=float32 (the kernels compute a 16-bit input in float32, its parameters
rounded to float32), and for backward from y from the y-forms written here in mpmath.
They are computed once per (case, type) by a process pool over the cores and cached on
disk under $FASTACT_TEST_CACHE/half (default ~/.cache/fastact-tests/half, ~40 MB),
keyed by a hash of the case, the type and the reference code (reference.py, the
functions here that compute and store, the precision, mpmath's version); a missing or
stale entry is recomputed (all of them: about 4 CPU-minutes), written atomically
(a temporary file renamed), and older versions of it are deleted.

Errors are measured in ulps of the 16-bit type by the ordered bit patterns: every value
has an integer key (0 for both zeros, +-1 for the smallest subnormals, ..., +-(inf's
pattern) for the infinities), and an exact value has a fractional key, linear between
the keys of the two representable numbers around it. A result is within 1 ulp of the
exact value when its key is within 1 of that fractional key: the two neighbours of an
exact value between representable numbers, or a representable exact value and its two
neighbours. Past the largest finite number the exact value's key runs on linearly to
inf's key at 2^(emax+1), where rounding to nearest gives inf, and stays there: inf is
then right, and the largest finite number within 1 ulp.
"""
import functools
import hashlib
import inspect
import multiprocessing
import os
import re
import tempfile

import mpmath as mp
import numpy as np

import reference

TYPE_NAMES = ("float16", "bfloat16")


def np_type(name):
    """The NumPy scalar type of a 16-bit type name."""
    if name == "bfloat16":
        import ml_dtypes
        return ml_dtypes.bfloat16
    return np.float16


@functools.lru_cache(maxsize=None)
def _patterns(name):
    return np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.dtype(np_type(name)))


def patterns(name):
    """All 65536 bit patterns of the type, in bit order (a fresh, writable array)."""
    return _patterns(name).copy()


def bits(a):
    """The 16-bit patterns of a 16-bit array, as int64."""
    return np.ascontiguousarray(a).view(np.uint16).astype(np.int64)


@functools.lru_cache(maxsize=None)
def _type_info(name):
    """(inf's key, the positive values by key 0..inf's key with 2^(emax+1) standing for
    inf, the largest finite value)."""
    allp = _patterns(name).astype(np.float64)
    kinf = 0x7C00 if name == "float16" else 0x7F80
    pos = allp[:kinf + 1].copy()
    vmax = pos[kinf - 1]
    top = 2.0 ** (int(np.frexp(vmax)[1]))           # 2^(emax+1): where rounding gives inf
    assert np.isinf(pos[kinf]) and np.all(np.diff(pos[:kinf]) > 0)
    pos[kinf] = top
    return kinf, pos, vmax


def keys(a):
    """Ordered integer keys of a 16-bit array (float64; NaN for NaN)."""
    b = bits(a)
    mag = b & 0x7FFF
    k = np.where(b & 0x8000, -mag, mag).astype(np.float64)
    return np.where(np.isnan(np.asarray(a, np.float64)), np.nan, k)


def frac_key(hi, lo, name):
    """The fractional key of the exact values hi + lo (float64 double-doubles, hi carries
    the sign; +-inf for values beyond float64); NaN stays NaN."""
    kinf, pos, _ = _type_info(name)
    hi = np.asarray(hi, np.float64)
    lo = np.asarray(lo, np.float64)
    sign = np.where(np.signbit(hi), -1.0, 1.0)
    a = np.abs(hi)
    al = np.where(np.isfinite(lo), lo, 0.0) * sign
    with np.errstate(invalid="ignore", over="ignore"):
        k = np.searchsorted(pos, np.where(np.isnan(a), 0.0, a), side="right") - 1
        k = np.clip(k, 0, kinf)
        # a representable hi with a negative tail lies just below it
        down = (pos[k] == a) & (al < 0) & (k > 0)
        k = np.where(down, k - 1, k)
        nxt = pos[np.minimum(k + 1, kinf)]
        step = np.where(k < kinf, nxt - pos[k], 1.0)
        f = k + ((a - pos[k]) + al) / step
        f = np.where(k >= kinf, float(kinf), np.minimum(f, float(kinf)))
    return np.where(np.isnan(hi), np.nan, sign * f)


def key_value(fkey, name):
    """The value at a fractional key (for messages): linear between the neighbours."""
    kinf, pos, _ = _type_info(name)
    fkey = np.asarray(fkey, np.float64)
    a = np.abs(fkey)
    with np.errstate(invalid="ignore"):
        k = np.clip(np.floor(np.where(np.isnan(a), 0, a)), 0, kinf - 1).astype(np.int64)
        v = pos[k] + (a - k) * (pos[k + 1] - pos[k])
        v = np.where(a >= kinf, np.inf, v)
    return np.where(np.isnan(fkey), np.nan, np.where(fkey < 0, -v, v))


def ulp_error(computed, fkey):
    """|key(computed) - fkey|: the error of 16-bit results in ulps of the type; inf where
    one of them is NaN (a NaN expected where NaN is the answer is checked elsewhere)."""
    with np.errstate(invalid="ignore"):
        e = np.abs(keys(computed) - fkey)
    return np.where(np.isnan(e), np.inf, e)


def key_distance(a, b):
    """|key(a) - key(b)| for two 16-bit arrays; 0 where both are NaN, inf where one is."""
    ka, kb = keys(a), keys(b)
    both = np.isnan(ka) & np.isnan(kb)
    with np.errstate(invalid="ignore"):
        d = np.abs(ka - kb)
    return np.where(both, 0.0, np.where(np.isnan(d), np.inf, d))


def round_to(values, name):
    """float64 values rounded once to the 16-bit type (nearest even). NumPy's float64 ->
    float16 cast rounds once; ml_dtypes' float64 -> bfloat16 goes through float32 (a
    double rounding), so bfloat16 is rounded here from the bits."""
    v = np.asarray(values, np.float64)
    if name == "float16":
        with np.errstate(over="ignore"):
            return v.astype(np.float16)
    kinf, pos, vmax = _type_info(name)
    fk = frac_key(v, np.zeros_like(v), name)
    with np.errstate(invalid="ignore"):
        base = np.floor(np.abs(fk))
        rem = np.abs(fk) - base
        up = (rem > 0.5) | ((rem == 0.5) & (base % 2 == 1))
        mag = np.where(np.isnan(fk), 0x7FC0, np.minimum(base + up, kinf)).astype(np.int64)
    out = (mag | np.where(np.signbit(v), 0x8000, 0)).astype(np.uint16)
    return out.view(np.dtype(np_type(name)))


# ---- the grad_output grid ----

def g_grid(name):
    """grad_output values: 1, -0.75, the smallest normal, a large value, subnormals,
    others; 7 of them (odd: cycled over the bit patterns, each meets every binade)."""
    if name == "float16":
        values = [1.0, -0.75, 2.0 ** -14, -24576.0, 2.0 ** -24, -3 * 2.0 ** -20, 0.3]
    else:
        values = [1.0, -0.75, 2.0 ** -126, -1.5 * 2.0 ** 100, 2.0 ** -133, -3 * 2.0 ** -131,
                  0.3]
    return np.array(values, np.float64).astype(np_type(name))


def grad_outputs(name, shift):
    """The grid cycled over the 65536 inputs, starting at position shift."""
    g = g_grid(name)
    return g[(np.arange(65536) + shift) % g.size]


# ---- backward from y: f'(x) written in y, as the kernels' y-forms (fastact's table
# KERNELS[...].y_form, fastact._numpy_backend *_dy) define it, with the parameters
# rounded to float32 ----

def y_form_params(name, params):
    """(formula, its float32-rounded parameters) of the y-form of an activation."""
    f32 = lambda v: float(np.float32(v))            # noqa: E731
    if name in ("sigmoid", "tanh", "linear", "relu", "exponential"):
        return name, ()
    if name == "leaky_relu":
        return "leaky_relu", (f32(params.get("negative_slope", 0.01)),)
    if name == "elu":                       # alpha, scale, div
        return "elu", (f32(params.get("alpha", 1.0)), 1.0, 1.0)
    if name == "celu":
        a = f32(params.get("alpha", 1.0))
        return "elu", (a, 1.0, a)
    if name == "selu":
        return "elu", (f32(reference.SELU_ALPHA * reference.SELU_SCALE),
                       f32(reference.SELU_SCALE), 1.0)
    if name == "hardtanh":
        return "hardtanh", (f32(params.get("min_val", -1.0)), f32(params.get("max_val", 1.0)))
    if name == "relu6":
        return "hardtanh", (0.0, 6.0)
    raise KeyError(name)


def exact_dy(formula, p, y):
    """f'(x) in terms of y = f(x) (an mpf, possibly +-inf), at the float32 parameters."""
    if formula == "sigmoid":
        return y * (1 - y)
    if formula == "tanh":
        return (1 - y) * (1 + y)
    if formula == "linear":
        return mp.mpf(1)
    if formula == "relu":
        return mp.mpf(0 if y <= 0 else 1)
    if formula == "leaky_relu":
        return mp.mpf(1) if y > 0 else mp.mpf(p[0])
    if formula == "elu":
        alpha, scale, div = (mp.mpf(v) for v in p)
        return (y + alpha) / div if y <= 0 else scale
    if formula == "hardtanh":
        return mp.mpf(0 if (y <= p[0] or y >= p[1]) else 1)
    if formula == "exponential":
        return y
    raise KeyError(formula)


# ---- the cache ----

CHUNK = 4096
# mpmath's working precision for the references: 80 bits, 69 more than float16's
# significand; the formulas' worst cancellations (x - tanh x from 1e-4, f' near its zero
# crossings at the nearest 16-bit x) cost under 30 of them, so every exact value is
# known to far better than the 2^-11 of an ulp that deciding "within 1 ulp" needs
PREC = 80


def _split(v):
    if mp.isinf(v):
        return (float("inf") if v > 0 else float("-inf")), 0.0
    return reference._split(v)


def compute_chunk(task):
    """Reference rows of one chunk of bit patterns: (key, start, array (6, n)); f and f'
    at the finite inputs, the y-form at every non-NaN pattern taken as y; NaN elsewhere."""
    key, name, params, type_name, start, formula = task
    xs = _patterns(type_name)[start:start + CHUNK].astype(np.float32)
    out = np.full((6, xs.size), np.nan)
    with mp.workprec(PREC):
        _fill(out, xs, name, params, formula)
    return key, start, out


def _fill(out, xs, name, params, formula):
    inf = float("inf")
    for i, xv in enumerate(xs.astype(np.float64).tolist()):
        if xv != xv:                            # NaN: no reference
            continue
        x = mp.mpf(xv)
        if -inf < xv < inf:
            y, d = reference.exact(name, x, params, np.float32)
            out[0, i], out[1, i] = reference._split(y)
            out[2, i], out[3, i] = reference._split(d)
        if formula is not None:
            yv = x if -inf < xv < inf else (mp.inf if xv > 0 else -mp.inf)
            out[4, i], out[5, i] = _split(exact_dy(formula[0], formula[1], yv))


@functools.lru_cache(maxsize=None)
def _code_version():
    """A hash of everything the cached values depend on: the reference code, the
    precision, the stored form, mpmath's version."""
    funcs = (exact_dy, y_form_params, compute_chunk, _fill, _split, _finish, frac_key,
             _type_info)
    parts = [inspect.getsource(reference)] + [inspect.getsource(f) for f in funcs] + [
        str(PREC), str(CHUNK), mp.__version__]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def cache_dir():
    base = os.environ.get("FASTACT_TEST_CACHE",
                          os.path.join(os.path.expanduser("~"), ".cache", "fastact-tests"))
    return os.path.join(base, "half")


def cache_path(case, type_name, formula):
    name, params = case
    desc = repr((name, sorted(params.items()), type_name, formula, _code_version()))
    h = hashlib.sha256(desc.encode()).hexdigest()[:20]
    label = name + "".join(f"-{k}={v}" for k, v in sorted(params.items()))
    return os.path.join(cache_dir(), f"{label}-{type_name}-{h}.npz")


def _save(path, arrays):
    """np.savez_compressed to a temporary file in the cache directory, then renamed:
    readers see a complete file or none."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _finish(rows, type_name, formula):
    """The stored form of a case's rows: f as its fractional key, f' as a double-double
    (backward multiplies it by grad_output), the y-form likewise where there is one."""
    out = {"fy": frac_key(rows[0], rows[1], type_name), "d_hi": rows[2], "d_lo": rows[3]}
    if formula is not None:
        out.update(dy_hi=rows[4], dy_lo=rows[5])
    return out


def _workers():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def ensure(jobs):
    """Compute and cache the references of jobs [(case, type_name, formula)] that are
    not cached yet, over a process pool; returns how many were computed."""
    missing = {}
    for case, type_name, formula in jobs:
        path = cache_path(case, type_name, formula)
        if path not in missing and not os.path.exists(path):
            missing[path] = (case, type_name, formula)
    if not missing:
        return 0
    tasks = [(path, case[0], case[1], type_name, start, formula)
             for path, (case, type_name, formula) in missing.items()
             for start in range(0, 65536, CHUNK)]
    # the heavy functions first, so that the pool's tail is short
    heavy = ("gelu", "softplus", "mish", "logsigmoid", "tanhshrink")
    tasks.sort(key=lambda t: t[1] not in heavy)
    parts = {path: np.empty((6, 65536)) for path in missing}
    left = {path: 65536 // CHUNK for path in missing}
    # spawn: the parent has fastact's OpenMP runtime and torch loaded, which fork copies
    ctx = multiprocessing.get_context("spawn")
    workers = min(_workers(), len(tasks))
    with ctx.Pool(workers) as pool:
        for path, start, rows in pool.imap_unordered(compute_chunk, tasks, chunksize=1):
            parts[path][:, start:start + CHUNK] = rows
            left[path] -= 1
            if left[path] == 0:
                _, type_name, formula = missing[path]
                _save(path, _finish(parts.pop(path), type_name, formula))
                _remove_stale(path)
    return len(missing)


def _remove_stale(path):
    """Delete the same case's entries of other reference versions."""
    folder, base = os.path.split(path)
    stem = base[:-len("-0123456789abcdef0123.npz")]
    for other in os.listdir(folder):
        if (other != base and other.startswith(stem + "-") and other.endswith(".npz")
                and re.fullmatch(r"[0-9a-f]{20}\.npz", other[len(stem) + 1:])):
            try:
                os.unlink(os.path.join(folder, other))
            except OSError:
                pass


@functools.lru_cache(maxsize=4)
def load(case_key, type_name, formula):
    """The cached reference of a case over the 65536 patterns: 'fy' and 'fd' (the
    fractional keys of f and f'), 'd_hi', 'd_lo' (f'), 'dy_hi', 'dy_lo' (the y-form);
    NaN where not defined (non-finite x, NaN y)."""
    case = (case_key[0], dict(case_key[1]))
    path = cache_path(case, type_name, formula)
    if not os.path.exists(path):
        ensure([(case, type_name, formula)])
    with np.load(path) as f:
        out = {k: f[k] for k in f.files}
    out["fd"] = frac_key(out["d_hi"], out["d_lo"], type_name)
    return out


def limits(name, params, sign):
    """(f, f') at x = sign * inf: mpmath at +-1e400, and the signs of f and f' just
    before the limit (for the sign of a zero limit)."""
    y, d = reference.exact(name, mp.mpf(sign + "1e400"), params, np.float32)
    ny, nd = reference.exact(name, mp.mpf(sign + "1e30"), params, np.float32)
    return float(y), float(d), (ny < 0 if ny != 0 else None), (nd < 0 if nd != 0 else None)
