"""The table of activations: names, parameters, defaults, validation, and the kernels.

This file is the one place that lists what fastact offers. setup.py reads KERNELS to
generate the compiled loops, fastact._api builds the public functions and classes from
ACTIVATIONS, and the tests and benchmarks iterate over both. It imports nothing from
fastact, so the build can load it on its own.

A *kernel* is one compiled math routine (``fa_<kernel>_*`` in
``_src/fa_activations_impl.h``, and ``_numpy_backend.<kernel>``) taking up to five float
parameters; several activations share one (selu and celu are the elu kernel with other
parameters, relu6 is hardtanh on [0, 6]).
"""
import math
import numbers
import struct
from dataclasses import dataclass, field
from typing import Callable, Optional, Tuple

NPARAMS = 5   # the most parameters a kernel takes (its C functions' slots)


@dataclass(frozen=True)
class Kernel:
    name: str
    cost: int          # work per element, relu = 1: one thread below GRAIN / cost elements
    # its parameters' names, in order: the C function's (fa_activations_impl.h), the
    # generated loops' and the NumPy twin's (p.NAME); prepare gives them by name
    params: Tuple[str, ...] = ()
    # the parameters by name -> whether f' can be taken from y; None: never
    y_form: Optional[Callable[..., bool]] = None
    # (parameter, value): a common value that gets its own loop with the value as a
    # compile-time constant (the C code has a cheaper path for it, see FA_KNOWN)
    common: Optional[Tuple[str, float]] = None
    # f' written in y = f(x) (and the parameters by name) as a PyTorch expression, for
    # the kernels whose PyTorch backward takes y (relu, exp): fastact.torch then saves y
    # for backward instead of x (where PyTorch saves x, an in-place op on y must not break
    # the backward: leaky_relu, hardtanh; Identity saves nothing in PyTorch)
    torch_dy: Optional[str] = None
    # (parameter, the name users know it by): parameters the activations refuse as 0,
    # which must not round to 0 in the computation type either (float32 for float32 and
    # the 16-bit types): rounding_error says so (both backends). Not softplus's beta:
    # PyTorch computes a float32 softplus whose beta rounds to 0 (inf, f' = 1/2, which is
    # what the exact function rounds to), and so does fastact
    nonzero: Tuple[Tuple[str, str], ...] = ()
    # parameters f' compares y with (hardtanh's bounds): y in float16 or bfloat16 tells
    # f' only where each is a value of that type (float16(0.1) < 0.1f: a clipped y and an
    # x = float16(0.1) inside the bounds are the same y)
    y_exact: Tuple[str, ...] = ()

    def named(self, values):
        """The parameter values (a tuple in order) by name."""
        return dict(zip(self.params, values))

    def takes_y(self, values, y_dtype=None):
        """Whether backward can take y= with these parameter values, for a y of dtype
        y_dtype (a NumPy dtype or its name; None: a float32/float64 y)."""
        if self.y_form is None or not self.y_form(**self.named(values)):
            return False
        return y_dtype is None or self.y_inexact(values, y_dtype) is None

    def y_inexact(self, values, y_dtype):
        """The first y_exact parameter (name, value) that is not a value of y_dtype where
        that is float16 or bfloat16 (a dtype or its name; as the float32 the kernels
        compare with); None if there is none or y_dtype is another type."""
        name = y_dtype if isinstance(y_dtype, str) else getattr(y_dtype, "name", "")
        if name not in ("float16", "bfloat16"):
            return None
        named = self.named(values)
        for p in self.y_exact:
            if not _exact_in(named[p], name):
                return p, named[p]
        return None

    def nonzero_mask(self):
        """The nonzero parameters as a bit mask of their positions."""
        return sum(1 << self.params.index(p) for p, _ in self.nonzero)

    def args(self, constant=False):
        """The parameters as the C functions take them: the names, then 0 for the unused
        slots; constant=True: the common value as a literal."""
        names = [repr(self.common[1]) if constant and n == self.common[0] else n
                 for n in self.params]
        return ", ".join(names + ["0"] * (NPARAMS - len(names)))


def rounding_error(kernel, values, dtype):
    """The ValueError for kernel (its index)'s parameter values (in its order) where one that
    must not be 0 rounds to 0 in float32, the computation type of dtype (float32,
    float16, bfloat16); None where none does, or dtype is float64."""
    if dtype.itemsize == 8:
        return None
    k = KERNELS[kernel]
    for p, public in k.nonzero:
        v = values[k.params.index(p)]
        if v != 0 and abs(v) <= 2.0 ** -150:          # half float32's smallest subnormal
            return ValueError(f"{public}={v!r} rounds to 0 in float32, the computation type "
                              f"of {dtype.name} arrays, where it must not be 0: pass a "
                              f"float64 array or a larger {public}")
    return None


def _float32(v):
    """v rounded to float32 (a Python float; +-inf past its range)."""
    try:
        return struct.unpack("f", struct.pack("f", v))[0]
    except OverflowError:
        return math.copysign(math.inf, v)


def _exact_in(v, name):
    """Whether float32(v) is a value of the 16-bit type name (float16, bfloat16)."""
    f = _float32(v)
    if name == "bfloat16":                              # float32's top half
        return struct.unpack("I", struct.pack("f", f))[0] & 0xFFFF == 0
    try:
        return math.isinf(f) or struct.unpack("e", struct.pack("e", f))[0] == f
    except OverflowError:
        return False


