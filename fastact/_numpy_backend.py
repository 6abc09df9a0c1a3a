"""The pure-NumPy backend: every kernel's value and derivative with NumPy operations.

Used when the compiled extension is missing or FASTACT_BACKEND=numpy, and as the
"slow" twin the compiled kernels are tested against. Each kernel is a function
``name(x, p, dtype) -> (f(x), f'(x))`` on float64 arrays (float32 inputs are computed in
float64 with the parameters rounded to float32, so kinks fall where the float32 kernels
put them); those whose derivative can be written in y also have ``name_dy(y, p)``.
Accuracy comes from NumPy's own exp/expm1/log1p/tanh and math.erfc, plus exact products
(Dekker) where an argument's rounding would be amplified and ldexp scaling where e^x is
subnormal while the result is not.
"""
import math
from decimal import Decimal, getcontext
from fractions import Fraction

import numpy as np

from ._activations import ENTRIES, KERNELS, NPARAMS

_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10
_SQRT1_2 = 0.70710678118654752440
_INV_SQRT_2PI = 0.39894228040143267794
_TWO_OVER_SQRT_PI = 1.1283791670955125739


def _split(value):
    """A Decimal as a double-double (hi, lo)."""
    hi = float(value)
    return hi, float(value - Decimal(hi))


getcontext().prec = 50
_PI = Decimal("3.14159265358979323846264338327950288419716939937510")
_A = 2 * (Decimal(2) / _PI).sqrt()               # gelu 'tanh': 2u = A x + B x^3
(_A_HI, _A_LO), (_B_HI, _B_LO) = _split(_A), _split(_A * Decimal("0.044715"))
_C_HI, _C_LO = _split(Decimal(1) / Decimal(2).sqrt())


def _two_prod(a, b):
    """a * b = p + e exactly (Dekker); |a|, |b| < 1e300."""
    p = a * b
    c = 134217729.0 * a
    ah = c - (c - a)
    al = a - ah
    c = 134217729.0 * b
    bh = c - (c - b)
    bl = b - bh
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _two_sum(a, b):
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _exp_split(t):
    """e^t = m * 2^k with m in [0.7, 1.42]: (m, k); scale back with np.ldexp."""
    t = np.clip(t, -1100.0, 710.0)
    k = np.rint(t * 1.4426950408889634)
    k = np.where(np.isnan(k), 0.0, k)
    m = np.exp((t - k * _LN2_HI) - k * _LN2_LO)
    return m, k.astype(np.int64)


def _tanh_minus_x_coefficients(terms=50):
    """c_n with tanh(x) - x = sum_n c_n x^(2n+1), n >= 1 (Bernoulli numbers)."""
    b = [Fraction(0)] * (2 * terms + 3)
    a = [Fraction(0)] * (2 * terms + 3)
    for m in range(2 * terms + 3):                # Akiyama-Tanigawa: b[m] = B_m
        a[m] = Fraction(1, m + 1)
        for j in range(m, 0, -1):
            a[j - 1] = j * (a[j - 1] - a[j])
        b[m] = a[0]
    coeffs = []
    for n in range(2, terms + 2):                 # x^(2n-1)
        c = Fraction(2 ** (2 * n) * (2 ** (2 * n) - 1)) * b[2 * n] / math.factorial(2 * n)
        coeffs.append(float(c))
    return coeffs


_TANH_SERIES = _tanh_minus_x_coefficients()


def _where(cond, a, b):
    return np.where(cond, a, b)


# ---- the kernels: (x float64 array, p params, dtype) -> (y, d) ----

def sigmoid(x, p, dtype):
    e = np.exp(-np.abs(x))
    r = 1 / (1 + e)
    return _where(x >= 0, r, e * r), e * r * r


def sigmoid_dy(y, p):
    return y * (1 - y)


def tanh(x, p, dtype):
    y = np.tanh(x)
    u = np.exp(-2 * np.abs(x))
    return y, _where(np.abs(x) < 0.5, (1 - y) * (1 + y), 4 * u / ((1 + u) * (1 + u)))


def tanh_dy(y, p):
    return (1 - y) * (1 + y)


def linear(x, p, dtype):
    return x.copy(), np.ones_like(x)


def linear_dy(y, p):
    return np.ones_like(y)


def relu(x, p, dtype):
    return _where(x < 0, 0.0, x), _where(x <= 0, 0.0, 1.0)


