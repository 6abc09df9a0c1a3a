"""The pure-NumPy backend: every kernel's value and derivative with NumPy operations.

Used when the compiled extension is missing or FASTACT_BACKEND=numpy, and as the
"slow" twin the compiled kernels are tested against. Each kernel is a function
``name(x, p, dtype) -> (f(x), f'(x))`` on float64 arrays, p the kernel's parameters by
name (``p.alpha``: the names of the table and of the C functions; float32 inputs are
computed in float64 with the parameters rounded to float32, so kinks fall where the
float32 kernels put them); those whose derivative can be written in y also have
``name_dy(y, p)``.
Accuracy comes from NumPy's own exp/expm1/log1p/tanh, the float64 polynomial cores the
compiled kernels use where NumPy has no function (erf, erfc, x - tanh x: fastact._coeffs),
exact products (Dekker) where an argument's rounding would be amplified, and ldexp
scaling where e^x is subnormal while the result is not.
"""
import collections

import numpy as np

from . import _coeffs as K
from ._activations import (ENTRIES, GATED_ENTRIES, GATED_KERNELS, KERNEL_INDEX, KERNELS,
                           PRELU_ENTRIES, SOFTMAX_OPS, SOFTMAX_TABLE, rounding_error)

_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10
_SQRT1_2 = 0.70710678118654752440


def _two_prod(a, b):
    """a * b = p + e exactly (Dekker); operands beyond 2^996 are scaled by 2^-64 for
    the split (which would overflow) and the error scaled back."""
    p = a * b
    with np.errstate(all="ignore"):
        sa = np.where(np.abs(a) > 2.0 ** 996, 2.0 ** -64, 1.0)
        sb = np.where(np.abs(b) > 2.0 ** 996, 2.0 ** -64, 1.0)
        a, b = a * sa, b * sb
        ps = a * b
        c = 134217729.0 * a
        ah = c - (c - a)
        al = a - ah
        c = 134217729.0 * b
        bh = c - (c - b)
        bl = b - bh
        return p, (((ah * bh - ps) + ah * bl + al * bh) + al * bl) / (sa * sb)


def _fma(a, b, c):
    """a * b + c with the product exact (two roundings of the sums, no FMA in NumPy)."""
    with np.errstate(all="ignore"):
        big = np.abs(a * b) > 1e300
        p, e = _two_prod(np.where(big, 1.0, a), np.where(big, 1.0, b))
        return np.where(big, a * b + c, (p + c) + e)


def _mul_div(a, b, c):
    """a * b / c with the product exact and the division's remainder taken exactly."""
    p, pl = _two_prod(a, b)
    q = p / c
    r, rl = _two_prod(q, c)
    return _where(q == 0, q, q + (((p - r) - rl) + pl) / c)   # keep the sign of 0


def _sq1p(e):
    """(1 + e)^2 without rounding 1 + e first."""
    return _fma(e, 2 + e, 1.0)


def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _exp_split(t, dt=0.0):
    """e^(t + dt) = m * 2^k with m in [0.7, 1.42] (dt a small correction of t): (m, k);
    scale back with np.ldexp."""
    t = np.clip(t, -1500.0, 1500.0)          # c m 2^k is exact for any factor c
    k = np.rint(t * 1.4426950408889634)
    k = np.where(np.isnan(k), 0.0, k)
    m = np.exp((t - k * _LN2_HI) - (k * _LN2_LO - dt))
    return m, k.astype(np.int64)


def _horner(coeffs, x):
    acc = np.full_like(x, coeffs[-1])
    for c in reversed(coeffs[:-1]):
        acc = acc * x + c
    return acc


def _div_dw(nh, nl, dh, dl):
    """(nh + nl) / (dh + dl), rounded once up to ~2^-106."""
    q = nh / dh
    r, rl = _two_prod(q, dh)
    return _where(q == 0, q, q + ((((nh - r) - rl) + nl) - q * dl) / dh)


def _where(cond, a, b):
    return np.where(cond, a, b)


def _nan(d, x):
    """d, with NaN where x is NaN (the derivative of a NaN input is NaN)."""
    return _where(np.isnan(x), x, d)


# ---- the kernels: (x float64 array, p params, dtype) -> (y, d) ----

def sigmoid(x, p, dtype):
    e = np.exp(-np.abs(x))
    den = 1 + e
    return _where(x >= 0, 1 / den, e / den), e / _sq1p(e)