def _always(**params):
    return True


KERNELS = (
    Kernel("sigmoid", 8, y_form=_always),
    Kernel("tanh", 8, y_form=_always),
    Kernel("linear", 1, y_form=_always),
    # f' from y: 1 where y > 0, else y * 0 + 0 (+0, NaN at NaN, as the kernel), so that
    # a create_graph backward stays connected to y, as PyTorch's threshold_backward is
    Kernel("relu", 1, y_form=_always, torch_dy="torch.where(y > 0, 1.0, y * 0 + 0.0)"),
    Kernel("leaky_relu", 1, ("negative_slope",),       # slope >= 0: sign(y) = sign(x)
           y_form=lambda negative_slope: negative_slope >= 0),
    # x > 0: scale x, else alpha expm1(x / div), f' = alpha_div e^(x / div) there;
    # div = 1 (elu, selu) has its own loop
    Kernel("elu", 8, ("alpha", "scale", "div", "inv_div", "alpha_div"),
           y_form=lambda alpha, scale, div, inv_div, alpha_div: alpha * inv_div >= 0 and scale > 0,
           common=("div", 1.0), nonzero=(("div", "alpha"),)),
    Kernel("gelu", 16),
    Kernel("gelu_tanh", 16),
    Kernel("silu", 8, ("beta",), common=("beta", 1.0)),         # beta = 1: silu
    Kernel("softplus", 12, ("beta", "threshold"), common=("beta", 1.0)),
    Kernel("mish", 12),
    Kernel("hardtanh", 1, ("min_val", "max_val"), y_form=_always, y_exact=("min_val", "max_val")),
    Kernel("hardsigmoid", 1, ("lo", "hi", "width", "slope")),  # (clip(x, lo, hi) - lo) / width
    Kernel("hardswish", 1),
    Kernel("softsign", 2),
    Kernel("logsigmoid", 8),
    Kernel("tanhshrink", 12),
    Kernel("softshrink", 1, ("lambd",)),
    Kernel("hardshrink", 1, ("lambd",)),
    Kernel("threshold", 1, ("threshold", "value")),
    Kernel("squareplus", 4, ("b",), nonzero=(("b", "b"),)),
    Kernel("sparse_plus", 1),
    Kernel("exponential", 8, y_form=_always, torch_dy="y"),
    Kernel("clipped_relu", 1, ("negative_slope", "threshold", "max_value")),
)
KERNEL_INDEX = {k.name: i for i, k in enumerate(KERNELS)}

# The entry points every kernel has, in the order of the compiled table, and what each
# computes for element i: (inputs, outputs, C statement). The loops of every SIMD level
# (fastact/_src/_kernels.pyx.in) and the C driver of tools/kernel_driver.py are generated
# from these, so both run the same code.
ENTRIES = ("fwd", "grad", "bwd", "bwdy", "fb", "fbg")
ENTRY_CODE = {
    "fwd": (("x",), ("y",), "y[i] = fa_{k}_fwd_{s}(x[i], {p})"),
    "grad": (("x",), ("y",), "y[i] = fa_{k}_grad_{s}(x[i], {p})"),
    "bwd": (("g", "x"), ("y",), "y[i] = fa_{k}_bwd_{s}(g[i], x[i], {p})"),
    "bwdy": (("g", "x"), ("y",), "y[i] = fa_{k}_bwdy_{s}(g[i], x[i], {p})"),
    "fb": (("x",), ("y", "d"), "fa_{k}_fb_{s}(x[i], {p}, &y[i], &d[i])"),
    "fbg": (("g", "x"), ("y", "d"), "fa_{k}_fbg_{s}(g[i], x[i], {p}, &y[i], &d[i])"),
}


# The dtypes of the compiled table, in its order: (index, the C type the math and the
# parameters use, the functions' suffix, the C type of the arrays' elements). float16 and
# bfloat16 are stored as 16 bits (fa_half.h) and computed in float.
C_TYPES = ((0, "float", "f32", "float"), (1, "double", "f64", "double"),
           (2, "float", "f16", "fa_half_t"), (3, "float", "bf16", "fa_half_t"))

# The compiled table's sizes and the entries taking two inputs / giving two outputs (bit
# masks over ENTRIES), passed to the C code as macros (setup.py, and tools/kernel_driver.py's
# driver): fastact/_src/fa_table.h lays the table out from them.
C_MACROS = {"FA_NKERNELS": len(KERNELS), "FA_NENTRIES": len(ENTRIES), "FA_NPARAMS": NPARAMS,
            **{f"FA_TWO_{side}": sum(1 << i for i, e in enumerate(ENTRIES)
                                     if len(ENTRY_CODE[e][j]) == 2)
               for j, side in enumerate(("INPUTS", "OUTPUTS"))}}


def has_entry(kernel, entry):
    """Whether the kernel has this entry point (bwdy only where f' can be taken from y)."""
    return entry != "bwdy" or kernel.y_form is not None