def relu_dy(y, p):
    return _where(y <= 0, 0.0, 1.0)


def leaky_relu(x, p, dtype):
    s = p[0]
    neg = _where((s == 0) & (x == -np.inf), -0.0, x * s)
    return _where(x > 0, x, neg), _where(x > 0, 1.0, s)


def leaky_relu_dy(y, p):
    return _where(y > 0, 1.0, p[0])


def elu(x, p, dtype):
    neg, pos, div, _, dcoef = p
    q = x / div
    ph, pl = _two_prod(np.clip(q, -1e300, 1e300), div)
    ql = _where(np.abs(q) < 1024, ((x - ph) - pl) / div, 0.0)
    y = _where(x < 0, neg * np.expm1(q), x * pos)
    return y, _where(x <= 0, dcoef * np.exp(q) * (1 + ql), pos)


def elu_dy(y, p):
    return _where(y <= 0, (y + p[0]) / p[2], p[1])


def _upper_tail(a):
    """(Phi(-a), phi(a)) as (Phi_s, phi_s, k): both times 2^-k, exact for a <= 40."""
    ac = np.minimum(a, 40.0)
    sq, sq_err = _two_prod(ac, ac)
    m, k = _exp_split(-0.5 * sq)
    phi_s = m * (1 - 0.5 * sq_err) * _INV_SQRT_2PI           # phi(a) = phi_s 2^k
    # a < 20: erfc(a / sqrt2), with the rounding of a / sqrt2 corrected to first order
    z, z_err = _two_prod(ac, _C_HI)
    z_err = z_err + ac * _C_LO
    erfc = np.frompyfunc(math.erfc, 1, 1)(np.minimum(z, 15.0)).astype(np.float64)
    big_phi = 0.5 * (erfc - z_err * _TWO_OVER_SQRT_PI * np.exp(-z * z))
    # a >= 20: Phi(-a) = phi(a) / a * (1 - 1/a^2 + 3/a^4 - ...)
    w, term, series = 1 / (ac * ac), np.ones_like(ac), np.ones_like(ac)
    for j in range(1, 13):
        term = -term * (2 * j - 1) * w
        series = series + term
    big_phi_s = _where(ac >= 20, phi_s / ac * series, np.ldexp(big_phi, -k))
    return big_phi_s, phi_s, k


def gelu(x, p, dtype):
    a = np.abs(x)
    big_phi_s, phi_s, k = _upper_tail(a)
    ac = np.minimum(a, 40.0)
    small = np.ldexp(big_phi_s, k)                            # Phi(-|x|)
    bracket = np.ldexp(big_phi_s - ac * phi_s, k)             # Phi(-|x|) - |x| phi(x)
    y = _where(x < 0, -np.ldexp(ac * big_phi_s, k), x * (1 - small))
    return y, _where(x < 0, bracket, 1 - bracket)


def gelu_tanh(x, p, dtype):
    xc = np.clip(x, -23.0, 23.0)
    sq, sq_err = _two_prod(xc, xc)
    bp, bp_err = _two_prod(np.full_like(xc, _B_HI), sq)
    t, t_err = _two_sum(np.full_like(xc, _A_HI), bp)
    t_lo = t_err + bp_err + _B_HI * sq_err + _B_LO * sq + _A_LO
    v, v_err = _two_prod(xc, t)
    v_lo = v_err + xc * t_lo                                  # v + v_lo = 2u
    m, k = _exp_split(-np.abs(v))
    m = m * (1 + _where(v >= 0, -v_lo, v_lo))                 # e^-|2u| = m 2^k
    e = np.ldexp(m, k)
    den = 1 + e
    dv = _A_HI + 3 * _B_HI * sq
    y = _where(v >= 0, x / den, np.ldexp(xc * m / den, k))
    d = _where(v >= 0, 1 / den + xc * e * dv / (den * den),
               np.ldexp(m / den * (1 + xc * dv / den), k))
    return y, d


def silu(x, p, dtype):
    m, k = _exp_split(-np.abs(x))
    e = np.ldexp(m, k)
    den = 1 + e
    xc = np.clip(x, -1100.0, 1100.0)
    y = _where(x >= 0, x / den, np.ldexp(xc * m / den, k))
    d = _where(x >= 0, (den + xc * e) / (den * den), np.ldexp(m * (den + xc) / (den * den), k))
    return y, d


