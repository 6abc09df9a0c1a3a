"""The public functions and classes of the gated units, prelu and rrelu (docs/gated.md).

The gated units are generated from fastact._activations.GATED_TABLE (templates below,
so each function has its real signature); prelu and rrelu are written out. All of them
come down to fastact._gated (arrays, backends).
"""
import functools
import inspect

import numpy as np

from . import _api, _docs, _gated
from ._activations import GATED_KERNELS, GATED_TABLE, PRELU_ENTRIES, _check

FWD, GRAD, BWD, FB, FBG = range(5)
P_FWD, P_GRAD, P_BWD, P_FB, P_FBG, P_BWDW, P_FBW, P_FBGW = range(len(PRELU_ENTRIES))
_KERNEL_INDEX = {k.name: i for i, k in enumerate(GATED_KERNELS)}


def _is_gate(dim):
    """Whether the argument after x is the gate (an array) rather than the dim."""
    return not (dim is None or _gated._arrays.as_index(dim) is not None)


def _call(spec_name, kernel, entry, g, x, dim, axis, out, grad_out):
    if _is_gate(dim):
        if isinstance(dim, (float, bool, complex, np.floating, np.bool_)) and np.ndim(x):
            # a scalar cannot be the gate of an array a: a dim of the wrong type (as
            # PyTorch's TypeError for F.glu(x, 1.0))
            raise TypeError(f"{spec_name}: the argument after x is dim (an integer) or the "
                            f"gate (an array of a's shape), got {type(dim).__name__} {dim!r}")
        if axis is not None:
            raise TypeError(f"{spec_name}(a, gate) takes no dim or axis (the two-array form)")
        return _gated.pair(kernel, entry, g, x, dim, out, grad_out, spec_name)
    return _gated.split(kernel, entry, g, x, dim, axis, out, grad_out, spec_name)


def _kernel_of(spec):
    @functools.lru_cache(maxsize=64)
    def kernel(*values):
        return _KERNEL_INDEX[spec.prepare(*values)]
    return kernel


_TEMPLATES = {
    "": '''def {name}(x, dim=-1, {sig}*, axis=None, out=None):
    return _call({name!r}, _kernel_{name}({args}), FWD, None, x, dim, axis, out, None)
''',
    "_grad": '''def {name}_grad(x, dim=-1, {sig}*, axis=None, out=None):
    return _call({name!r}, _kernel_{name}({args}), GRAD, None, x, dim, axis, out, None)
''',
    "_backward": '''def {name}_backward(grad_output, x, dim=-1, {sig}*, axis=None, out=None):
    return _call({name!r}, _kernel_{name}({args}), BWD, grad_output, x, dim, axis, out, None)
''',
    "_forward_backward": '''def {name}_forward_backward(x, dim=-1, {sig}*, axis=None, grad_output=None,
                                out=None, grad_out=None):
    return _call({name!r}, _kernel_{name}({args}), FB if grad_output is None else FBG,
                 grad_output, x, dim, axis, out, grad_out)
''',
}

_DOCS = {
    "": "y = {formula}: one array x split in halves (a, gate) along dim, or two arrays "
        "(a, gate).",
    "_grad": "The gradient of sum({name}(...)): x's shape, or (grad_a, grad_gate).",
    "_backward": "The gradient for grad_output: grad_x (x's shape), or (grad_a, grad_gate) "
                 "in the two-array form.",
    "_forward_backward": "(y, grad_x), or (y, grad_a, grad_gate) in the two-array form, "
                         "in one pass (grad_output all ones when not given).",
}

_FORMULAS = {"glu": "a * sigmoid(gate)", "swiglu": "a * silu(gate)",
             "geglu": "a * gelu(gate, approximate)", "reglu": "a * relu(gate)"}