def entry_statement(kernel, entry, suffix, constant=False):
    """The statement for element i of a loop of kernel x entry x dtype (a suffix of
    C_TYPES); constant=True: with the kernel's common parameter value as a literal."""
    if kernel.name == "linear" and suffix in ("f16", "bf16") and entry != "grad":
        # the identity in 16 bits moves the bits (a copy, as PyTorch's copy_): widening
        # and narrowing would give the same value, only slower (10x float32's time in
        # float16 at AVX2), and quiet a signalling NaN; f' = 1 is grad's constant
        if entry in ("fb", "fbg"):
            d = "g[i]" if entry == "fbg" else f"fa_linear_grad_{suffix}(x[i], {kernel.args(constant)})"
            return f"y[i] = x[i]; d[i] = {d}"
        return "y[i] = %s[i]" % ENTRY_CODE[entry][0][0]
    return ENTRY_CODE[entry][2].format(k=kernel.name, s=suffix, p=kernel.args(constant))


REQUIRED = object()   # default of a parameter that has none

# PyTorch's SELU constants (torch/nn/modules/activation.py) and their product.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
SELU_ALPHA_SCALE = 1.7580993408473768599402175208123   # correctly rounded product


@dataclass(frozen=True)
class Activation:
    name: str                        # function name, as torch.nn.functional / jax.nn / Keras
    cls_name: str                    # class name, as torch.nn where it has one
    params: Tuple[Tuple[str, object], ...]   # (name, default or REQUIRED), in order
    prepare: Callable                # validated params -> (kernel name, its params by name)
    formula: str                     # one line for the docstrings and the docs
    # PyTorch: the activation as an expression in x, the parameters by name, torch and
    # F = torch.nn.functional (the counterpart's call, or the formula in torch operations:
    # fastact.torch computes other devices and dtypes, and double backward, with it),
    # and the torch.nn class it mirrors (None: it has none; fastact.torch's module is
    # fastact's own, and the tests compare with the mpmath reference only)
    torch: str = ""
    torch_module: Optional[str] = None
    # f' in x as a PyTorch expression, where PyTorch cannot differentiate its own backward
    torch_grad: Optional[str] = None
    # params (by name, defaults filled in) -> the points where f or f' changes formula,
    # and those where f' crosses zero (tests and docs take them from here)
    kinks: Callable = lambda **p: ()
    crossings: Callable = lambda **p: ()
    # per parameter, in order: what it means and which values are valid (docstrings)
    param_docs: Tuple[str, ...] = ()
    # benchmark peers, {"numpy" | "torch": (forward, backward)}: expressions in x, the
    # parameters by name, g (the gradient), for torch also y (the forward's output) and o
    # (an output buffer); a torch backward in y is timed against fastact's backward from
    # y, as autograd takes it. Missing: not timed (fastact.bench says so). Names in scope:
    # fastact.bench's NUMPY_SCOPE and TORCH_SCOPE.
    peers: dict = field(default_factory=dict)
    aliases: Tuple[str, ...] = ()    # other names of the same functions (jax's, Keras's)
    # where the kernel's y-form holds for some parameters only: the condition, in words
    y_when: str = ""

    @property
    def param_names(self):
        return tuple(name for name, _ in self.params)

    def with_defaults(self, params):
        """params (a dict) completed with the defaults."""
        return {**{k: v for k, v in self.params if v is not REQUIRED}, **params}

    def kinks_at(self, params):
        """The kinks for these parameters: 0 always, and the activation's own."""
        return (0.0,) + tuple(self.kinks(**self.with_defaults(params)))

    def crossings_at(self, params):
        return tuple(self.crossings(**self.with_defaults(params)))

    def kernel_for(self, values):
        """Validated parameter values -> (kernel, its parameter values as floats, in its
        order); prepare must give exactly the kernel's parameters."""
        name, named = self.prepare(*values)
        kernel = KERNELS[KERNEL_INDEX[name]]
        if set(named) != set(kernel.params):
            raise AssertionError(f"{self.name}: prepare gives {sorted(named)}, kernel {name} "
                                 f"takes {kernel.params}")
        return kernel, tuple(float(named[n]) for n in kernel.params)


