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
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

NPARAMS = 5   # p0..p4 of every kernel


@dataclass(frozen=True)
class Kernel:
    name: str
    cost: int          # work per element, relu = 1: one thread below GRAIN / cost elements
    y_form: Optional[Callable[[tuple], bool]]   # params -> whether f' can be taken from y
    # (parameter index, value): a common value that gets its own loop with the value as a
    # compile-time constant (the C code has a cheaper path for it, see FA_KNOWN)
    common: Optional[Tuple[int, float]] = None


def _always(p):
    return True


KERNELS = (
    Kernel("sigmoid", 8, _always),
    Kernel("tanh", 8, _always),
    Kernel("linear", 1, _always),
    Kernel("relu", 1, _always),
    Kernel("leaky_relu", 1, lambda p: p[0] >= 0),          # slope >= 0: sign(y) = sign(x)
    Kernel("elu", 8, lambda p: p[0] * p[3] >= 0 and p[1] > 0, common=(2, 1.0)),  # p2 = 1: elu, selu
    Kernel("gelu", 16, None),
    Kernel("gelu_tanh", 16, None),
    Kernel("silu", 8, None),
    Kernel("softplus", 12, None, common=(0, 1.0)),         # beta = 1
    Kernel("mish", 12, None),
    Kernel("hardtanh", 1, _always),
    Kernel("hardsigmoid", 1, None),
    Kernel("hardswish", 1, None),
    Kernel("softsign", 2, None),
    Kernel("logsigmoid", 8, None),
    Kernel("tanhshrink", 12, None),
    Kernel("softshrink", 1, None),
    Kernel("hardshrink", 1, None),
    Kernel("threshold", 1, None),
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
    """The statement for element i of a loop of kernel x entry x dtype (suffix 'f32' or
    'f64'); constant=True: with the kernel's common parameter value as a literal."""
    params = [f"p{i}" for i in range(NPARAMS)]
    if constant:
        index, value = kernel.common
        params[index] = repr(value)
    return ENTRY_CODE[entry][2].format(k=kernel.name, s=suffix, p=", ".join(params))

REQUIRED = object()   # default of a parameter that has none

# PyTorch's SELU constants (torch/nn/modules/activation.py) and their product.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
SELU_ALPHA_SCALE = 1.7580993408473768599402175208123   # correctly rounded product


@dataclass(frozen=True)
class Activation:
    name: str                        # function name, as torch.nn.functional
    cls_name: str                    # class name, as torch.nn
    params: Tuple[Tuple[str, object], ...]   # (name, default or REQUIRED), in order
    prepare: Callable                # validated params -> (kernel name, kernel params)
    formula: str                     # one line for docstrings and README
    # params (by name, defaults filled in) -> the points where f or f' changes formula,
    # and those where f' crosses zero (tests and docs take them from here)
    kinks: Callable = lambda **p: ()
    crossings: Callable = lambda **p: ()
    # per parameter, in order: what it means and which values are valid (docstrings)
    param_docs: Tuple[str, ...] = ()

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


def _check(name, value):
    """A parameter as a float: a real number, not NaN."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name} must not be NaN")
    return value


def _elu(alpha):
    alpha = _check("alpha", alpha)
    return "elu", (alpha, 1.0, 1.0, 1.0, alpha)


def _celu(alpha):
    alpha = _check("alpha", alpha)
    if alpha == 0:
        raise ValueError("alpha must not be 0 for celu")
    return "elu", (alpha, 1.0, alpha, 1.0 / alpha, 1.0)


def _gelu(approximate):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return ("gelu" if approximate == "none" else "gelu_tanh"), ()


def _softplus(beta, threshold):
    beta, threshold = _check("beta", beta), _check("threshold", threshold)
    if beta == 0:
        raise ValueError("beta must not be 0 for softplus")
    return "softplus", (beta, threshold)


def _hardtanh(min_val, max_val):
    lo, hi = _check("min_val", min_val), _check("max_val", max_val)
    if lo > hi:
        raise ValueError(f"min_val ({lo}) must not exceed max_val ({hi})")
    return "hardtanh", (lo, hi)


def _softshrink(lambd):
    lambd = _check("lambd", lambd)
    if lambd < 0:
        raise ValueError(f"lambd must be >= 0 for softshrink, got {lambd}")
    return "softshrink", (lambd,)


def _fixed(kernel, *params):
    return lambda: (kernel, params)


ACTIVATIONS_TABLE = (
    Activation("sigmoid", "Sigmoid", (), _fixed("sigmoid"), "1 / (1 + exp(-x))"),
    Activation("tanh", "Tanh", (), _fixed("tanh"), "tanh(x)"),
    Activation("linear", "Linear", (), _fixed("linear"), "x (identity)"),
    Activation("relu", "ReLU", (), _fixed("relu"), "max(x, 0)"),
    Activation("leaky_relu", "LeakyReLU", (("negative_slope", 0.01),),
               lambda negative_slope: ("leaky_relu", (_check("negative_slope", negative_slope),)),
               "x if x > 0 else negative_slope * x",
               param_docs=("slope for x <= 0; any real number (negative: an odd-looking but valid slope)",)),
    Activation("elu", "ELU", (("alpha", 1.0),), _elu, "x if x > 0 else alpha * (exp(x) - 1)",
               param_docs=("scale of the negative part; any real number",)),
    Activation("gelu", "GELU", (("approximate", "none"),), _gelu,
               "x * Phi(x) (approximate='tanh': 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))))",
               crossings=lambda approximate: (-0.7524 if approximate == "tanh" else -0.7518,),
               param_docs=("'none': the exact x Phi(x); 'tanh': PyTorch's tanh approximation",)),
    Activation("silu", "SiLU", (), _fixed("silu"), "x * sigmoid(x) (swish)",
               crossings=lambda: (-1.2785,)),
    Activation("softplus", "Softplus", (("beta", 1.0), ("threshold", 20.0)), _softplus,
               "log(1 + exp(beta x)) / beta, x where beta x > threshold",
               kinks=lambda beta, threshold: (threshold / beta,),
               param_docs=("sharpness; any nonzero real number (negative: the mirror image)", "beta x above which the result is x; any real number")),
    Activation("mish", "Mish", (), _fixed("mish"), "x * tanh(softplus(x))",
               crossings=lambda: (-1.1924,)),
    Activation("selu", "SELU", (),
               _fixed("elu", SELU_ALPHA_SCALE, SELU_SCALE, 1.0, 1.0, SELU_ALPHA_SCALE),
               "scale * elu(x, alpha), PyTorch's alpha and scale"),
    Activation("celu", "CELU", (("alpha", 1.0),), _celu,
               "x if x > 0 else alpha * (exp(x / alpha) - 1)",
               param_docs=("scale of the negative part and of its exponent; any nonzero real number",)),
    Activation("hardtanh", "Hardtanh", (("min_val", -1.0), ("max_val", 1.0)), _hardtanh,
               "clip(x, min_val, max_val)", kinks=lambda min_val, max_val: (min_val, max_val),
               param_docs=("lower bound; any real number, at most max_val", "upper bound; any real number, at least min_val")),
    Activation("relu6", "ReLU6", (), _fixed("hardtanh", 0.0, 6.0), "clip(x, 0, 6)",
               kinks=lambda: (6.0,)),
    Activation("hardsigmoid", "Hardsigmoid", (), _fixed("hardsigmoid", -3.0, 3.0),
               "clip(x / 6 + 1 / 2, 0, 1)", kinks=lambda: (-3.0, 3.0)),
    Activation("hardswish", "Hardswish", (), _fixed("hardswish"), "x * hardsigmoid(x)",
               kinks=lambda: (-3.0, 3.0, -1.5)),         # -1.5: f' = 0
    Activation("softsign", "Softsign", (), _fixed("softsign"), "x / (1 + |x|)"),
    Activation("logsigmoid", "LogSigmoid", (), _fixed("logsigmoid"), "log(sigmoid(x))"),
    Activation("tanhshrink", "Tanhshrink", (), _fixed("tanhshrink"), "x - tanh(x)"),
    Activation("softshrink", "Softshrink", (("lambd", 0.5),), _softshrink,
               "x - lambd if x > lambd, x + lambd if x < -lambd, else 0",
               kinks=lambda lambd: (lambd, -lambd),
               param_docs=("half-width of the band mapped to 0; >= 0",)),
    Activation("hardshrink", "Hardshrink", (("lambd", 0.5),),
               lambda lambd: ("hardshrink", (_check("lambd", lambd),)),
               "x if |x| > lambd else 0", kinks=lambda lambd: (lambd, -lambd),
               param_docs=("half-width of the band mapped to 0; any real number (negative: the identity)",)),
    Activation("threshold", "Threshold", (("threshold", REQUIRED), ("value", REQUIRED)),
               lambda threshold, value: ("threshold", (_check("threshold", threshold),
                                                       _check("value", value))),
               "x if x > threshold else value", kinks=lambda threshold, value: (threshold,),
               param_docs=("x above which the input passes; any real number", "the value where x <= threshold; any real number")),
)
ACTIVATIONS_BY_NAME = {a.name: a for a in ACTIVATIONS_TABLE}
ALIASES = {"swish": "silu", "identity": "linear"}
