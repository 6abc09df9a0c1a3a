"""High-precision references for every activation (mpmath), sweeps, and ULP errors.

The references are the mathematical definitions evaluated in 50 digits, independent of
fastact's formulas; the piecewise choices (kinks, softplus's threshold) follow PyTorch's
conditions evaluated in the input's precision (docs/contract.md, Values).
"""
import functools
import hashlib
import os

import mpmath as mp
import numpy as np

mp.mp.dps = 50

SELU_ALPHA = mp.mpf("1.6732632423543772848170429916717")
SELU_SCALE = mp.mpf("1.0507009873554804934193349852946")
SQRT_2_OVER_PI = mp.sqrt(2 / mp.pi)


def _sigmoid(x):
    return 1 / (1 + mp.exp(-x))


def _dsigmoid(x):
    e = mp.exp(-abs(x))
    return e / (1 + e) ** 2


def _tanhshrink(x):
    if abs(x) < mp.mpf("1e-4"):           # the cancellation would eat all digits
        x2 = x * x
        return x * x2 * (mp.mpf(1) / 3 - x2 * (mp.mpf(2) / 15 - x2 * mp.mpf(17) / 315))
    return x - mp.tanh(x)


def _softplus(x, beta, threshold, dtype):
    with np.errstate(over="ignore"):
        linear = dtype(x) * dtype(beta) > dtype(threshold)    # PyTorch's test, input precision
    if linear:
        return x, mp.mpf(1)
    z = beta * x
    return mp.log1p(mp.exp(z)) / beta, _sigmoid(z)


def _elu(x, neg, pos, div):
    """x > 0: pos x; else neg expm1(x / div); and the derivative."""
    if x > 0:
        return pos * x, pos
    return neg * mp.expm1(x / div), neg / div * mp.exp(x / div)


def _gelu_tanh(x):
    u = SQRT_2_OVER_PI * (x + mp.mpf("0.044715") * x ** 3)
    du = SQRT_2_OVER_PI * (1 + 3 * mp.mpf("0.044715") * x ** 2)
    half_1p_tanh = _sigmoid(2 * u)                  # (1 + tanh u) / 2 without cancellation
    return x * half_1p_tanh, half_1p_tanh + x * du / (2 * mp.cosh(u) ** 2)


def _mish(x):
    sp = mp.log1p(mp.exp(x))
    return x * mp.tanh(sp), mp.tanh(sp) + x * _sigmoid(x) / mp.cosh(sp) ** 2