def sigmoid_dy(y, p):
    return y * (1 - y)


def tanh(x, p, dtype):
    y = np.tanh(x)
    m, k = _exp_split(-2 * np.abs(x))                         # u = e^-2|x| = m 2^k
    u = np.ldexp(m, k)
    return y, _where(np.abs(x) < 0.5, (1 - y) * (1 + y), np.ldexp(4 * m / _sq1p(u), k))


def tanh_dy(y, p):
    return (1 - y) * (1 + y)


def linear(x, p, dtype):
    return x.copy(), np.ones_like(x)


def linear_dy(y, p):
    return np.ones_like(y)


def relu(x, p, dtype):
    return _where(x < 0, 0.0, x), _nan(_where(x <= 0, 0.0, 1.0), x)


def relu_dy(y, p):
    return _nan(_where(y <= 0, 0.0, 1.0), y)


def leaky_relu(x, p, dtype):
    s = p.negative_slope
    neg = _where((s == 0) & (x == -np.inf), -0.0, x * s)
    return _where(x > 0, x, neg), _nan(_where(x > 0, 1.0, s), x)


def leaky_relu_dy(y, p):
    return _nan(_where(y > 0, 1.0, p.negative_slope), y)


def elu(x, p, dtype):
    """As fa_activations_impl.h: q + ql = x / div, e^(q + ql) over the whole range,
    x neg / div where q is too small to hold its own digits."""
    neg, pos, div, dcoef = p.alpha, p.scale, p.div, p.alpha_div
    q = x / div
    # x near the subnormal range: the residual from x and div scaled up by 2^128 (q div's
    # rounding error is not representable there); a subnormal neg scaled before neg m
    sx = _where((np.abs(x) < 2.0 ** -900) & (np.abs(div) < 2.0 ** 800), 2.0 ** 128, 1.0)
    ph, pl = _two_prod(q, div * sx)
    ql = _where(np.abs(q) < 1024, ((x * sx - ph) - pl) / (div * sx), 0.0)
    m, k = _exp_split(q, ql)                                  # e^(q + ql) = m 2^k
    e = np.ldexp(m, k)
    em1 = np.expm1(np.minimum(q, 40.0)) + ql * e
    up = 128 if abs(neg) < 2.0 ** -900 else 0
    y_neg = _where(q > 40, np.ldexp((neg * 2.0 ** up) * m, k - up),
                   _where(np.abs(q) < 2.0 ** -60, x * (neg / div), neg * em1))
    d_pos = _where(x > 0, pos, x)                             # NaN stays NaN
    # f' <= |dcoef| on x <= 0, m up to sqrt2: halved first (dcoef m overflowed near the
    # max), the 2 put back into one rounding
    d_neg = np.ldexp(dcoef * (0.5 * m), k + 1)
    if np.isinf(dcoef):         # an infinite alpha: inf e^x, NaN where the kernels' e^x
        # is 0 (k at their clamp, 2^(k + 1)'s lower half 0)
        k_zero = -254 if dtype.itemsize == 4 else -2046
        d_neg = _where(k <= k_zero, np.nan, dcoef)
    return _where(x < 0, y_neg, x * pos), _where(x <= 0, d_neg, d_pos)


def elu_dy(y, p):
    return _nan(_where(y <= 0, (y + p.alpha) / p.div, p.scale), y)


def gelu(x, p, dtype):
    """As fa_activations_impl.h: erf's series near 0, e^(-x^2/2) erfcx beyond."""
    a = np.minimum(np.abs(x), 39.0)
    sq, sq_err = _two_prod(a, a)
    m, k = _exp_split(-0.5 * sq, -0.5 * sq_err)              # e^(-x^2/2) = m 2^k
    z = a * _SQRT1_2
    # |x| <= 1/sqrt2
    cdf = 0.5 * (1 + np.copysign(z * _horner(K.ERF, z * z), x))
    y_small, d_small = x * cdf, _fma(x, np.ldexp(m, k) * K.INV_SQRT_2PI_HI, cdf)
    # beyond: r = e^(a^2/2) Phi(-a) = s / (2 (1 + sqrt2 a)), s = (1 + 2z) erfcx(z)
    t = (z - K.ERFC_K) / (z + K.ERFC_K)
    rest = _horner(K.ERFC[1:], t)
    s = _fma(t, rest, K.ERFC[0])
    s_lo = _fma(t, rest, K.ERFC[0] - s)
    q, q_lo = _two_prod(a, K.SQRT2_HI)
    dh, dl = _two_sum(1.0, q)
    dh, dl = 2 * dh, 2 * (dl + q_lo + a * K.SQRT2_LO)
    r = _div_dw(s, s_lo, dh, dl)
    c, c_lo = _two_prod(a, K.INV_SQRT_2PI_HI)
    b = (r - c) - (c_lo + a * K.INV_SQRT_2PI_LO)
    n, n_lo = _two_prod(a * m, s)
    y_neg = _div_dw(n, n_lo + a * m * s_lo, dh, dl)
    y_big = _where(x < 0, -np.ldexp(y_neg, k), x - a * np.ldexp(m * r, k))
    d_big = _where(x < 0, np.ldexp(m * b, k), 1 - np.ldexp(m, k) * b)
    small = a <= _SQRT1_2
    return _where(small, y_small, y_big), _where(small, d_small, d_big)


