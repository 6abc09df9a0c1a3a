"""The public functions and classes, built from the activation table.

For every activation NAME: NAME, NAME_grad, NAME_backward, NAME_forward_backward and a
class (docs/contract.md, *The API*). The functions are generated from the short templates
below so that each has its real signature (``leaky_relu(x, negative_slope=0.01, *,
out=None)``) and its docstring from fastact._docs; each tries the backend's fast path
first and otherwise comes down to the ``_forward/_backward/_forward_backward`` helpers,
each one call of fastact._arrays.compute.
"""
import math

import numpy as np

from . import _arrays, _backend, _docs
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
        k = KERNELS[kernel]
        if not k.takes_y(params):
            raise TypeError(
                f"{name}_backward() cannot take y= here: the derivative is not a function "
                f"of the output" + ("" if k.y_form is None else " for these parameters")
                + f"; pass x instead, or use {name}_forward_backward to get y and the "
                f"gradient in one pass")
        inexact = k.y_exact and k.y_inexact(params, getattr(y, "dtype", None))
        if inexact:
            raise TypeError(
                f"{name}_backward() cannot take a {y.dtype.name} y= here: {inexact[0]}="
                f"{inexact[1]!r} is not a {y.dtype.name} value, so a y at its rounding "
                f"may be clipped or not; pass x instead, or use {name}_forward_backward")
        entry, src, names = BWDY, y, _GY
        if k.y_exact and getattr(y, "dtype", None) == np.float32:
            # f' compares y with the bounds as the float32 forward clipped it: a wider
            # grad_output must not widen them first (0.7 > float32(0.7), a clipped y)
            params = tuple(float(np.float32(v)) if p in k.y_exact else v
                           for p, v in zip(k.params, params))
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


def _cache_guard(act):
    """A Python expression, true when the values of act's parameters (by name) can be
    looked up in its cache by equality: exact str for a str parameter, else exact float or
    int (or None) and not -0.0. bool, complex and NumPy scalars equal to a valid value
    (True == 1) are left to validation."""
    terms = []
    for pname, default in act.params:
        if isinstance(default, str):
            terms.append(f"type({pname}) is str")
        else:
            # a falsy value shares a cache entry with the values equal to it if it is 0,
            # +0.0 or None, not if it is -0.0 (equal to 0.0, but not the same parameter);
            # written out, as a helper function's call costs more than the lookup
            terms.append(f"(type({pname}) is float or type({pname}) is int or {pname} is None)"
                         f" and ({pname} or {pname} is None or _copysign(1.0, {pname}) > 0)")
    return " and ".join(f"({t})" for t in terms)


def _cache_lookup(act):
    """The expression that looks act's parameter values (by name) up in its cache: one
    dict level per parameter (cheaper than hashing a tuple of them)."""
    return f"_CACHE_{act.name}" + "".join(f"[{p}]" for p in act.param_names)


def _preparer(act):
    """prepare(*values) -> (kernel index, kernel parameters), validated, and the cache the
    generated functions read first (nested dicts, values -> result, for values the guard
    accepts, up to CACHE_SIZE of them per activation)."""
    cache, stored = {}, [0]
    guard = eval(f"lambda {', '.join(act.param_names)}: {_cache_guard(act)}",
                 {"_copysign": math.copysign}) if act.params else None

    def prepare(*values):
        cacheable = guard is not None and len(values) == len(act.params) and guard(*values)
        if cacheable:
            level = cache
            for v in values:
                level = level.get(v)
                if level is None:
                    break
            else:
                return level
        kernel, params = act.kernel_for(plain_values(values))
        found = KERNEL_INDEX[kernel.name], params
        if cacheable and stored[0] < CACHE_SIZE:
            level = cache
            for v in values[:-1]:
                level = level.setdefault(v, {})
            level[values[-1]] = found
            stored[0] += 1
        return found
    return prepare, cache


CACHE_SIZE = 256


# Every function tries the backend's fast path itself (fastact._runner.fast: the common
# case straight to a kernel, None otherwise) before the general one (fastact._arrays.compute,
# which tries it again: a few checks, on a path that costs far more): at 16 elements each
# Python call on the way costs as much as the kernel. An activation without parameters
# has its (kernel, params) as a constant; the others look theirs up in the cache first.
_TEMPLATES = {     # docstrings: fastact._docs, from the table
    "": '''def {name}(x, {sig}*, out=None):
    {prepare}
    r = _backend.active.fast(kernel, FWD, x, None, out, None, params)
    return _forward(kernel, params, FWD, x, out) if r is None else r
''',
    "_grad": '''def {name}_grad(x, {sig}*, out=None):
    {prepare}
    r = _backend.active.fast(kernel, GRAD, x, None, out, None, params)
    return _forward(kernel, params, GRAD, x, out) if r is None else r
''',
    "_backward": '''def {name}_backward(grad_output, x=None, {sig_opt}*, y=None, out=None):
    {check}{prepare}
    if y is None and x is not None:
        r = _backend.active.fast(kernel, BWD, grad_output, x, out, None, params)
        if r is not None:
            return r
    return _backward({name!r}, kernel, params, grad_output, x, y, out)
''',
    "_forward_backward": '''def {name}_forward_backward(x, {sig}*, grad_output=None, out=None, grad_out=None):
    {prepare}
    if grad_output is None:
        r = _backend.active.fast(kernel, FB, x, None, out, grad_out, params)
    else:
        r = _backend.active.fast(kernel, FBG, grad_output, x, out, grad_out, params)
    return _forward_backward(kernel, params, x, grad_output, out, grad_out) if r is None else r
''',
}