def exact(name, x, params, dtype):
    """(f(x), f'(x)) as mpf for a finite float x. Numeric parameters are first rounded to
    the input's dtype, as fastact and PyTorch do (the kernels compute in that dtype)."""
    p = {k: (float(dtype(v)) if isinstance(v, float) else v) for k, v in params.items()}
    if name == "sigmoid":
        return _sigmoid(x), _dsigmoid(x)
    if name == "tanh":
        return mp.tanh(x), 1 / mp.cosh(x) ** 2
    if name == "linear":
        return x, mp.mpf(1)
    if name == "relu":
        return (x if x > 0 else mp.mpf(0)), mp.mpf(1 if x > 0 else 0)
    if name == "leaky_relu":
        s = mp.mpf(p.get("negative_slope", 0.01))
        return (x if x > 0 else s * x), (mp.mpf(1) if x > 0 else s)
    if name == "elu":
        a = mp.mpf(p.get("alpha", 1.0))
        return _elu(x, a, 1, 1)
    if name == "selu":
        return _elu(x, SELU_SCALE * SELU_ALPHA, SELU_SCALE, 1)
    if name == "celu":
        a = mp.mpf(p.get("alpha", 1.0))
        return _elu(x, a, 1, a)
    if name == "gelu":
        if p.get("approximate", "none") == "tanh":
            return _gelu_tanh(x)
        cdf = mp.erfc(-x / mp.sqrt(2)) / 2
        return x * cdf, cdf + x * mp.npdf(x)
    if name in ("silu", "swish", "quick_gelu"):
        beta = {"silu": 1.0, "quick_gelu": 1.702}.get(name, p.get("beta", 1.0))
        z = mp.mpf(float(dtype(beta))) * x
        s = _sigmoid(z)
        return x * s, s * (1 + z * (1 - s))
    if name == "softplus":
        return _softplus(x, mp.mpf(p.get("beta", 1.0)), mp.mpf(p.get("threshold", 20.0)), dtype)
    if name == "mish":
        return _mish(x)
    if name in ("hardtanh", "relu6"):
        lo, hi = (0, 6) if name == "relu6" else (p.get("min_val", -1.0), p.get("max_val", 1.0))
        lo, hi = mp.mpf(float(dtype(lo))), mp.mpf(float(dtype(hi)))
        return min(max(x, lo), hi), mp.mpf(0 if x <= lo or x >= hi else 1)
    if name == "sparse_sigmoid":
        return min(max((x + 1) / 2, 0), 1), (mp.mpf(1) / 2 if -1 < x < 1 else mp.mpf(0))
    if name == "sparse_plus":
        if x <= -1:
            return mp.mpf(0), mp.mpf(0)
        return ((x, mp.mpf(1)) if x >= 1 else ((x + 1) ** 2 / 4, (x + 1) / 2))
    if name == "squareplus":
        b = mp.mpf(float(dtype(p.get("b", 4.0))))
        s = mp.sqrt(x * x + b)
        if x >= 0:
            return (x + s) / 2, (1 + x / s) / 2
        h = b / (s - x)                     # s + x without the cancellation
        return h / 2, h / (2 * s)
    if name == "exponential":
        return mp.exp(x), mp.exp(x)
    if name == "clipped_relu":
        slope, thr = mp.mpf(float(dtype(p.get("negative_slope", 0.0)))), \
            mp.mpf(float(dtype(p.get("threshold", 0.0))))
        cap = p.get("max_value")
        cap = mp.inf if cap is None else mp.mpf(float(dtype(cap)))
        if x <= thr:
            return slope * (x - thr), slope
        return min(x, cap), mp.mpf(1 if x < cap else 0)
    if name == "hardsigmoid":
        return min(max(x + 3, 0), 6) / 6, (mp.mpf(1) / 6 if -3 < x < 3 else mp.mpf(0))
    if name == "hardswish":
        d = mp.mpf(0) if x <= -3 else ((2 * x + 3) / 6 if x < 3 else mp.mpf(1))
        return x * min(max(x + 3, 0), 6) / 6, d
    if name == "softsign":
        return x / (1 + abs(x)), 1 / (1 + abs(x)) ** 2
    if name == "logsigmoid":
        return -mp.log1p(mp.exp(-x)), _sigmoid(-x)
    if name == "tanhshrink":
        return _tanhshrink(x), mp.tanh(x) ** 2
    if name == "softshrink":
        lam = mp.mpf(float(dtype(p.get("lambd", 0.5))))
        y = x - lam if x > lam else (x + lam if x < -lam else mp.mpf(0))
        return y, mp.mpf(0 if -lam <= x <= lam else 1)
    if name == "hardshrink":
        lam = mp.mpf(float(dtype(p.get("lambd", 0.5))))
        inside = -lam <= x <= lam
        return (mp.mpf(0) if inside else x), mp.mpf(0 if inside else 1)
    if name == "threshold":
        th, v = mp.mpf(float(dtype(p["threshold"]))), mp.mpf(p["value"])
        return (v if x <= th else x), mp.mpf(0 if x <= th else 1)
    raise KeyError(name)


def _split(v):
    """mpf -> (hi, lo) float64 with hi + lo = v to ~106 bits; inf beyond float64."""
    hi = float(v)
    if not np.isfinite(hi):
        return hi, 0.0
    return hi, float(v - hi)


# FASTACT_REFERENCE_CACHE=DIR keeps the references on disk as well, keyed by this
# file's text, mpmath's version and the arguments: a second run of the suite (CI's clang
# suite, after the main one) reads them instead of recomputing (~3 minutes of mpmath)
_CACHE = os.environ.get("FASTACT_REFERENCE_CACHE")
with open(__file__, "rb") as _f:
    _SOURCE = _f.read() + mp.__version__.encode()


