"""The public functions and classes, built from the activation table.

For every activation NAME: NAME, NAME_grad, NAME_backward, NAME_forward_backward and a
class (docs/contract.md, *The API*). The functions are generated from the short templates
below so that each has its real signature (``leaky_relu(x, negative_slope=0.01, *,
out=None)``) and its docstring from fastact._docs; all of them come down to the
``_forward/_backward/_forward_backward`` helpers, each one call of fastact._arrays.compute.
"""
import functools

import numpy as np

from . import _arrays, _docs
from ._activations import ACTIVATIONS_BY_NAME, ACTIVATIONS_TABLE, ALIASES, KERNEL_INDEX, \
    KERNELS, REQUIRED

FWD, GRAD, BWD, BWDY, FB, FBG = range(6)
_X, _GX, _GY = ("x",), ("grad_output", "x"), ("grad_output", "y")
_OUT, _OUT2 = ("out",), ("out", "grad_out")


def _forward(kernel, params, entry, x, out):
    return _arrays.compute(kernel, entry, x, None, out, None, params, _X, _OUT)


def _backward(name, kernel, params, grad_output, x, y, out):
    if y is None:
        if x is None:
            raise TypeError(f"{name}_backward() needs x, or y= (the forward's output)")
        entry, src, names = BWD, x, _GX
    else:
        if x is not None:
            raise TypeError(f"{name}_backward() takes x or y=, not both")
        y_form = KERNELS[kernel].y_form
        if not KERNELS[kernel].takes_y(params):
            raise TypeError(
                f"{name}_backward() cannot take y= here: the derivative is not a function "
                f"of the output" + ("" if y_form is None else " for these parameters")
                + f"; pass x instead, or use {name}_forward_backward to get y and the "
                f"gradient in one pass")
        entry, src, names = BWDY, y, _GY
    return _arrays.compute(kernel, entry, grad_output, src, out, None, params, names, _OUT)


def _forward_backward(kernel, params, x, grad_output, out, grad_out):
    if grad_output is None:
        return _arrays.compute(kernel, FB, x, None, out, grad_out, params, _X, _OUT2)
    return _arrays.compute(kernel, FBG, grad_output, x, out, grad_out, params, _GX, _OUT2)


def plain_values(values):
    """Parameter values with NumPy scalars and 0-d arrays as Python numbers (hashable,
    and what the table validates)."""
    return tuple(v.item() if isinstance(v, (np.ndarray, np.generic)) and np.ndim(v) == 0
                 else v for v in values)


def _preparer(act):
    """Validated parameters -> (kernel index, kernel parameters), cached per value."""
    def uncached(*values):
        kernel, params = act.kernel_for(values)
        return KERNEL_INDEX[kernel.name], params

    cached = functools.lru_cache(maxsize=256)(uncached)

    def prepare(*values):
        try:
            return cached(*values)
        except TypeError:                   # unhashable: a 0-d array, say
            values = plain_values(values)
            try:
                hash(values)
            except TypeError:               # not a number: validation names it
                return uncached(*values)
            return cached(*values)
    return prepare


_TEMPLATES = {     # docstrings: fastact._docs, from the table
    "": '''def {name}(x, {sig}*, out=None):
    {check}kernel, params = _prepare_{name}({args})
    return _forward(kernel, params, FWD, x, out)
''',
    "_grad": '''def {name}_grad(x, {sig}*, out=None):
    {check}kernel, params = _prepare_{name}({args})
    return _forward(kernel, params, GRAD, x, out)
''',
    "_backward": '''def {name}_backward(grad_output, x=None, {sig_opt}*, y=None, out=None):
    {check}kernel, params = _prepare_{name}({args})
    return _backward({name!r}, kernel, params, grad_output, x, y, out)
''',
    "_forward_backward": '''def {name}_forward_backward(x, {sig}*, grad_output=None, out=None, grad_out=None):
    {check}kernel, params = _prepare_{name}({args})
    return _forward_backward(kernel, params, x, grad_output, out, grad_out)
''',
}


def _signature(act, optional):
    parts = []
    for pname, default in act.params:
        if default is REQUIRED:
            parts.append(f"{pname}=_REQUIRED" if optional else pname)
        else:
            parts.append(f"{pname}={default!r}")
    return "".join(p + ", " for p in parts)


def _required_check(act, fname):
    required = [p for p, d in act.params if d is REQUIRED]
    if not required:
        return ""
    cond = " or ".join(f"{p} is _REQUIRED" for p in required)
    return (f"if {cond}:\n        raise TypeError(\"{fname}() missing required argument(s): "
            f"{', '.join(required)}\")\n    ")


def _make_functions(namespace):
    """Define the four functions of every activation in namespace; return their names."""
    names = []
    for act in ACTIVATIONS_TABLE:
        namespace[f"_prepare_{act.name}"] = _preparer(act)
        for suffix, template in _TEMPLATES.items():
            source = template.format(
                name=act.name, sig=_signature(act, False),
                sig_opt=_signature(act, True), args=", ".join(act.param_names),
                check=_required_check(act, act.name + suffix) if suffix == "_backward" else "")
            exec(compile(source, f"<fastact {act.name}{suffix}>", "exec"), namespace)
            fn = namespace[act.name + suffix]
            fn.__module__ = "fastact"
            fn.__doc__ = _docs.function_doc(act, suffix)
            names.append(act.name + suffix)
    return names