def gelu_tanh(x, p, dtype):
    xc = np.clip(x, -23.0, 23.0)
    sq, sq_err = _two_prod(xc, xc)
    bp, bp_err = _two_prod(np.full_like(xc, K.GELU_B_HI), sq)
    t, t_err = _two_sum(np.full_like(xc, K.GELU_A_HI), bp)
    t_lo = t_err + bp_err + K.GELU_B_HI * sq_err + K.GELU_B_LO * sq + K.GELU_A_LO
    v, v_err = _two_prod(xc, t)
    v_lo = v_err + xc * t_lo                                  # v + v_lo = 2u
    m, k = _exp_split(-np.abs(v), _where(v >= 0, -v_lo, v_lo))   # e^-|2u| = m 2^k
    e = np.ldexp(m, k)
    den = 1 + e
    t3, t3_lo = _two_prod(np.full_like(t, 3.0), t)
    dv, dv_s = _two_sum(t3, np.full_like(t, -2 * K.GELU_A_HI))     # v' = 3t - 2A
    dv_lo = dv_s + t3_lo + 3 * t_lo - 2 * K.GELU_A_LO
    xd, xd_err = _two_prod(xc, dv)
    n, n_err = _two_sum(den, xd)
    num = n + (n_err + xd_err + xc * dv_lo)                   # 1 + e + x v', exactly
    y = _where(v >= 0, x / den, np.ldexp(xc * m / den, k))
    d = _where(v >= 0, _fma(xc * e, dv, den) / _sq1p(e),
               np.ldexp(_mul_div(m, num, _sq1p(e)), k))
    return y, d


def silu(x, p, dtype):
    """silu and swish: z = beta x exact as z + zl (fa_activations_impl.h)."""
    beta = p.beta
    z, zl = _two_prod(x, beta)
    z = _where(beta == 0, _where(np.isnan(x), x, 0.0), z)     # beta = 0: x / 2
    zl = _where((np.abs(z) < 1024) & (beta != 0), zl, 0.0)
    m, k = _exp_split(-np.abs(z), _where(z >= 0, -zl, zl))
    e = np.ldexp(m, k)
    den = 1 + e
    zc = np.clip(z, -1100.0, 1100.0)
    xc = np.clip(x, -np.finfo(np.float64).max, np.finfo(np.float64).max)
    k1 = k // 2                                         # x may be huge when beta is tiny
    y = _where(z >= 0, x / den, np.ldexp(np.ldexp(xc, k1) * (m / den), k - k1))
    # f' = (1 + e + z e) / (1 + e)^2 (z >= 0), m (1 + z + e) / (1 + e)^2 2^k below, as
    # double-words divided once (g f' rounds f' twice: its error before rounding must
    # be small; the kernels' budget is docs/accuracy.md's)
    with np.errstate(all="ignore"):
        h, hl = _two_sum(1.0, zc)
        a, al = _two_prod(e, h)
        ph, pl = _two_sum(1.0, a)                          # z >= 0: 1 + e (1 + z)
        pl = pl + al + e * hl
        nh, nl = _two_sum(h, e)                            # z < 0: m (1 + z + e)
        mh, ml = _two_prod(m, nh)
        ml = ml + m * (nl + hl + zl)
        dh, dl = _two_sum(1.0, e)
        d2, d2l = _two_prod(dh, dh)
        d2l = d2l + 2 * dh * dl
        d = _where(z >= 0, _div_dw(ph, pl, d2, d2l),
                   np.ldexp(_div_dw(mh, ml, d2, d2l), k))
    return y, d


