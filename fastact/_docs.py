"""numpydoc docstrings and class signatures of the public API, built from the table.

Everything specific to an activation comes from its row in fastact._activations (formula,
params, param_docs, kinks) and its kernel (y_form). The values in the Notes and Examples
are computed here, at import, by the NumPy backend in float64: one kernel call per
activation. fastact._api calls ``function_doc``, ``class_doc`` and ``class_signature``.
"""
import inspect
import textwrap

import numpy as np

from . import _activations, _numpy_backend
from ._activations import KERNEL_INDEX, KERNELS, REQUIRED

EXAMPLE_X = (-1.0, 0.5, 3.0)   # the input of every Examples section

X_DOC = ("The input. float32 and float64 are computed natively; float16 and bfloat16 "
         "(ml_dtypes) are read as 16 bits, computed in float32 in registers and returned "
         "in their dtype; bool and integers are computed in float64. Any "
         "shape (0-d and empty too) and strides. A dask array gives a lazy dask array; a "
         "masked array (numpy.ma) gives a result masked where any input is masked.")

RESULT_DOC = ("of x's shape and floating dtype (float64 for bool and integer input); a "
              "NumPy scalar for a 0-d array or a Python number.")

OUT_DOC = ("An array of the result's shape and dtype to write into (no casting); it may "
           "be an input (in place).")

RAISES_DOC = """\
ValueError
    A parameter out of its range (see Parameters) or NaN; inputs of different shapes.
TypeError
    A parameter that is not a number; an unsupported dtype (complex, object, long
    double, ...); an ``out`` of the wrong type, shape or dtype."""

CLASS_RAISES_DOC = """\
ValueError
    A parameter out of its range (see Parameters) or NaN.
TypeError
    A parameter that is not a number."""


def example_params(act):
    """The parameters the docstrings show: the defaults; 1.0, 2.0, ... for required ones."""
    return {n: float(i + 1) if d is REQUIRED else d for i, (n, d) in enumerate(act.params)}


_FACTS = {}


def _facts(act):
    """(example parameters, kernel, Notes, repr of f and of f' at EXAMPLE_X), from f and f'
    in float64 at the kinks, -inf, inf, NaN and EXAMPLE_X: one NumPy-backend call per
    activation, cached for its five docstrings."""
    if act.name not in _FACTS:
        params = example_params(act)
        kernel, values = act.kernel_for(tuple(params.values()))
        name, p = kernel.name, _numpy_backend.named_params(kernel, values, np.dtype(np.float64))
        x = np.array(sorted(set(act.kinks_at(params))) + [-np.inf, np.inf, np.nan]
                     + list(EXAMPLE_X))
        with np.errstate(all="ignore"):
            f, d = _numpy_backend.MATH[name](x, p, np.dtype(np.float64))
        f, d = np.broadcast_to(f, x.shape), np.broadcast_to(d, x.shape)
        n = len(x) - len(EXAMPLE_X)
        _FACTS[act.name] = (params, KERNELS[KERNEL_INDEX[name]],
                            _notes(params, x[:n], f[:n], d[:n]), repr(f[n:]), repr(d[n:]))
    return _FACTS[act.name]


def _section(title, body):
    return f"{title}\n{'-' * len(title)}\n{body}\n"


def _fill(text, indent="    "):
    """A paragraph wrapped to 88 columns, indented (cached: textwrap is slow, and the
    paragraphs repeat)."""
    if (text, indent) not in _FILLED:
        _FILLED[text, indent] = textwrap.fill(text, 88, initial_indent=indent,
                                              subsequent_indent=indent)
    return _FILLED[text, indent]


_FILLED = {}


def _entry(head, text):
    """A numpydoc parameter entry: ``name : type`` and its description."""
    return f"{head}\n{_fill(text)}"


def _param_entries(act, required_note=False):
    """The entries of the activation's own parameters (type and default from the table,
    description from param_docs)."""
    entries = []
    for i, (name, default) in enumerate(act.params):
        kind = "str" if isinstance(default, str) else "float"
        head = f"{name} : {kind}" + ("" if default is REQUIRED else f", default {default!r}")
        doc = act.param_docs[i] if i < len(act.param_docs) else ""
        doc += "" if doc.endswith(".") else "."
        if default is REQUIRED and required_note:
            doc += " Required."
        entries.append(_entry(head, doc))
    return entries