def _prepare_source(act):
    """The lines of a generated function that set kernel and params: a constant without
    parameters or when every parameter is its default (the very object), else a cache
    lookup for the values the guard accepts, else fastact's validation (_prepare_NAME)."""
    if not act.params:
        return f"kernel, params = _KERNEL_{act.name}"
    args = ", ".join(act.param_names)
    lookup = (f"try:\n        kernel, params = {_cache_lookup(act)} "
              f"if {_cache_guard(act)} else _prepare_{act.name}({args})\n    "
              f"except KeyError:\n        kernel, params = _prepare_{act.name}({args})")
    if any(d is REQUIRED for _, d in act.params):
        return lookup
    defaults = " and ".join(f"{p} is _D_{act.name}_{p}" for p in act.param_names)
    return (f"if {defaults}:\n        kernel, params = _KERNEL_{act.name}\n    else:\n    "
            + lookup.replace("\n", "\n    ").replace("try:", "    try:", 1))


def _signature(act, optional):
    parts = []
    for pname, default in act.params:
        if default is REQUIRED:
            parts.append(f"{pname}=_REQUIRED" if optional else pname)
        else:
            parts.append(f"{pname}=_D_{act.name}_{pname}")     # the default itself
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
        prepare, cache = _preparer(act)
        namespace[f"_prepare_{act.name}"], namespace[f"_CACHE_{act.name}"] = prepare, cache
        for pname, default in act.params:
            namespace[f"_D_{act.name}_{pname}"] = default
        if all(d is not REQUIRED for _, d in act.params):
            namespace[f"_KERNEL_{act.name}"] = prepare(*(d for _, d in act.params))
        for suffix, template in _TEMPLATES.items():
            source = template.format(
                name=act.name, sig=_signature(act, False),
                sig_opt=_signature(act, True), prepare=_prepare_source(act),
                check=_required_check(act, act.name + suffix) if suffix == "_backward" else "")
            exec(compile(source, f"<fastact {act.name}{suffix}>", "exec"), namespace)
            fn = namespace[act.name + suffix]
            fn.__module__ = "fastact"
            fn.__doc__ = _docs.function_doc(act, suffix)
            names.append(act.name + suffix)
    return names


def alias(name, doc):
    """A property that reads and assigns the attribute name (NumPy's axis for PyTorch's
    dim, or the other way round)."""
    return property(lambda self: getattr(self, name),
                    lambda self, value: setattr(self, name, value), doc=doc)


class Reassignable:
    """Mixin of the classes constructed from their ``params`` (the gated units, prelu,
    rrelu, the softmax family): assigning one (``act.dim = 0``) validates it as the
    constructor does, by constructing anew, and computes with it from then on."""

    def __setattr__(self, attr, value):
        try:
            params = self.params
        except AttributeError:                  # still in the constructor
            params = {}
        if attr in params:
            self.__dict__.update(type(self)(**{**params, attr: value}).__dict__)
        else:
            object.__setattr__(self, attr, value)


class ActivationFunction:
    """Base of the activation classes: an activation with its parameters bound."""

    name = None
    _spec = None

    def __init__(self, *args, **kwargs):
        values = list(args)
        spec = self._spec
        if spec is None:
            raise TypeError(f"{type(self).__name__} is a base class: make an activation's "
                            f"own (fastact.GELU(), fastact.get('gelu'))")
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
        r = _backend.active.fast(self._kernel, FWD, x, None, out, None, self._params)
        return _forward(self._kernel, self._params, FWD, x, out) if r is None else r

    def gradient(self, x, *, out=None):
        """The derivative f'(x), elementwise."""
        r = _backend.active.fast(self._kernel, GRAD, x, None, out, None, self._params)
        return _forward(self._kernel, self._params, GRAD, x, out) if r is None else r

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
    namespace.update(FWD=FWD, GRAD=GRAD, BWD=BWD, FB=FB, FBG=FBG, _REQUIRED=REQUIRED,
                     _backend=_backend, _copysign=math.copysign, _forward=_forward,
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
    Accepts function names, class names (any case) and the aliases of fastact.ALIASES
    ('identity', 'hard_silu', 'log_sigmoid', ...)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    key = _BY_ANY_NAME.get(name) or _BY_ANY_NAME.get(name.lower().replace("-", "_"))
    if key is None:
        raise ValueError(f"unknown activation {name!r}; choose from "
                         f"{', '.join(ACTIVATIONS + tuple(_OTHER_CLASSES))}")
    if key in _OTHER_CLASSES:
        return _OTHER_CLASSES[key](**params)
    return _NAMESPACE[ACTIVATIONS_BY_NAME[key].cls_name](**params)