def softplus(x, p, dtype):
    beta, threshold = p.beta, p.threshold
    z, z_err = _two_prod(x, beta)
    z_err = _where(np.abs(z) < 1024, z_err, 0.0)
    # PyTorch's test beta * x > threshold, in the input's precision
    linear_part = (x.astype(dtype) * dtype.type(beta)) > dtype.type(threshold)
    m, k = _exp_split(-np.abs(z), _where(z >= 0, -z_err, z_err))  # e^-|z| = m 2^k
    e = np.ldexp(m, k)
    lg = np.log1p(e)
    # np.float64: a beta that rounded to 0 in float32 gives PyTorch's inf, not ZeroDivisionError
    pos = _where(z < np.inf, (z + (z_err + lg)) / beta, x)    # z = inf: beta x overflowed
    # the tail e^z / beta (z = -inf: 0 / beta, its limit, also where 1 / beta overflows)
    tail = _where(z > -np.inf, np.ldexp(m * (np.float64(1) / beta), k), np.float64(0) / beta)
    sp = _where(z >= 0, pos, _where(z < -40, tail, lg / beta))
    d = _where(z >= 0, 1 / (1 + e), e / (1 + e))
    return _where(linear_part, x, sp), _where(linear_part, 1.0, d)


def mish(x, p, dtype):
    m, k = _exp_split(-np.abs(x))
    e = np.ldexp(m, k)
    xc = np.clip(x, -1100.0, 1100.0)
    num = 1 + 2 * e
    dp = _fma(2 * e, e, num)                                  # x >= 0
    dn = _fma(e, e + 2, 2.0)                                  # x < 0
    dn2 = _fma(e, _fma(e, _fma(e, e + 4, 8.0), 8.0), 4.0)     # dn^2
    bn = _fma(e, _fma(e, e + 4, _fma(4.0, xc, 6.0)), 4 * (1 + xc))   # see fa_activations_impl.h
    y = _where(x >= 0, x * (num / dp), np.ldexp(_mul_div(xc * m, e + 2, dn), k))
    d = _where(x >= 0, num / dp + 4 * xc * e * e * (1 + e) / (dp * dp),
               np.ldexp(_mul_div(m, bn, dn2), k))
    return y, d


def hardtanh(x, p, dtype):
    lo, hi = p.min_val, p.max_val
    return (_where(x < lo, lo, _where(x > hi, hi, x)),
            _nan(_where((x <= lo) | (x >= hi), 0.0, 1.0), x))


def hardtanh_dy(y, p):
    return _nan(_where((y <= p.min_val) | (y >= p.max_val), 0.0, 1.0), y)


def hardsigmoid(x, p, dtype):
    """hardsigmoid and sparse_sigmoid: (clip(x, p0, p1) - p0) / p2, f' = p3 inside."""
    lo, hi = p.lo, p.hi
    y = _where(x <= lo, 0.0, _where(x >= hi, 1.0, (x - lo) / p.width))
    return y, _nan(_where((x > lo) & (x < hi), p.slope, 0.0), x)


def hardswish(x, p, dtype):
    y = _where(x <= -3, -0.0, _where(x >= 3, x, x * (x + 3) / 6))
    return y, _nan(_where(x <= -3, 0.0, _where(x < 3, (2 * x + 3) / 6, 1.0)), x)


def softsign(x, p, dtype):
    a = np.abs(x)
    return _where(np.isinf(x), np.sign(x), x / (1 + a)), 1 / _sq1p(a)


def logsigmoid(x, p, dtype):
    e = np.exp(-np.abs(x))
    lg = np.log1p(e)
    return _where(x >= 0, -lg, x - lg), _where(x >= 0, e / (1 + e), 1 / (1 + e))


def tanhshrink(x, p, dtype):
    a = np.abs(x)
    w = x * x
    small = -(x * (w * _horner(K.TANH, w)))
    small = _where(small.astype(dtype) == 0, 0.0, small)      # a zero is +0.0 (PyTorch)
    u = np.exp(-2 * a)
    big = np.copysign((a - 1) + 2 * u / (1 + u), x)
    t, dt = tanh(x, p, dtype)
    return _where(a < 1, small, big), _where(a < 1, t * t, 1 - dt)