def _make_gated(namespace):
    names = []
    for spec in GATED_TABLE:
        namespace[f"_kernel_{spec.name}"] = _kernel_of(spec)
        sig = "".join(f"{p}={d!r}, " for p, d in spec.params)
        for suffix, template in _TEMPLATES.items():
            source = template.format(name=spec.name, sig=sig, args=", ".join(spec.param_names))
            exec(compile(source, f"<fastact {spec.name}{suffix}>", "exec"), namespace)
            fn = namespace[spec.name + suffix]
            fn.__module__ = "fastact"
            fn.__doc__ = (_DOCS[suffix].format(formula=_FORMULAS[spec.name], name=spec.name)
                          + "\n\nSee docs/gated.md for the forms, out= and accuracy.")
            names.append(spec.name + suffix)
    return names


class GatedFunction(_api.Reassignable):
    """Base of the gated classes: a gated unit with its dim (and parameters) bound.
    ``act(x)`` splits x along dim; ``act(a, gate)`` takes the two halves."""

    name = None
    _spec = None

    def __init__(self, dim=-1, *args, axis=None, **kwargs):
        if self._spec is None:
            raise TypeError(f"{type(self).__name__} is a base class: make GLU, SwiGLU, GeGLU "
                            f"or ReGLU")
        if axis is not None:                                      # as the functions take it
            dim = _gated.resolve_dim(dim, axis, type(self).__name__)
        values = list(args)
        for pname, default in self._spec.params[len(values):]:
            values.append(kwargs.pop(pname, default))
        if kwargs or len(values) > len(self._spec.params):
            raise TypeError(f"{type(self).__name__}() takes dim (or axis) and "
                            f"{', '.join(self._spec.param_names) or 'no other argument'}")
        index = _gated._arrays.as_index(dim)
        if index is None:
            raise TypeError(f"dim must be an integer, got {type(dim).__name__}")
        self._kernel = _NAMESPACE[f"_kernel_{self.name}"](*values)
        self.dim = index
        self._values = tuple(values)

    axis = _api.alias("dim", "dim, by NumPy's name (as the functions take it)")

    def _run(self, entry, g, x, gate, out, grad_out):
        return _call(self.name, self._kernel, entry, g, x,
                     self.dim if gate is None else gate, None, out, grad_out)

    def __call__(self, x, gate=None, *, out=None):
        """The forward: y from x (split along dim), or from (a, gate)."""
        return self._run(FWD, None, x, gate, out, None)

    def gradient(self, x, gate=None, *, out=None):
        """The gradient of sum(y): x's shape, or (grad_a, grad_gate)."""
        return self._run(GRAD, None, x, gate, out, None)

    def backward(self, grad_output, x, gate=None, *, out=None):
        """grad_x, or (grad_a, grad_gate) for the two-array form."""
        return self._run(BWD, grad_output, x, gate, out, None)

    def forward_backward(self, x, gate=None, *, grad_output=None, out=None, grad_out=None):
        """(y, grad_x), or (y, grad_a, grad_gate), in one pass."""
        return self._run(FB if grad_output is None else FBG, grad_output, x, gate, out,
                         grad_out)

    @property
    def params(self):
        return dict(dim=self.dim, **dict(zip(self._spec.param_names, self._values)))

    def __getattr__(self, attr):
        spec = type(self)._spec
        if spec is not None and attr in spec.param_names and "_values" in self.__dict__:
            return self._values[spec.param_names.index(attr)]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {attr!r}")

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params.items())})"

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return (self.dim, self._values) == (other.dim, other._values)

    def __hash__(self):
        return hash((type(self).__name__, self.dim, self._values))

    def __reduce__(self):
        return type(self), (self.dim,) + self._values