def _y_entry(act, kernel):
    """The y= entry of NAME_backward, or None where the kernel has no y-form."""
    if kernel.y_form is None:
        return None
    where = f" when {act.y_when} (else TypeError)" if act.y_when else ""
    return _entry("y : array_like, optional", f"The forward's output f(x), instead of x: "
                  f"f' is a function of y{where}. Give x or y, not both.")


def _call(params, *first):
    """The argument list of an example call: the inputs, then the parameters."""
    return ", ".join([*first, *(f"{k}={v!r}" for k, v in params.items())])


def _notes(params, x, f, d):
    """The Notes: the values at the kinks, +-inf and NaN, as an rst table."""
    rows = [("x", "f(x)", "f'(x)")] + [tuple(repr(float(v)) for v in r) for r in zip(x, f, d)]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    rule = "  ".join("=" * w for w in widths)
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    shown = "".join(f", {k}={v!r}" for k, v in params.items())
    return "\n".join([
        f"Values at the kinks, at +-inf and at NaN (float64{shown}):", "",
        rule, lines[0], rule, *lines[1:], rule, "",
        _fill("The derivative at a kink is PyTorch's. Parameters are rounded to the array's "
              "dtype before use; every result is within 4 ulp of the exact value.", "")])


def _see_also(act, own):
    """The activation's other functions and its class, each with what it computes."""
    entries = [(act.name, "The value f(x)."), (act.name + "_grad", "The derivative f'(x)."),
               (act.name + "_backward", "The product grad_output * f'(x)."),
               (act.name + "_forward_backward", "Both in one pass."),
               (act.cls_name, "The activation as an object.")]
    return "\n".join(f"fastact.{n} : {doc}" for n, doc in entries if n != own)


X_ENTRY = _entry("x : array_like", X_DOC)
OUT_ENTRY = _entry("out : ndarray, optional", OUT_DOC)
GRAD_OUTPUT = "The gradient of the loss with respect to f(x), of x's shape."
_SUMMARY = {
    "": "Compute the {name} activation elementwise.",
    "_grad": "Compute the derivative of {name} with respect to x, elementwise.",
    "_backward": "Compute grad_output * {name}'(x) in one pass.",
    "_forward_backward": "Compute {name}(x) and its derivative in one pass.",
}
_RETURNS = {
    "": "ndarray or scalar\n" + _fill("The value f(x), " + RESULT_DOC),
    "_grad": "ndarray or scalar\n" + _fill("The derivative f'(x), " + RESULT_DOC),
    "_backward": "ndarray or scalar\n" + _fill("The product grad_output * f'(x), " + RESULT_DOC),
    "_forward_backward": "\n".join([
        "y : ndarray or scalar", _fill("The value f(x), " + RESULT_DOC),
        "grad : ndarray or scalar",
        _fill("The derivative f'(x), or grad_output * f'(x) when grad_output is given; of "
              "y's shape and dtype.")]),
}