def softshrink(x, p, dtype):
    lam = p.lambd
    # +0.0 inside (PyTorch's), also at x = +-inf inside an infinite lambd; NaN stays
    y = _where(x > lam, x - lam, _where(x < -lam, x + lam, _where(x == x, 0.0, x)))
    return y, _nan(_where((x >= -lam) & (x <= lam), 0.0, 1.0), x)


def hardshrink(x, p, dtype):
    inside = (x >= -p.lambd) & (x <= p.lambd)
    return _where(inside, 0.0, x), _nan(_where(inside, 0.0, 1.0), x)


def threshold(x, p, dtype):
    below = x <= p.threshold
    return _where(below, p.value, x), _nan(_where(below, 0.0, 1.0), x)


def squareplus(x, p, dtype):
    b = p.b
    a = np.abs(x)
    # past these x^2 + b or the sum below overflows: x, b scaled by 2^-600 (b by 2^-1200);
    # below these (b subnormal) x^2 underflows: scaled up by as much
    down = np.where((a > 2.0 ** 500) | (b > 2.0 ** 1000), 2.0 ** -600,
                    np.where((a < 2.0 ** -400) & (b < 2.0 ** -900), 2.0 ** 600, 1.0))
    with np.errstate(all="ignore"):
        xs, bs = x * down, (b * down) * down
        ss = np.sqrt(_fma(xs, xs, bs))
        s = ss / down
        q = a / s
        q = np.where(q < 1, q, 1.0)                     # |x| / s (inf / inf: 1)
        h2 = b / (0.5 * s + 0.5 * a)               # 2 (s - |x|): no cancellation, no overflow
        # for x < 0, f' = h / (2 s) = (b / 2) / (x^2 + b + |x| s), positive terms
        dn = (b * down) / (_fma(xs, xs, bs) + (a * down) * ss) * (0.5 * down)
    return (_where(x >= 0, 0.5 * x + 0.5 * s, 0.25 * h2), _where(x >= 0, 0.5 + 0.5 * q, dn))


def sparse_plus(x, p, dtype):
    u = x + 1
    y = _where(x <= -1, 0.0, _where(x >= 1, x, 0.25 * (u * u)))
    return y, _where(x <= -1, 0.0, _where(x >= 1, 1.0, 0.5 * u))


def exponential(x, p, dtype):
    m, k = _exp_split(x)
    e = np.ldexp(m, k)
    return e, e


def exponential_dy(y, p):
    return y


def clipped_relu(x, p, dtype):
    """Keras's relu: p0 (x - p1) for x <= p1, else min(x, p2); f' = p0, 1, 0 from p2."""
    slope, thr, cap = p.negative_slope, p.threshold, p.max_value
    dx = x - thr
    # x - thr overflowed for a finite x and threshold: slope x - slope thr
    neg = _where(np.isfinite(dx) | np.isinf(thr), dx * slope, x * slope - thr * slope)
    neg = _where(x == -np.inf, -np.inf * slope if slope != 0 else -0.0, neg)
    above = _where((x < cap) | (cap == np.inf), 1.0, 0.0)
    return (_where(x > thr, np.minimum(x, cap), neg),
            _nan(_where(x > thr, above, slope), x))


MATH = {k.name: globals()[k.name] for k in KERNELS}
_PARAMS = {k.name: collections.namedtuple(f"{k.name}_params", k.params) for k in KERNELS}


def named_params(kernel, values, dtype):
    """The kernel's parameter values (in its order) as p.NAME, rounded to dtype."""
    with np.errstate(over="ignore"):             # a huge parameter is inf in float32
        return _PARAMS[kernel.name](*(float(dtype.type(v)) for v in values))

Y_FORMS = {k.name: globals()[k.name + "_dy"] for k in KERNELS if k.y_form}
_FWD, _GRAD, _BWD, _BWDY, _FB, _FBG = range(len(ENTRIES))


def fast(kernel, entry, a, b, o1, o2, params):
    """No fast path here (fastact._runner.fast's contract): None, so that fastact._arrays
    prepares the arrays and calls launch."""
    return None


def softmax_fast(log, sign, op, kernel, x, g, o1, o2, axis):
    """No fast path for the softmax family either (fastact._runner.softmax_fast's
    contract): None, so that fastact._softmax takes the call."""
    return None