def _make_gated_classes(namespace):
    names = []
    for spec in GATED_TABLE:
        P = inspect.Parameter
        signature = inspect.Signature(              # what __init__'s *args, **kwargs take
            [P("dim", P.POSITIONAL_OR_KEYWORD, default=-1)]
            + [P(p, P.POSITIONAL_OR_KEYWORD, default=d) for p, d in spec.params]
            + [P("axis", P.KEYWORD_ONLY, default=None)])
        cls = type(spec.cls_name, (GatedFunction,), {
            "name": spec.name, "_spec": spec, "__module__": "fastact",
            "__signature__": _docs._ClassSignature(signature),
            "__doc__": f"{spec.cls_name}(dim=-1"
                       + "".join(f", {p}={d!r}" for p, d in spec.params)
                       + f"): y = {_FORMULAS[spec.name]} (docs/gated.md)."})
        namespace[spec.cls_name] = cls
        names.append(spec.cls_name)
    return names


# ---- prelu ----

def _pair_out(out, name):
    if out is None:
        return (None, None)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError(f"{name} must be a pair of arrays (grad_x, grad_weight) or None")
    return out


def prelu(x, weight, *, out=None):
    """x where x > 0, else weight * x; weight: one value, or one per channel (dim 1)."""
    y = _gated.prelu_fast(x, weight) if out is None else None
    return y if y is not None else _gated.weighted(P_FWD, None, x, weight, (out,), ("out",))


def prelu_grad(x, weight, *, out=None):
    """dy/dx: 1 where x > 0, else the channel's weight."""
    return _gated.weighted(P_GRAD, None, x, weight, (out,), ("out",))


def prelu_backward(grad_output, x, weight, *, out=None):
    """(grad_x, grad_weight); grad_weight summed over all but the channel axis, in a
    fixed order (the same bits for any thread count). out: a pair or None."""
    return _gated.weighted(P_BWDW, grad_output, x, weight, _pair_out(out, "out"),
                           ("out[0]", "out[1]"))


def prelu_forward_backward(x, weight, *, grad_output=None, out=None, grad_out=None):
    """(y, grad_x, grad_weight) in one pass (grad_output all ones when not given)."""
    entry = P_FBW if grad_output is None else P_FBGW
    return _gated.weighted(entry, grad_output, x, weight,
                           (out,) + tuple(_pair_out(grad_out, "grad_out")),
                           ("out", "grad_out[0]", "grad_out[1]"))


class PReLU(_api.Reassignable):
    """PReLU(weight=0.25): prelu with its weight bound (a number or one per channel)."""

    name = "prelu"

    def __init__(self, weight=0.25):
        w = _gated.check_weight(weight, 2, np.size(weight))
        if w.ndim:
            w = w.copy()
            w.flags.writeable = False   # the object's hash and equality stay what they were
        self.weight = w if w.ndim else w.item()

    def __call__(self, x, *, out=None):
        return prelu(x, self.weight, out=out)

    def gradient(self, x, *, out=None):
        return prelu_grad(x, self.weight, out=out)

    def backward(self, grad_output, x, *, out=None):
        """(grad_x, grad_weight)."""
        return prelu_backward(grad_output, x, self.weight, out=out)

    def forward_backward(self, x, *, grad_output=None, out=None, grad_out=None):
        return prelu_forward_backward(x, self.weight, grad_output=grad_output, out=out,
                                      grad_out=grad_out)

    @property
    def params(self):
        return {"weight": self.weight}

    def __repr__(self):
        w = self.weight.tolist() if isinstance(self.weight, np.ndarray) else self.weight
        return f"PReLU(weight={w!r})"

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return np.array_equal(self.weight, other.weight)

    def __hash__(self):
        # by value, as __eq__ compares: -0.0 as 0.0, float32 and float64 alike
        return hash(("PReLU", tuple(float(v) + 0.0 for v in np.ravel(self.weight))))

    def __reduce__(self):
        return PReLU, (self.weight,)


# ---- rrelu ----

