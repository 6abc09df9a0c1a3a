"""The public functions and classes of the softmax family (docs/softmax.md), generated
from fastact._activations.SOFTMAX_TABLE; they come down to fastact._softmax. There is no
NAME_grad: the family maps a vector to a vector, and its Jacobian is only used times a
grad_output (NAME_backward)."""

from . import _api, _softmax
from ._activations import SOFTMAX_TABLE
from ._softmax import BWDX, BWDY, FB, FWD

_INDEX = {s.name: i for i, s in enumerate(SOFTMAX_TABLE)}

_TEMPLATES = {
    "": '''def {name}(x, axis=-1, *, dim=None, out=None):
    r = None if dim is not None else _softmax.fast({i}, FWD, x, None, axis, out)
    return r if r is not None else _softmax.run({i}, FWD, x, None, axis, dim, (out,),
                                                {name!r})
''',
    "_backward": '''def {name}_backward(grad_output, x=None, *, y=None, axis=-1, dim=None, out=None):
    return _backward({i}, grad_output, x, y, axis, dim, out, {name!r})
''',
    "_forward_backward": '''def {name}_forward_backward(x, axis=-1, grad_output=None, *, dim=None, out=None,
                                grad_out=None):
    r = None if dim is not None else _softmax.fast({i}, FB, x, grad_output, axis, out, grad_out)
    return r if r is not None else _softmax.run({i}, FB, x, grad_output, axis, dim,
                                                (out, grad_out), {name!r})
''',
}

_FORMULAS = {"softmax": "e^x / sum(e^x)", "log_softmax": "x - log(sum(e^x))",
             "softmin": "e^-x / sum(e^-x)"}
_DOCS = {
    "": "y = {formula} along axis (dim: PyTorch's name for it; axis=None: the flat "
        "array).",
    "_backward": "grad_x for grad_output, from the output y (y=..., as PyTorch does) or "
                 "from x.",
    "_forward_backward": "(y, grad_x) in one call (grad_output all ones when not given: "
                         "the gradient of sum(y)).",
}


def _backward(func, g, x, y, axis, dim, out, name):
    if y is None and x is None:
        raise TypeError(f"{name}_backward() needs x or y=")
    op, x = (BWDY, y) if y is not None else (BWDX, x)
    r = None if dim is not None else _softmax.fast(func, op, x, g, axis, out)
    return r if r is not None else _softmax.run(func, op, x, g, axis, dim, (out,), name)


def _make_functions(namespace):
    names = []
    for i, spec in enumerate(SOFTMAX_TABLE):
        for suffix, template in _TEMPLATES.items():
            source = template.format(name=spec.name, i=i)
            exec(compile(source, f"<fastact {spec.name}{suffix}>", "exec"), namespace)
            fn = namespace[spec.name + suffix]
            fn.__module__ = "fastact"
            fn.__doc__ = _DOCS[suffix].format(formula=_FORMULAS[spec.name])
            names.append(spec.name + suffix)
    return names


class SoftmaxFunction(_api.Reassignable):
    """Base of Softmax, LogSoftmax and Softmin: the function with its axis bound."""

    name = None

    def __init__(self, axis=-1, *, dim=None):
        if self.name is None:
            raise TypeError(f"{type(self).__name__} is a base class: make Softmax, "
                            f"LogSoftmax or Softmin")
        axis = _softmax.resolve_axis(axis, dim, type(self).__name__)
        index = None if axis is None else _softmax._arrays.as_index(axis)
        if axis is not None and index is None:
            raise TypeError(f"axis must be an integer or None, got {type(axis).__name__}")
        self.axis = index

    dim = _api.alias("axis", "axis, by PyTorch's name")

    def __call__(self, x, *, out=None):
        r = _softmax.fast(_INDEX[self.name], FWD, x, None, self.axis, out)
        return r if r is not None else _softmax.run(_INDEX[self.name], FWD, x, None,
                                                    self.axis, None, (out,), self.name)

    def backward(self, grad_output, x=None, *, y=None, out=None):
        """grad_x for grad_output, from y (y=...) or from x."""
        return _backward(_INDEX[self.name], grad_output, x, y, self.axis, None, out,
                         self.name)

    def forward_backward(self, x, grad_output=None, *, out=None, grad_out=None):
        """(y, grad_x) in one call."""
        r = _softmax.fast(_INDEX[self.name], FB, x, grad_output, self.axis, out, grad_out)
        return r if r is not None else _softmax.run(_INDEX[self.name], FB, x, grad_output,
                                                    self.axis, None, (out, grad_out),
                                                    self.name)

    @property
    def params(self):
        return {"axis": self.axis}

    def __repr__(self):
        return f"{type(self).__name__}(axis={self.axis!r})"

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self.axis == other.axis

    def __hash__(self):
        return hash((type(self).__name__, self.axis))

    def __reduce__(self):
        return type(self), (self.axis,)


def _make_classes(namespace):
    names = []
    for spec in SOFTMAX_TABLE:
        cls = type(spec.cls_name, (SoftmaxFunction,), {
            "name": spec.name, "__module__": "fastact",
            "__doc__": f"{spec.cls_name}(axis=-1): y = {_FORMULAS[spec.name]} along axis "
                       f"(docs/softmax.md)."})
        namespace[spec.cls_name] = cls
        names.append(spec.cls_name)
    return names


SOFTMAX = tuple(s.name for s in SOFTMAX_TABLE)
_NAMESPACE = {"FWD": FWD, "FB": FB, "_softmax": _softmax, "_backward": _backward}
PUBLIC = _make_functions(_NAMESPACE) + _make_classes(_NAMESPACE) + ["SOFTMAX",
                                                                   "SoftmaxFunction"]
_NAMESPACE.update(SOFTMAX=SOFTMAX, SoftmaxFunction=SoftmaxFunction)
_api.register_classes({s.name: _NAMESPACE[s.cls_name] for s in SOFTMAX_TABLE})