def launch(kernel, entry, inputs, outputs, params):
    """Same contract as fastact._runner.launch. float16 and bfloat16 are computed as the
    compiled kernels do, in float32 (the parameters rounded to it), here in float64 and
    rounded once to the 16-bit output."""
    dtype = inputs[0].dtype
    error = rounding_error(kernel, params, dtype)
    if error is not None:
        raise error
    name = KERNELS[kernel].name
    if dtype.itemsize == 2 and name == "linear":
        _identity16(entry, inputs, outputs)
        return
    if dtype.itemsize == 2:
        dtype = np.dtype(np.float32)
    p = named_params(KERNELS[kernel], params, dtype)
    with np.errstate(all="ignore"):
        src = inputs[-1].astype(np.float64)
        if entry == _BWDY:
            y, d = None, Y_FORMS[name](src, p)
        else:
            y, d = MATH[name](src, p, dtype)
        if entry in (_BWD, _BWDY, _FBG):
            d = inputs[0].astype(np.float64) * d
        if entry in (_FWD, _FB, _FBG):
            outputs[0][...] = y
        if entry in (_GRAD, _BWD, _BWDY):
            outputs[0][...] = d
        if entry in (_FB, _FBG):
            outputs[1][...] = d


def _identity16(entry, inputs, outputs):
    """The identity in 16 bits moves the bits, as the compiled kernels do (PyTorch's copy_:
    a signalling NaN stays as it is); its derivative is 1."""
    moved = inputs[0] if entry in (_BWD, _BWDY) else inputs[-1]
    outputs[0][...] = 1 if entry == _GRAD else moved
    if entry in (_FB, _FBG):
        outputs[1][...] = inputs[0] if entry == _FBG else 1


# ---- the gated units and prelu: fastact._gated's backend contract ----

def _times3(g, a, d):
    """g a d with g a exact (fa_gated_impl.h's times3), on float64 arrays."""
    p, e = _two_prod(g, a)
    return p * d + _where(np.abs(p) < np.inf, e, 0.0) * d


def gated(kernel, entry, g, a, b, outs):
    """GATED_KERNELS[kernel]'s GATED_ENTRIES[entry] on 2-D arrays (rows of a, the gate b
    and g, grad_output or None) into outs (the entry's outputs, in fa_gated.h's order)."""
    gk = GATED_KERNELS[kernel]
    f = KERNELS[KERNEL_INDEX[gk.f]]
    dtype = a.dtype
    with np.errstate(all="ignore"):
        fv, dv = MATH[f.name](b.astype(np.float64), named_params(f, gk.params, dtype), dtype)
        a = a.astype(np.float64)
        name = GATED_ENTRIES[entry]
        if name == "fwd":
            values = (a * fv,)
        elif name == "grad":
            values = (fv, a * dv)
        elif name == "fb":
            values = (a * fv, fv, a * dv)
        else:
            g = g.astype(np.float64)
            values = (g * fv, _times3(g, a, dv))
            if name == "fbg":
                values = (a * fv,) + values
        for o, v in zip(outs, values):
            o[...] = v                            # float32: may round to inf


def prelu(entry, g, x, w, outs):
    """PRELU_ENTRIES[entry] on (N, C, inner) arrays x (and g, grad_output, or None),
    the weight w of shape (C,) or x's, into outs; returns the weight's gradient (float64,
    shape (C,), summed in a fixed order) for the w entries, else None."""
    dtype = x.dtype
    name = PRELU_ENTRIES[entry]
    with np.errstate(all="ignore"):
        x = x.astype(np.float64)
        slope = (w[None, :, None] if w.ndim == 1 else w).astype(np.float64)
        p = collections.namedtuple("p", "negative_slope")(slope)
        y, d = leaky_relu(x, p, dtype)
        gv = 1.0 if g is None else g.astype(np.float64)
        if name in ("bwd", "fbg", "bwdw", "fbgw"):
            d = gv * d
        values = {"fwd": (y,), "grad": (d,), "bwd": (d,), "bwdw": (d,)}.get(name, (y, d))
        for o, v in zip(outs, values):
            o[...] = v
        if name.endswith("w"):
            return np.sum(_where(x > 0, 0.0, gv * x), axis=(0, 2))
    return None


# ---- the softmax family: fastact._softmax's backend contract ----

def softmax_no_limit(m):
    """Rows whose max m (of sign * x) is NaN or -inf: a NaN, or every entry -inf (no
    limit): every output of theirs is NaN, for every op but the backward from y."""
    return np.isnan(m) | (m == -np.inf)