def function_doc(act, suffix):
    """The numpydoc docstring of NAME + suffix ('', '_grad', '_backward',
    '_forward_backward')."""
    params, kernel, notes, f_repr, d_repr = _facts(act)
    own = _param_entries(act, required_note=suffix == "_backward")
    name = act.name + suffix
    if suffix == "_backward":
        y_entry = _y_entry(act, kernel)
        entries = [_entry("grad_output : array_like", GRAD_OUTPUT),
                   _entry("x : array_like, optional",
                          X_DOC + (" Give x or y, not both." if y_entry else "")),
                   *own, *([y_entry] if y_entry else []), OUT_ENTRY]
        example = f">>> fastact.{name}({_call(params, 'np.ones(3)', 'x')})\n{d_repr}"
        if y_entry:
            y = f"y=fastact.{act.name}({_call(params, 'x')})"
            example += f"\n>>> fastact.{name}({_call(params, 'np.ones(3)', y)})\n{d_repr}"
    elif suffix == "_forward_backward":
        entries = [X_ENTRY, *own,
                   _entry("grad_output : array_like, optional",
                          GRAD_OUTPUT + " The second result is then grad_output * f'(x)."),
                   OUT_ENTRY,
                   _entry("grad_out : ndarray, optional", "As out, for the second result.")]
        example = (f">>> y, grad = fastact.{name}({_call(params, 'x')})\n"
                   f">>> y\n{f_repr}\n>>> grad\n{d_repr}")
    else:
        entries = [X_ENTRY, *own, OUT_ENTRY]
        example = f">>> fastact.{name}({_call(params, 'x')})\n{d_repr if suffix else f_repr}"
    return "\n".join([
        _SUMMARY[suffix].format(name=act.name) + "\n",
        f"``f(x) = {act.formula}``\n",
        _section("Parameters", "\n".join(entries)),
        _section("Returns", _RETURNS[suffix]),
        _section("Raises", RAISES_DOC),
        _section("See Also", _see_also(act, name)),
        _section("Notes", notes),
        _section("Examples", f">>> import numpy as np, fastact\n"
                             f">>> x = np.array({list(EXAMPLE_X)})\n{example}"),
    ])


def class_doc(act):
    """The numpydoc docstring of the activation's class."""
    params, kernel, notes, f_repr, d_repr = _facts(act)
    from_y = " (or from y = f(x) instead of x)" if _y_entry(act, kernel) else ""
    attrs = (" The parameters are attributes: assigning one validates it as the "
             "constructor does, and computes with it from then on." if act.params else "")
    parts = [
        f"The {act.name} activation as an object, with its parameters bound.\n",
        f"``f(x) = {act.formula}``\n",
        _fill(f"``act(x)`` computes f(x), ``act.gradient(x)`` f'(x), "
              f"``act.backward(grad_output, x)`` grad_output * f'(x){from_y}, and "
              f"``act.forward_backward(x)`` both in one pass (see ActivationFunction)."
              f"{attrs} Instances compare equal, hash and pickle by their parameters.",
              "") + "\n"]
    if act.params:
        parts.append(_section("Parameters", "\n".join(_param_entries(act))))
    examples = "\n".join([">>> import numpy as np, fastact",
                          f">>> act = fastact.{act.cls_name}({_call(params)})",
                          f">>> act(np.array({list(EXAMPLE_X)}))", f_repr,
                          f">>> act.gradient(np.array({list(EXAMPLE_X)}))", d_repr])
    parts += [_section("Raises", CLASS_RAISES_DOC),
              _section("See Also", _see_also(act, act.cls_name)),
              _section("Notes", notes),
              _section("Examples", examples)]
    return "\n".join(parts)


class _ClassSignature:
    """The constructor's signature, seen on the class only: an instance's signature
    stays that of its __call__."""

    def __init__(self, signature):
        self.signature = signature

    def __get__(self, instance, owner):
        if instance is not None:
            raise AttributeError("__signature__")
        return self.signature


def class_signature(act):
    """A descriptor giving inspect.signature(cls) the table's parameters."""
    P = inspect.Parameter
    return _ClassSignature(inspect.Signature([
        P(n, P.POSITIONAL_OR_KEYWORD, default=P.empty if d is REQUIRED else d)
        for n, d in act.params]))


def _kernel_of(act):
    return act.kernel_for(tuple(example_params(act).values()))[0]


def activation_table():
    """The Markdown table of every activation (the contract page includes it): name,
    class, parameters with defaults, formula, whether backward takes y=."""
    lines = ["| activation | class | parameters (defaults) | f(x) | backward from y |",
             "|---|---|---|---|---|"]
    for act in _activations.ACTIVATIONS_TABLE:
        params = ", ".join(n if d is REQUIRED else f"{n}={d!r}" for n, d in act.params)
        kernel = _kernel_of(act)
        from_y = "no" if kernel.y_form is None else (act.y_when or "yes")
        names = act.name + "".join(f" ({a})" for a in act.aliases)
        lines.append(f"| {names} | {act.cls_name} | {params or '–'} | "
                     f"`{act.formula}` | {from_y} |")
    return "\n".join(lines) + "\n"