def softplus(x, p, dtype):
    beta, threshold = p[0], p[1]
    z, z_err = _two_prod(np.clip(x, -1e300, 1e300), beta)
    z_err = _where(np.abs(z) < 1024, z_err, 0.0)
    # PyTorch's test beta * x > threshold, in the input's precision
    linear_part = (x.astype(dtype) * dtype.type(beta)) > dtype.type(threshold)
    m, k = _exp_split(-np.abs(z))
    m = m * (1 + _where(z >= 0, -z_err, z_err))               # e^-|z| = m 2^k
    e = np.ldexp(m, k)
    lg = np.log1p(e)
    sp = _where(z >= 0, (z + (z_err + lg)) / beta,
                _where(z < -40, np.ldexp(m / beta, k), lg / beta))
    d = _where(z >= 0, 1 / (1 + e), e / (1 + e))
    return _where(linear_part, x, sp), _where(linear_part, 1.0, d)


def mish(x, p, dtype):
    m, k = _exp_split(-np.abs(x))
    e = np.ldexp(m, k)
    xc = np.clip(x, -1100.0, 1100.0)
    num = 1 + 2 * e
    dp = num + 2 * e * e                                      # x >= 0
    dn = e * (e + 2) + 2                                      # x < 0
    y = _where(x >= 0, x * (num / dp), np.ldexp(xc * m * (e + 2) / dn, k))
    d = _where(x >= 0, num / dp + 4 * xc * e * e * (1 + e) / (dp * dp),
               np.ldexp(m * ((e + 2) * dn + 4 * xc * (1 + e)) / (dn * dn), k))
    return y, d


def hardtanh(x, p, dtype):
    lo, hi = p[0], p[1]
    return (_where(x < lo, lo, _where(x > hi, hi, x)),
            _where((x <= lo) | (x >= hi), 0.0, 1.0))


def hardtanh_dy(y, p):
    return _where((y <= p[0]) | (y >= p[1]), 0.0, 1.0)


def hardsigmoid(x, p, dtype):
    y = _where(x <= -3, 0.0, _where(x >= 3, 1.0, (x + 3) / 6))
    return y, _where((x > -3) & (x < 3), 1 / 6, 0.0)


def hardswish(x, p, dtype):
    y = _where(x <= -3, -0.0, _where(x >= 3, x, x * (x + 3) / 6))
    return y, _where(x <= -3, 0.0, _where(x < 3, (2 * x + 3) / 6, 1.0))


def softsign(x, p, dtype):
    a = np.abs(x)
    r = 1 / (1 + a)
    return _where(np.isinf(x), np.sign(x), x / (1 + a)), r * r


def logsigmoid(x, p, dtype):
    e = np.exp(-np.abs(x))
    lg = np.log1p(e)
    return _where(x >= 0, -lg, x - lg), _where(x >= 0, e / (1 + e), 1 / (1 + e))


def tanhshrink(x, p, dtype):
    a = np.abs(x)
    w = x * x
    series = np.zeros_like(x)
    for c in reversed(_TANH_SERIES):
        series = series * w + c
    small = -(x * w * series) + 0.0                           # + 0.0: -0.0 -> 0.0 (PyTorch)
    u = np.exp(-2 * a)
    big = np.copysign((a - 1) + 2 * u / (1 + u), x)
    t = np.tanh(x)
    return _where(a < 1, small, big), t * t


def softshrink(x, p, dtype):
    lam = p[0]
    y = _where(x > lam, x - lam, _where(x < -lam, x + lam, x * 0))
    return y, _where((x >= -lam) & (x <= lam), 0.0, 1.0)


def hardshrink(x, p, dtype):
    inside = (x >= -p[0]) & (x <= p[0])
    return _where(inside, 0.0, x), _where(inside, 0.0, 1.0)


def threshold(x, p, dtype):
    below = x <= p[0]
    return _where(below, p[1], x), _where(below, 0.0, 1.0)


MATH = {k.name: globals()[k.name] for k in KERNELS}
Y_FORMS = {k.name: globals()[k.name + "_dy"] for k in KERNELS if k.y_form}
_FWD, _GRAD, _BWD, _BWDY, _FB, _FBG = range(len(ENTRIES))


def launch(kernel, entry, inputs, outputs, params):
    """Same contract as fastact._runner.launch."""
    dtype = inputs[0].dtype
    name = KERNELS[kernel].name
    p = tuple(float(dtype.type(v)) for v in params) + (0.0,) * (NPARAMS - len(params))
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