def _softmax_stats(xs, wide):
    """Per row (axis 1, kept) of float64 xs = sign * x: the max M, d + derr = xs - M
    exactly, e = e^(xs - M), the count c of maxima and rest = the sum of e over the
    others (in the wide type: float64 for float32 data; for float64 the longest float
    NumPy has, x87 extended on x86 Linux, quad on aarch64 Linux, float64 itself where
    long double is double, as on macOS arm64 and Windows), and the masks of the rows holding NaN (or all -inf:
    no limit) and of those whose max is +inf."""
    m = np.max(xs, axis=1, keepdims=True) if xs.shape[1] else np.full(
        xs.shape[:1] + (1,) + xs.shape[2:], -np.inf, xs.dtype)
    nan_row = softmax_no_limit(m)
    inf_row = m == np.inf
    mf = np.where(nan_row | inf_row, 0.0, m)
    d, derr = _two_sum(xs, -mf)
    derr = np.where(np.abs(d) < 16384.0, derr, 0.0)     # beyond, e^d = 0 (and derr may be NaN)
    e = np.exp(d) * (1.0 + derr)
    top = xs == np.where(inf_row, np.inf, mf)
    rest = np.sum(np.where(top, 0.0, e).astype(wide), axis=1, keepdims=True)
    c = np.sum(top, axis=1, keepdims=True)
    return m, mf, d, derr, e, c, rest, nan_row, inf_row


def softmax(func, op, x, g, outs):
    """SOFTMAX_OPS[op] of SOFTMAX_TABLE[func] along axis 1 of 3-D arrays (outer, n,
    inner): x (the input, or the output y for 'bwdy'), g (grad_output or None), into
    outs (y, and/or grad_x). Computed in float64 (float32 data) or float64 with wide
    sums and exact differences (float64 data)."""
    spec, opname = SOFTMAX_TABLE[func], SOFTMAX_OPS[op]
    sign, log = spec.sign, spec.log
    with np.errstate(all="ignore"):
        f64 = x.dtype == np.float64
        wide = np.longdouble if f64 else np.float64
        g64 = None if g is None else g.astype(np.float64)
        if opname == "bwdy":
            y = x.astype(np.float64)
            if log:
                gs = np.sum(g64.astype(wide), axis=1, keepdims=True)
                m, k = _exp_split(y)              # e^y past float64's range too
                p = np.ldexp(gs * m.astype(wide), k)
                # a sum of 0: 0 e^y is 0 also where e^y overflows (NaN for y +inf, NaN)
                p = np.where(gs == 0, gs * np.where(y <= 0, 1.0, y), p)
                dx = g64.astype(wide) - p
            else:
                s = np.sum(g64.astype(wide) * y.astype(wide), axis=1, keepdims=True)
                dx = sign * (y.astype(wide) * (g64.astype(wide) - s))
            outs[0][...] = dx
            return
        xs = sign * x.astype(np.float64)
        m, mf, d, derr, e, c, rest, nan_row, inf_row = _softmax_stats(xs, wide)
        s_all = c + rest
        p_inf = np.where(xs == np.inf, 1.0 / np.maximum(c, 1), 0.0)
        if log:
            lse = np.where(c == 1, np.log1p(rest.astype(np.float64)),
                           np.log(s_all.astype(np.float64)))
            # d - lse rounded once (d + derr is xs - M exactly); lse from the wide sum
            yv = np.where(inf_row, np.where(xs == np.inf, 0.0 - np.log(np.maximum(c, 1)), -np.inf),
                          (d.astype(wide) - lse.astype(wide)) + derr)
            p = np.where(inf_row, p_inf, (e.astype(wide) / s_all))
        else:
            yv = np.where(inf_row, p_inf, e.astype(wide) / s_all)
            p = yv
        yv = np.where(nan_row, np.nan, yv)
        p = np.where(nan_row, np.nan, p)
        if opname == "fwd":
            outs[0][...] = yv
            return
        if log:
            gs = np.sum(g64.astype(wide), axis=1, keepdims=True)
            dx = g64.astype(wide) - p * gs
        else:
            s = np.sum(g64.astype(wide) * p, axis=1, keepdims=True)
            dx = sign * (p * (g64.astype(wide) - s))
        dx = np.where(nan_row, np.nan, dx)
        if opname == "bwdx":
            outs[0][...] = dx
        else:
            outs[0][...] = yv
            outs[1][...] = dx