def _bounds(lower, upper, training):
    """The bounds checked: numbers, finite (the slopes are drawn between them, their mean
    in evaluation: infinite ones give NaN or infinite slopes), lower <= upper; a NumPy
    scalar or 0-d array as the number it holds."""
    lower, upper = _api.plain_values((lower, upper))
    lower, upper = _check("lower", lower), _check("upper", upper)
    if not (np.isfinite(lower) and np.isfinite(upper)):
        raise ValueError(f"rrelu: lower and upper must be finite, got lower={lower}, "
                         f"upper={upper}")
    if lower > upper:
        raise ValueError(f"rrelu: lower must be <= upper, got lower={lower}, upper={upper}")
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"training must be a bool, got {type(training).__name__}")
    return lower, upper


def mean_slope(lower, upper):
    """rrelu's slope in evaluation, (lower + upper) / 2, without overflow near the
    largest floats."""
    mid = (lower + upper) / 2
    return mid if np.isfinite(mid) else lower / 2 + upper / 2


def _leaky(suffix):
    return _api._NAMESPACE["leaky_relu" + suffix]


def _rrelu(entry, g, x, lower, upper, training, seed, rng, outs, names):
    lower, upper = _bounds(lower, upper, training)
    _gated._arrays.refuse_masked((g, x), "rrelu", _gated._MASKED)     # in both modes
    if not training:
        slope = mean_slope(lower, upper)
        if entry == P_FWD:
            return _leaky("")(x, slope, out=outs[0])
        if entry == P_GRAD:
            return _leaky("_grad")(x, slope, out=outs[0])
        if entry == P_BWD:
            return _leaky("_backward")(g, x, slope, out=outs[0])
        return _leaky("_forward_backward")(x, slope, grad_output=g, out=outs[0],
                                           grad_out=outs[1])
    if _gated._arrays.is_dask(x) or _gated._arrays.is_dask(g):
        raise TypeError("rrelu in training does not take dask arrays (its slopes are one "
                        "random sequence)")
    xa = x if isinstance(x, np.ndarray) else np.asarray(x)
    # the slopes in x's computation dtype, whatever grad_output's: the backward and
    # forward_backward with the forward's seed reuse its slopes (a wider grad_output
    # widens the product only)
    dtype = _gated._result([xa], ("x",))[1]
    slopes = _gated.rrelu_slopes(xa.shape, dtype, lower, upper, seed, rng)
    return _gated.weighted(entry, g, xa, slopes, outs, names, per_element=True)


def rrelu(x, lower=1 / 8, upper=1 / 3, training=False, *, seed=None, rng=None, out=None):
    """PyTorch's randomized leaky ReLU: in training, x <= 0 times a slope drawn uniformly
    from [lower, upper] per element (from rng, else default_rng(seed)); else
    leaky_relu(x, (lower + upper) / 2)."""
    return _rrelu(P_FWD, None, x, lower, upper, training, seed, rng, (out,), ("out",))


def rrelu_grad(x, lower=1 / 8, upper=1 / 3, training=False, *, seed=None, rng=None, out=None):
    """dy/dx: 1 where x > 0, else the element's slope (PyTorch's noise)."""
    return _rrelu(P_GRAD, None, x, lower, upper, training, seed, rng, (out,), ("out",))