@functools.lru_cache(maxsize=None)
def _reference_cached(name, params_key, dtype_name, xs_bytes):
    path = None
    if _CACHE:
        key = hashlib.sha256(_SOURCE + repr((name, params_key, dtype_name)).encode()
                             + xs_bytes).hexdigest()
        path = os.path.join(_CACHE, key + ".npy")
        if os.path.exists(path):
            return np.load(path)
    dtype = np.dtype(dtype_name).type
    xs = np.frombuffer(xs_bytes, dtype=dtype_name)
    params = dict(params_key)
    out = np.empty((4, xs.size))
    for i, xv in enumerate(xs):
        y, d = exact(name, mp.mpf(float(xv)), params, dtype)
        out[0, i], out[1, i] = _split(y)
        out[2, i], out[3, i] = _split(d)
    if path:
        os.makedirs(_CACHE, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            np.save(f, out)
        os.replace(tmp, path)                  # whole or absent, for a concurrent reader
    return out


def reference(name, xs, params, dtype):
    """Exact (f, f') at xs as double-doubles: array (y_hi, y_lo, d_hi, d_lo)."""
    xs = np.ascontiguousarray(xs, dtype=dtype)
    return _reference_cached(name, tuple(sorted(params.items())), np.dtype(dtype).name,
                             xs.tobytes())


def ulp_error(computed, hi, lo, dtype, x=None, crossing=None, scale=1.0):
    """Error of computed against hi + lo in ulps of the exact value's binade.

    Below the smallest normal number, any result that is also below it counts as
    exact (results there may be flushed); for a backward g * f'(x), pass scale=g: where
    f'(x) is below it, g * f'(x) may carry the flush (|error| <= |g| * tiny). Near a zero
    crossing (|x - crossing| < 0.5) the error is the smaller of that and the absolute
    error in machine epsilons."""
    info = np.finfo(dtype)
    c = np.asarray(computed, dtype=np.float64)
    exact_abs = np.abs(hi)
    _, e = np.frexp(np.maximum(exact_abs, float(info.tiny)))
    ulp = np.ldexp(float(info.eps), e - 1)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs((c - hi) - lo) / ulp
        # past the largest finite number the exact value rounds to inf
        overflow = np.abs(hi) >= float(info.max) * (1 + float(info.eps) / 4)
        both_inf = np.isinf(c) & (np.isinf(hi) | overflow) & (np.sign(c) == np.sign(hi))
        err = np.where(both_inf, 0.0, err)
        scale = np.abs(np.asarray(scale, np.float64))
        tiny = (exact_abs < float(info.tiny) * scale) & (np.abs(c) < float(info.tiny) * scale)
        err = np.where(tiny, 0.0, err)
        if crossing is not None and x is not None:    # 4 eps absolute for f', |g| times that for g f'
            near = np.abs(np.asarray(x, np.float64) - crossing) < 0.5
            err = np.where(near, np.minimum(err, np.abs((c - hi) - lo) / (float(info.eps) * scale)),
                           err)
    return np.where(np.isnan(err), np.inf, err)


def worst_grad_output(d_hi, dtype, rng=None):
    """The grad_output g that is worst for a backward g f'(x): g f' with a significand near
    2, where an error of f' relative to its own value counts up to twice in ulps of the
    product; with rng, of random sign and magnitude 2^-40..2^40."""
    mant, _ = np.frexp(np.abs(d_hi))
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.where(mant > 0, 0.99999 / mant, 1.0)
    g = np.where(np.isfinite(g), g, 1.0)
    if rng is not None:
        g = g * np.where(rng.random(g.size) < 0.5, -1.0, 1.0) * 2.0 ** rng.integers(-40, 41, g.size)
    return g.astype(dtype)


def dd_mul(g, hi, lo):
    """g * (hi + lo) as a double-double (Dekker's exact product of g and hi)."""
    g = np.asarray(g, np.float64)
    split = 134217729.0
    with np.errstate(invalid="ignore", over="ignore"):
        p = g * hi                          # may overflow (exponential's tail): inf
        c = split * g
        gh = c - (c - g)
        gl = g - gh
        c = split * hi
        hh = c - (c - hi)
        hl = hi - hh
        err = ((gh * hh - p) + gh * hl + gl * hh) + gl * hl
    err = np.where(np.isfinite(err), err, 0.0)
    return p, err + g * lo


# FASTACT_ACCURACY_DENSITY=10 makes every sweep 10 times denser (the table of docs/accuracy.md).
DENSITY = int(os.environ.get("FASTACT_ACCURACY_DENSITY", "1"))


def sweep(dtype, kinks=(), seed=0, per_binade=2, linear=2001):
    """Points over the whole finite range: a few per binade from the smallest normal to
    the largest finite number (both signs), a linear sweep over where the tails are, a
    dense one near 0, and each kink with its neighbours."""
    per_binade, linear = per_binade * DENSITY, linear * DENSITY
    dtype = np.dtype(dtype)
    info = np.finfo(dtype)
    rng = np.random.default_rng(seed)
    exps = np.arange(info.minexp, info.maxexp)
    mant = rng.uniform(1, 2, size=(exps.size, per_binade))
    mags = np.ldexp(mant, exps[:, None]).ravel()
    mags = mags[np.isfinite(mags.astype(dtype))]
    tail = 110.0 if dtype == np.float32 else 800.0
    parts = [mags, -mags, np.linspace(-tail, tail, linear), np.linspace(-10, 10, linear),
             np.array([info.max, -info.max, info.tiny, -info.tiny])]
    for k in kinks:
        k = dtype.type(k)
        near = [k]
        lo = hi = k
        for _ in range(3):
            lo, hi = np.nextafter(lo, dtype.type(-np.inf)), np.nextafter(hi, dtype.type(np.inf))
            near += [lo, hi]
        parts.append(np.array(near, dtype=np.float64))
    xs = np.concatenate(parts).astype(dtype)
    return np.unique(xs[np.isfinite(xs)])