class ActivationFunction:
    """Base of the activation classes: an activation with its parameters bound."""

    name = None
    _spec = None

    def __init__(self, *args, **kwargs):
        values = list(args)
        spec = self._spec
        if len(values) > len(spec.params):
            raise TypeError(f"{type(self).__name__}() takes at most {len(spec.params)} "
                            f"arguments ({len(values)} given)")
        for pname, default in spec.params[len(values):]:
            if pname in kwargs:
                values.append(kwargs.pop(pname))
            elif default is REQUIRED:
                raise TypeError(f"{type(self).__name__}() missing required argument: {pname!r}")
            else:
                values.append(default)
        if kwargs:
            raise TypeError(f"{type(self).__name__}() got unexpected argument(s) "
                            f"{', '.join(map(repr, kwargs))}")
        self._set(plain_values(values))

    def _set(self, values):
        kernel, params = _PREPARE[self.name](*values)      # validates
        object.__setattr__(self, "_values", values)
        object.__setattr__(self, "_kernel", kernel)
        object.__setattr__(self, "_params", params)

    def __setattr__(self, attr, value):
        """Assigning a parameter (``act.alpha = 2.0``) validates it as the constructor
        does and computes with it from then on."""
        names = self._spec.param_names
        if attr in names:
            i = names.index(attr)
            self._set(plain_values(self._values[:i] + (value,) + self._values[i + 1:]))
        else:
            object.__setattr__(self, attr, value)

    @property
    def params(self):
        """The parameters, as a dict."""
        return dict(zip(self._spec.param_names, self._values))

    def __getattr__(self, attr):
        spec = type(self)._spec
        if spec is not None and attr in spec.param_names:
            return self._values[spec.param_names.index(attr)]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {attr!r}")

    def __call__(self, x, *, out=None):
        """The forward, f(x)."""
        return _forward(self._kernel, self._params, FWD, x, out)

    def gradient(self, x, *, out=None):
        """The derivative f'(x), elementwise."""
        return _forward(self._kernel, self._params, GRAD, x, out)

    def backward(self, grad_output, x=None, *, y=None, out=None):
        """grad_output * f'(x), from x or (where possible) from y = f(x)."""
        return _backward(self.name, self._kernel, self._params, grad_output, x, y, out)

    def forward_backward(self, x, *, grad_output=None, out=None, grad_out=None):
        """(f(x), f'(x)), or (f(x), grad_output * f'(x)), in one pass."""
        return _forward_backward(self._kernel, self._params, x, grad_output, out, grad_out)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in zip(self._spec.param_names, self._values))
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self._values == other._values

    def __hash__(self):
        return hash((type(self).__name__, self._values))

    def __reduce__(self):
        return type(self), self._values


_PREPARE = {}


def _make_classes(namespace):
    names = []
    for act in ACTIVATIONS_TABLE:
        _PREPARE[act.name] = namespace[f"_prepare_{act.name}"]
        cls = type(act.cls_name, (ActivationFunction,), {
            "name": act.name, "_spec": act, "__module__": "fastact",
            "__doc__": _docs.class_doc(act), "__signature__": _docs.class_signature(act)})
        namespace[act.cls_name] = cls
        names.append(act.cls_name)
    return names


def _build(namespace):
    namespace.update(FWD=FWD, GRAD=GRAD, _REQUIRED=REQUIRED, _forward=_forward,
                     _backward=_backward, _forward_backward=_forward_backward)
    return _make_functions(namespace) + _make_classes(namespace)


_NAMESPACE = {}
PUBLIC = _build(_NAMESPACE)
ACTIVATIONS = tuple(a.name for a in ACTIVATIONS_TABLE)
_BY_ANY_NAME = {**{a.name: a.name for a in ACTIVATIONS_TABLE},
                **{a.cls_name.lower(): a.name for a in ACTIVATIONS_TABLE}, **ALIASES}


_OTHER_CLASSES = {}     # name -> class of the gated, weighted (fastact._api_gated)


def register_classes(classes):
    """Make fastact.get know the classes beyond elementwise ({function name: class})."""
    _OTHER_CLASSES.update(classes)
    _BY_ANY_NAME.update({**{n: n for n in classes},
                         **{c.__name__.lower(): n for n, c in classes.items()}})


def get(name, **params):
    """The activation object for a name: ``get("elu", alpha=0.5) == ELU(alpha=0.5)``.
    Accepts function names, class names (any case) and the aliases 'swish', 'identity'."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    key = _BY_ANY_NAME.get(name) or _BY_ANY_NAME.get(name.lower().replace("-", "_"))
    if key is None:
        raise ValueError(f"unknown activation {name!r}; choose from "
                         f"{', '.join(ACTIVATIONS + tuple(_OTHER_CLASSES))}")
    if key in _OTHER_CLASSES:
        return _OTHER_CLASSES[key](**params)
    return _NAMESPACE[ACTIVATIONS_BY_NAME[key].cls_name](**params)