def rrelu_backward(grad_output, x, lower=1 / 8, upper=1 / 3, training=False, *, seed=None,
                   rng=None, noise=None, out=None):
    """grad_output * dy/dx; in training the forward's slopes: noise= (rrelu_grad's result)
    or the same seed (an rng in the same state). In evaluation the slope is the bounds'
    mean, noise= or not (as PyTorch's rrelu_with_noise_backward)."""
    if noise is not None and not (isinstance(training, (bool, np.bool_)) and training):
        noise = None                # evaluation (a non-bool training: _bounds's TypeError)
    if noise is not None:
        if seed is not None or rng is not None:
            raise TypeError("rrelu_backward takes noise= or seed/rng, not both")
        _bounds(lower, upper, training)
        arrays = [np.asarray(grad_output), np.asarray(noise), np.asarray(x)]
        result = _gated._arrays.check_inputs(arrays, ("grad_output", "noise", "x"),
                                             _gated._arrays.weak_scalars((grad_output, noise, x)))
        _gated._arrays.check_out(out, "out", arrays[-1].shape, result)
        with np.errstate(all="ignore"):
            r = np.multiply(arrays[0], arrays[1], dtype=result)
        if out is None:
            return r[()] if r.ndim == 0 else r
        np.copyto(out, r)
        return out
    if isinstance(training, (bool, np.bool_)) and training and seed is None and rng is None:
        raise TypeError("rrelu_backward in training needs the forward's slopes: noise= "
                        "(rrelu_grad's result), or the seed= or rng= the forward drew them "
                        "with (new slopes would not be the forward's)")
    return _rrelu(P_BWD, grad_output, x, lower, upper, training, seed, rng, (out,), ("out",))


def rrelu_forward_backward(x, lower=1 / 8, upper=1 / 3, training=False, *, seed=None,
                           rng=None, grad_output=None, out=None, grad_out=None):
    """(y, noise), or (y, grad_output * noise), in one pass."""
    return _rrelu(P_FB if grad_output is None else P_FBG, grad_output, x, lower, upper,
                  training, seed, rng, (out, grad_out), ("out", "grad_out"))


class RReLU(_api.Reassignable):
    """RReLU(lower=1/8, upper=1/3): rrelu with its bounds; the mode and the random source
    are given per call (``act(x, training=True, seed=0)``)."""

    name = "rrelu"

    def __init__(self, lower=1 / 8, upper=1 / 3):
        self.lower, self.upper = _bounds(lower, upper, False)

    def __call__(self, x, *, training=False, seed=None, rng=None, out=None):
        return rrelu(x, self.lower, self.upper, training, seed=seed, rng=rng, out=out)

    def gradient(self, x, *, training=False, seed=None, rng=None, out=None):
        return rrelu_grad(x, self.lower, self.upper, training, seed=seed, rng=rng, out=out)

    def backward(self, grad_output, x, *, training=False, seed=None, rng=None, noise=None,
                 out=None):
        return rrelu_backward(grad_output, x, self.lower, self.upper, training, seed=seed,
                              rng=rng, noise=noise, out=out)

    def forward_backward(self, x, *, training=False, seed=None, rng=None, grad_output=None,
                         out=None, grad_out=None):
        return rrelu_forward_backward(x, self.lower, self.upper, training, seed=seed,
                                      rng=rng, grad_output=grad_output, out=out,
                                      grad_out=grad_out)

    @property
    def params(self):
        return {"lower": self.lower, "upper": self.upper}

    def __repr__(self):
        return f"RReLU(lower={self.lower!r}, upper={self.upper!r})"

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return (self.lower, self.upper) == (other.lower, other.upper)

    def __hash__(self):
        return hash(("RReLU", self.lower, self.upper))

    def __reduce__(self):
        return RReLU, (self.lower, self.upper)


_NAMESPACE = {"FWD": FWD, "GRAD": GRAD, "BWD": BWD, "FB": FB, "FBG": FBG, "_call": _call}
GATED = tuple(spec.name for spec in GATED_TABLE)
WEIGHTED = ("prelu", "rrelu")
PUBLIC = _make_gated(_NAMESPACE) + _make_gated_classes(_NAMESPACE) + [
    f"{n}{s}" for n in WEIGHTED for s in ("", "_grad", "_backward", "_forward_backward")
] + ["PReLU", "RReLU", "GatedFunction"]
_NAMESPACE.update({n: globals()[n] for n in PUBLIC if n in globals()})
CLASSES = {**{spec.name: _NAMESPACE[spec.cls_name] for spec in GATED_TABLE},
           "prelu": PReLU, "rrelu": RReLU}
_api.register_classes(CLASSES)