def _check(name, value):
    """A parameter as a float: a real number, not NaN."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    try:
        value = float(value)
    except OverflowError:                               # an int past float64's range
        raise ValueError(f"{name} must be a number of float64's range") from None
    if math.isnan(value):
        raise ValueError(f"{name} must not be NaN")
    return value


def _elu(alpha):
    alpha = _check("alpha", alpha)
    return "elu", dict(alpha=alpha, scale=1.0, div=1.0, inv_div=1.0, alpha_div=alpha)


def _celu(alpha):
    alpha = _check("alpha", alpha)
    if alpha == 0:
        raise ValueError("alpha must not be 0 for celu")
    return "elu", dict(alpha=alpha, scale=1.0, div=alpha, inv_div=1.0 / alpha, alpha_div=1.0)


def _gelu(approximate):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return ("gelu" if approximate == "none" else "gelu_tanh"), ()


def _softplus(beta, threshold):
    beta, threshold = _check("beta", beta), _check("threshold", threshold)
    if beta == 0:
        raise ValueError("beta must not be 0 for softplus")
    return "softplus", dict(beta=beta, threshold=threshold)


def _hardtanh(min_val, max_val):
    lo, hi = _check("min_val", min_val), _check("max_val", max_val)
    if lo > hi:
        raise ValueError(f"min_val ({lo}) must not exceed max_val ({hi})")
    return "hardtanh", dict(min_val=lo, max_val=hi)


def _softshrink(lambd):
    lambd = _check("lambd", lambd)
    if lambd < 0:
        raise ValueError(f"lambd must be >= 0 for softshrink, got {lambd}")
    return "softshrink", dict(lambd=lambd)


def _squareplus(b):
    b = _check("b", b)
    if not b > 0:
        raise ValueError(f"b must be > 0 for squareplus, got {b} (b = 0 is relu)")
    return "squareplus", dict(b=b)


def _clipped_relu(negative_slope, max_value, threshold):
    slope, thr = _check("negative_slope", negative_slope), _check("threshold", threshold)
    cap = math.inf if max_value is None else _check("max_value", max_value)
    return "clipped_relu", dict(negative_slope=slope, threshold=thr, max_value=cap)


def _fixed(kernel, **params):
    return lambda: (kernel, params)


SILU_ZERO = -1.2784645427610738    # where silu' crosses zero (swish's at SILU_ZERO / beta)
QUICK_GELU_BETA = 1.702

_SIG_BWD = "g * (s := sig(x)) * (1 + x * (1 - s))"
_GELU_TANH = "(t := np.tanh(GELU_C * (x + 0.044715 * x ** 3)))"

ACTIVATIONS_TABLE = (
    Activation("sigmoid", "Sigmoid", (), _fixed("sigmoid"), "1 / (1 + exp(-x))",
               torch="torch.sigmoid(x)", torch_module="Sigmoid",
               peers={"numpy": ("1 / (1 + np.exp(-x))", "g * (s := sig(x)) * (1 - s)"),
                      "torch": ("A.sigmoid.out(x, out=o)",
                                "A.sigmoid_backward.grad_input(g, y, grad_input=o)")}),
    Activation("tanh", "Tanh", (), _fixed("tanh"), "tanh(x)",
               torch="torch.tanh(x)", torch_module="Tanh",
               peers={"numpy": ("np.tanh(x)", "g * (1 - np.tanh(x) ** 2)"),
                      "torch": ("A.tanh.out(x, out=o)",
                                "A.tanh_backward.grad_input(g, y, grad_input=o)")}),
    Activation("linear", "Linear", (), _fixed("linear"), "x (identity)",
               torch="x.clone()", torch_module="Identity", aliases=("identity",),
               peers={"numpy": ("x.copy()", "g.copy()"),
                      "torch": ("o.copy_(x)", "o.copy_(g)")}),
    Activation("relu", "ReLU", (), _fixed("relu"), "max(x, 0)",
               torch="F.relu(x)", torch_module="ReLU",
               peers={"numpy": ("np.maximum(x, 0)", "g * (x > 0)"),
                      "torch": ("A.relu.out(x, out=o)",
                                "A.threshold_backward.grad_input(g, y, 0, grad_input=o)")}),
    Activation("leaky_relu", "LeakyReLU", (("negative_slope", 0.01),),
               lambda negative_slope: ("leaky_relu", dict(
                   negative_slope=_check("negative_slope", negative_slope))),
               "x if x > 0 else negative_slope * x",
               torch="F.leaky_relu(x, negative_slope)", torch_module="LeakyReLU",
               y_when="negative_slope >= 0",
               param_docs=("slope for x <= 0; any real number (negative: an odd-looking but valid slope)",),
               peers={"numpy": ("np.where(x > 0, x, negative_slope * x)",
                                "g * np.where(x > 0, 1, negative_slope)"),
                      "torch": ("A.leaky_relu.out(x, negative_slope, out=o)",
                                "A.leaky_relu_backward.grad_input(g, x, negative_slope, False, grad_input=o)")}),
    Activation("elu", "ELU", (("alpha", 1.0),), _elu, "x if x > 0 else alpha * (exp(x) - 1)",
               torch="F.elu(x, alpha)", torch_module="ELU", y_when="alpha >= 0",
               param_docs=("scale of the negative part; any real number",),
               peers={"numpy": ("np.where(x > 0, x, alpha * np.expm1(x))",
                                "g * np.where(x > 0, 1, alpha * np.exp(x))"),
                      "torch": ("A.elu.out(x, alpha, 1.0, 1.0, out=o)",
                                "A.elu_backward.grad_input(g, alpha, 1.0, 1.0, False, x, grad_input=o)")}),
    Activation("gelu", "GELU", (("approximate", "none"),), _gelu,
               "x * Phi(x) (approximate='tanh': 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))))",
               torch="F.gelu(x, approximate=approximate)", torch_module="GELU",
               crossings=lambda approximate: (-0.7524 if approximate == "tanh" else -0.7518,),
               param_docs=("'none': the exact x Phi(x); 'tanh': PyTorch's tanh approximation",),
               peers={"numpy": (
                   "0.5 * x * (1 + erf(x / SQRT2)) if approximate == 'none' else "
                   "0.5 * x * (1 + np.tanh(GELU_C * (x + 0.044715 * x ** 3)))",
                   "g * (0.5 * (1 + erf(x / SQRT2)) + x * np.exp(-x * x / 2) / SQRT_2PI) "
                   "if approximate == 'none' else g * (0.5 * (1 + " + _GELU_TANH + ") + 0.5 * x "
                   "* (1 - t * t) * GELU_C * (1 + 3 * 0.044715 * x * x))"),
                      "torch": ("A.gelu.out(x, approximate=approximate, out=o)",
                                "A.gelu_backward.grad_input(g, x, approximate=approximate, grad_input=o)")}),
    Activation("silu", "SiLU", (), _fixed("silu", beta=1.0), "x * sigmoid(x)",
               torch="F.silu(x)", torch_module="SiLU", crossings=lambda: (SILU_ZERO,),
               peers={"numpy": ("x * sig(x)", _SIG_BWD),
                      "torch": ("A.silu.out(x, out=o)",
                                "A.silu_backward.grad_input(g, x, grad_input=o)")}),
    Activation("softplus", "Softplus", (("beta", 1.0), ("threshold", 20.0)), _softplus,
               "log(1 + exp(beta x)) / beta, x where beta x > threshold",
               torch="F.softplus(x, beta, threshold)", torch_module="Softplus",
               kinks=lambda beta, threshold: (threshold / beta,),
               param_docs=("sharpness; any nonzero real number (negative: the mirror image)",
                           "beta x above which the result is x; any real number"),
               peers={"numpy": ("np.where(beta * x > threshold, x, np.log1p(np.exp(beta * x)) / beta)",
                                "g * np.where(beta * x > threshold, 1, sig(beta * x))"),
                      "torch": ("A.softplus.out(x, beta, threshold, out=o)",
                                "A.softplus_backward.grad_input(g, x, beta, threshold, grad_input=o)")}),
    Activation("mish", "Mish", (), _fixed("mish"), "x * tanh(softplus(x))",
               torch="F.mish(x)", torch_module="Mish", crossings=lambda: (-1.1924,),
               peers={"numpy": ("x * np.tanh(np.log1p(np.exp(x)))",
                                "g * ((t := np.tanh(np.log1p(np.exp(x)))) + x * (1 - t * t) * sig(x))"),
                      "torch": ("A.mish.out(x, out=o)", "A.mish_backward(g, x)")}),
    Activation("selu", "SELU", (),
               _fixed("elu", alpha=SELU_ALPHA_SCALE, scale=SELU_SCALE, div=1.0, inv_div=1.0,
                      alpha_div=SELU_ALPHA_SCALE),
               "scale * elu(x, alpha), PyTorch's alpha and scale",
               torch="F.selu(x)", torch_module="SELU",
               peers={"numpy": ("SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(x))",
                                "g * SELU_SCALE * np.where(x > 0, 1, SELU_ALPHA * np.exp(x))"),
                      "torch": ("A.elu.out(x, SELU_ALPHA, SELU_SCALE, 1.0, out=o)",
                                "A.elu_backward.grad_input(g, SELU_ALPHA, SELU_SCALE, 1.0, False, x, grad_input=o)")}),
    Activation("celu", "CELU", (("alpha", 1.0),), _celu,
               "x if x > 0 else alpha * (exp(x / alpha) - 1)",
               torch="F.celu(x, alpha)", torch_module="CELU",
               param_docs=("scale of the negative part and of its exponent; any nonzero real number",),
               peers={"numpy": ("np.where(x > 0, x, alpha * np.expm1(x / alpha))",
                                "g * np.where(x > 0, 1, np.exp(x / alpha))"),
                      "torch": ("A.celu.out(x, alpha, out=o)",
                                "A.elu_backward.grad_input(g, alpha, 1.0, 1.0 / alpha, False, x, grad_input=o)")}),
    Activation("hardtanh", "Hardtanh", (("min_val", -1.0), ("max_val", 1.0)), _hardtanh,
               "clip(x, min_val, max_val)", torch="F.hardtanh(x, min_val, max_val)",
               torch_module="Hardtanh", kinks=lambda min_val, max_val: (min_val, max_val),
               aliases=("hard_tanh",),
               y_when="y is float32/float64, or min_val and max_val are values of its 16-bit type",
               param_docs=("lower bound; any real number, at most max_val",
                           "upper bound; any real number, at least min_val"),
               peers={"numpy": ("np.clip(x, min_val, max_val)",
                                "g * ((x > min_val) & (x < max_val))"),
                      "torch": ("A.hardtanh.out(x, min_val, max_val, out=o)",
                                "A.hardtanh_backward.grad_input(g, x, min_val, max_val, grad_input=o)")}),
    Activation("relu6", "ReLU6", (), _fixed("hardtanh", min_val=0.0, max_val=6.0), "clip(x, 0, 6)",
               torch="F.relu6(x)", torch_module="ReLU6", kinks=lambda: (6.0,),
               peers={"numpy": ("np.clip(x, 0, 6)", "g * ((x > 0) & (x < 6))"),
                      "torch": ("A.hardtanh.out(x, 0.0, 6.0, out=o)",
                                "A.hardtanh_backward.grad_input(g, x, 0.0, 6.0, grad_input=o)")}),
    Activation("hardsigmoid", "Hardsigmoid", (), _fixed("hardsigmoid", lo=-3.0, hi=3.0, width=6.0, slope=1 / 6),
               "clip(x / 6 + 1 / 2, 0, 1)", torch="F.hardsigmoid(x)",
               torch_module="Hardsigmoid", torch_grad="((x > -3) & (x < 3)).to(x.dtype) / 6",
               kinks=lambda: (-3.0, 3.0), aliases=("hard_sigmoid",),
               peers={"numpy": ("np.clip(x / 6 + 0.5, 0, 1)", "g * ((x > -3) & (x < 3)) / 6"),
                      "torch": ("A.hardsigmoid.out(x, out=o)",
                                "A.hardsigmoid_backward.grad_input(g, x, grad_input=o)")}),
    Activation("hardswish", "Hardswish", (), _fixed("hardswish"), "x * hardsigmoid(x)",
               torch="F.hardswish(x)", torch_module="Hardswish",
               kinks=lambda: (-3.0, 3.0, -1.5), aliases=("hard_silu", "hard_swish"),  # -1.5: f' = 0
               peers={"numpy": ("x * np.clip(x + 3, 0, 6) / 6",
                                "g * np.where(x <= -3, 0, np.where(x < 3, x / 3 + 0.5, 1))"),
                      "torch": ("A.hardswish.out(x, out=o)", "A.hardswish_backward.out(g, x, out=o)")}),
    Activation("softsign", "Softsign", (), _fixed("softsign"), "x / (1 + |x|)",
               torch="F.softsign(x)", torch_module="Softsign", aliases=("soft_sign",),
               peers={"numpy": ("x / (1 + np.abs(x))", "g / (1 + np.abs(x)) ** 2"),
                      "torch": ("F.softsign(x)", "g / (1 + x.abs()).square()")}),
    Activation("logsigmoid", "LogSigmoid", (), _fixed("logsigmoid"), "log(sigmoid(x))",
               torch="F.logsigmoid(x)", torch_module="LogSigmoid", aliases=("log_sigmoid",),
               peers={"numpy": ("-np.logaddexp(0, -x)", "g / (1 + np.exp(x))"),
                      "torch": ("torch._C._nn.log_sigmoid(x, out=o)",
                                "A.log_sigmoid_backward.grad_input(g, x, saved(A.log_sigmoid_forward, x)[1], grad_input=o)")}),
    Activation("tanhshrink", "Tanhshrink", (), _fixed("tanhshrink"), "x - tanh(x)",
               torch="F.tanhshrink(x)", torch_module="Tanhshrink", aliases=("tanh_shrink",),
               peers={"numpy": ("x - np.tanh(x)", "g * np.tanh(x) ** 2"),
                      "torch": ("F.tanhshrink(x)", "g * torch.tanh(x).square()")}),
    Activation("softshrink", "Softshrink", (("lambd", 0.5),), _softshrink,
               "x - lambd if x > lambd, x + lambd if x < -lambd, else 0",
               torch="F.softshrink(x, lambd)", torch_module="Softshrink",
               kinks=lambda lambd: (lambd, -lambd),
               param_docs=("half-width of the band mapped to 0; >= 0",),
               peers={"numpy": ("np.where(x > lambd, x - lambd, np.where(x < -lambd, x + lambd, 0))",
                                "g * (np.abs(x) > lambd)"),
                      "torch": ("A.softshrink.out(x, lambd, out=o)",
                                "A.softshrink_backward.grad_input(g, x, lambd, grad_input=o)")}),
    Activation("hardshrink", "Hardshrink", (("lambd", 0.5),),
               lambda lambd: ("hardshrink", dict(lambd=_check("lambd", lambd))),
               "x if |x| > lambd else 0", torch="F.hardshrink(x, lambd)",
               torch_module="Hardshrink", kinks=lambda lambd: (lambd, -lambd),
               param_docs=("half-width of the band mapped to 0; any real number (negative: the identity)",),
               peers={"numpy": ("np.where(np.abs(x) > lambd, x, 0)", "g * (np.abs(x) > lambd)"),
                      "torch": ("A.hardshrink.out(x, lambd, out=o)",
                                "A.hardshrink_backward.grad_input(g, x, lambd, grad_input=o)")}),
    Activation("threshold", "Threshold", (("threshold", REQUIRED), ("value", REQUIRED)),
               lambda threshold, value: ("threshold", dict(threshold=_check("threshold", threshold),
                                                           value=_check("value", value))),
               "x if x > threshold else value", torch="F.threshold(x, threshold, value)",
               torch_module="Threshold", kinks=lambda threshold, value: (threshold,),
               param_docs=("x above which the input passes; any real number",
                           "the value where x <= threshold; any real number"),
               peers={"numpy": ("np.where(x > threshold, x, value)", "g * (x > threshold)"),
                      "torch": ("A.threshold.out(x, threshold, value, out=o)",
                                "A.threshold_backward.grad_input(g, x, threshold, grad_input=o)")}),
    # jax.nn, Keras, ONNX
    Activation("squareplus", "Squareplus", (("b", 4.0),), _squareplus,
               "(x + sqrt(x^2 + b)) / 2 (jax.nn.squareplus)",
               torch="0.5 * (x + torch.sqrt(x * x + b))",
               param_docs=("smoothness near 0; > 0 (b -> 0 approaches relu)",),
               peers={"numpy": ("0.5 * (x + np.sqrt(x * x + b))",
                                "g * 0.5 * (1 + x / np.sqrt(x * x + b))")}),
    Activation("sparse_plus", "SparsePlus", (), _fixed("sparse_plus"),
               "0 for x <= -1, (x + 1)^2 / 4 for -1 < x < 1, x for x >= 1 (jax.nn.sparse_plus)",
               torch="torch.where(x <= -1, 0.0, torch.where(x >= 1, x, (x + 1) ** 2 / 4))",
               kinks=lambda: (-1.0, 1.0),
               peers={"numpy": ("np.where(x <= -1, 0, np.where(x >= 1, x, (x + 1) ** 2 / 4))",
                                "g * np.where(x <= -1, 0, np.where(x >= 1, 1, (x + 1) / 2))")}),
    Activation("sparse_sigmoid", "SparseSigmoid", (), _fixed("hardsigmoid", lo=-1.0, hi=1.0, width=2.0, slope=0.5),
               "clip((x + 1) / 2, 0, 1) (jax.nn.sparse_sigmoid); f' = 0 at +-1",
               torch="torch.where(x >= 1, 1.0, torch.where(x > -1, (x + 1) / 2, "
                     "torch.where(x <= -1, 0.0, x)))",
               kinks=lambda: (-1.0, 1.0),
               peers={"numpy": ("np.clip((x + 1) / 2, 0, 1)", "g * ((x > -1) & (x < 1)) / 2")}),
    Activation("swish", "Swish", (("beta", 1.0),),
               lambda beta: ("silu", dict(beta=_check("beta", beta))),
               "x * sigmoid(beta x) (ONNX Swish, Keras swish; beta = 1 is silu)",
               torch="x * torch.sigmoid(beta * x)",
               crossings=lambda beta: (SILU_ZERO / beta,) if beta else (),
               param_docs=("slope inside the sigmoid; any real number (0: x / 2)",),
               peers={"numpy": ("x * sig(beta * x)",
                                "g * (s := sig(beta * x)) * (1 + beta * x * (1 - s))")}),
    Activation("quick_gelu", "QuickGELU", (), _fixed("silu", beta=QUICK_GELU_BETA),
               "x * sigmoid(1.702 x) (the GELU approximation of CLIP)",
               torch="x * torch.sigmoid(1.702 * x)",
               crossings=lambda: (SILU_ZERO / QUICK_GELU_BETA,),
               peers={"numpy": ("x * sig(1.702 * x)",
                                "g * (s := sig(1.702 * x)) * (1 + 1.702 * x * (1 - s))")}),
    Activation("exponential", "Exponential", (), _fixed("exponential"),
               "exp(x) (Keras exponential)", torch="torch.exp(x)",
               peers={"numpy": ("np.exp(x)", "g * np.exp(x)"),
                      "torch": ("torch.exp(x, out=o)", "torch.mul(g, y, out=o)")}),
    Activation("clipped_relu", "ClippedReLU",
               (("negative_slope", 0.0), ("max_value", None), ("threshold", 0.0)), _clipped_relu,
               "Keras's relu: negative_slope (x - threshold) for x <= threshold, else "
               "min(x, max_value)",
               torch="torch.where(x > threshold, x if max_value is None else "
                     "torch.where(x >= max_value, max_value, x), negative_slope * (x - threshold))",
               kinks=lambda negative_slope, max_value, threshold:
                   (threshold,) + (() if max_value is None else (max_value,)),
               param_docs=("slope below threshold; any real number",
                           "the largest value; any real number, None: no limit",
                           "x at and below which the slope applies; any real number"),
               peers={"numpy": ("np.where(x > threshold, np.minimum(x, np.inf if max_value is "
                                "None else max_value), negative_slope * (x - threshold))",
                                "g * np.where(x > threshold, x < (np.inf if max_value is None "
                                "else max_value), negative_slope)")}),
)
ACTIVATIONS_BY_NAME = {a.name: a for a in ACTIVATIONS_TABLE}
ALIASES = {alias: a.name for a in ACTIVATIONS_TABLE for alias in a.aliases}


# ---- Beyond elementwise: gated units and prelu (docs/gated.md) ----
# Their compiled code is segment loops (fastact/_src/fa_gated.h): one C function per
# name below and dtype, in this order in each kernel module's segment table.

@dataclass(frozen=True)
class GatedKernel:
    name: str          # fa_<name>_<entry>_seg_<t> in fa_gated_impl.h (FA_GATED lines)
    f: str             # the elementwise kernel of the gate: its math, cost and threads
    params: Tuple[float, ...] = ()   # f's parameters (the C code has them as literals)


GATED_KERNELS = (GatedKernel("glu", "sigmoid"), GatedKernel("swiglu", "silu", (1.0,)),
                 GatedKernel("geglu", "gelu"), GatedKernel("geglu_tanh", "gelu_tanh"),
                 GatedKernel("reglu", "relu"))
GATED_ENTRIES = ("fwd", "grad", "bwd", "fb", "fbg")
# prelu with one weight per segment (s) or per element (v); the w entries also sum the
# weight's gradient
PRELU_ENTRIES = ("fwd", "grad", "bwd", "fb", "fbg", "bwdw", "fbw", "fbgw")
SEGMENTS = (tuple(f"{k.name}_{e}" for k in GATED_KERNELS for e in GATED_ENTRIES)
            + tuple(f"prelu_{m}_{e}" for m in "sv" for e in PRELU_ENTRIES))
SEGMENT_INDEX = {name: i for i, name in enumerate(SEGMENTS)}


def _approximate(approximate):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return "geglu" if approximate == "none" else "geglu_tanh"


@dataclass(frozen=True)
class Gated:
    """A gated unit: y = a * f(gate), a and gate the halves of x along dim (or two
    arrays)."""
    name: str
    cls_name: str
    f: str                   # the gate's activation (its name in ACTIVATIONS_TABLE)
    params: Tuple[Tuple[str, object], ...]  # after dim: (name, default), in order
    prepare: Callable        # validated params -> the GATED_KERNELS name
    # PyTorch: y as an expression in a, gate, the params, torch and F, and the
    # torch.nn class it mirrors (None: none)
    torch: str
    torch_module: Optional[str] = None
    param_docs: Tuple[str, ...] = ()
    # the benchmark's NumPy peer: (f(gate), f'(gate)) as expressions in gate and the
    # params (fastact.bench's NUMPY_SCOPE)
    numpy: Tuple[str, str] = ("", "")

    @property
    def param_names(self):
        return tuple(name for name, _ in self.params)

    def kernel_for(self, values):
        return GATED_KERNELS[[k.name for k in GATED_KERNELS].index(self.prepare(*values))]


_GELU_NP = ("0.5 * gate * (1 + erf(gate / SQRT2)) if approximate == 'none' else "
            "0.5 * gate * (1 + np.tanh(GELU_C * (gate + 0.044715 * gate ** 3)))",
            "0.5 * (1 + erf(gate / SQRT2)) + gate * np.exp(-0.5 * gate * gate) / SQRT_2PI "
            "if approximate == 'none' else (0.5 * (1 + (t := np.tanh(GELU_C * (gate + 0.044715 "
            "* gate ** 3)))) + 0.5 * gate * (1 - t * t) * GELU_C * (1 + 3 * 0.044715 * gate * gate))")
GATED_TABLE = (
    Gated("glu", "GLU", "sigmoid", (), lambda: "glu", "a * torch.sigmoid(gate)", "GLU",
          numpy=("sig(gate)", "(s := sig(gate)) * (1 - s)")),
    Gated("swiglu", "SwiGLU", "silu", (), lambda: "swiglu", "a * F.silu(gate)",
          numpy=("gate * sig(gate)", "(s := sig(gate)) * (1 + gate * (1 - s))")),
    Gated("geglu", "GeGLU", "gelu", (("approximate", "none"),), _approximate,
          "a * F.gelu(gate, approximate=approximate)",
          param_docs=("'none' (the erf form) or 'tanh'",), numpy=_GELU_NP),
    Gated("reglu", "ReGLU", "relu", (), lambda: "reglu", "a * F.relu(gate)",
          numpy=("np.maximum(gate, 0)", "(gate > 0).astype(gate.dtype)")),
)
GATED_BY_NAME = {g.name: g for g in GATED_TABLE}


# ---------------------------------------------------------------------------------------
# The softmax family (docs/softmax.md): a reduction along one axis, then a write. The
# kernels (fastact/_src/fa_softmax.h) take the sign of x (softmin = softmax of -x) and
# one of the ops: fwd (x -> y), bwdy (grad_output, y -> grad_x), bwdx (grad_output,
# x -> grad_x), fb (grad_output, x -> y, grad_x).

SOFTMAX_OPS = ("fwd", "bwdy", "bwdx", "fb")


@dataclass(frozen=True)
class Softmax:
    """One function of the family: its name, class, the kernel it runs (softmax or
    log_softmax) with the sign of x, and its peers' expressions in x (and g, y, axis;
    the bench's scopes): PyTorch's, NumPy's, SciPy's (fastact.bench)."""
    name: str
    cls_name: str
    log: bool
    sign: float
    torch: str
    numpy: str
    scipy: str


SOFTMAX_TABLE = (
    Softmax("softmax", "Softmax", False, 1.0, "torch.softmax(x, dim)",
            "(e := np.exp(x - x.max(axis, keepdims=True))) / e.sum(axis, keepdims=True)",
            "scipy.special.softmax(x, axis)"),
    Softmax("log_softmax", "LogSoftmax", True, 1.0, "torch.log_softmax(x, dim)",
            "(d := x - x.max(axis, keepdims=True)) - np.log(np.exp(d).sum(axis, keepdims=True))",
            "scipy.special.log_softmax(x, axis)"),
    Softmax("softmin", "Softmin", False, -1.0, "F.softmin(x, dim)",
            "(e := np.exp(x.min(axis, keepdims=True) - x)) / e.sum(axis, keepdims=True)",
            "scipy.special.softmax(-x, axis)"),
)
SOFTMAX_FUNCS = tuple(s.name for s in SOFTMAX_TABLE)
SOFTMAX_BY_NAME = {s.name: s for s in SOFTMAX_TABLE}
