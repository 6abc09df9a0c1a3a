"""fastact inside PyTorch models: autograd functions and ``torch.nn`` modules.

For every activation NAME, ``fastact.torch.NAME(input, *params)`` (parameters as
``torch.nn.functional.NAME``) and a module with PyTorch's class name
(``fastact.torch.GELU(approximate='tanh')``; the identity ``linear`` is ``Identity``,
since ``torch.nn.Linear`` is the affine layer). Activations PyTorch lacks (squareplus,
swish, ...) get a module of fastact's own class name; PyTorch's side of them (other
devices, double backward) is the table's expression in torch operations.

CPU float32/float64/float16 tensors (and bfloat16 ones, with ml_dtypes installed: NumPy
has no bfloat16 of its own) are computed by fastact's kernels on the tensors' own memory
(NumPy views, no copy) when the tensor covers its memory densely, in any dimension order
(contiguous, transposed, channels-last); other views (gaps, overlaps) are copied once.
The forward saves for backward one tensor: y where PyTorch's backward takes y too (the
kernels with a ``torch_dy``: relu, exponential), x everywhere else (so an in-place op on
the output of leaky_relu, hardtanh, relu6 or Identity does not break the backward, as in
PyTorch). PyTorch also takes sigmoid', tanh' and elu' from y, but y has rounded
away the tails (sigmoid'(30) from y = 1.0 is 0, not 9.4e-14), so fastact keeps x there
and its gradients stay within 4 ulp. The backward is fastact's fused
``grad_output * f'`` kernel. Everything else (CUDA and other devices, other dtypes, ``inplace=True``, the
wrapped tensors of ``torch.func`` transforms) is handed to PyTorch's own implementation, with its semantics. Double backward
(``create_graph=True``) is computed with PyTorch operations, so ``gradgradcheck`` passes.
"""
import functools
import inspect
import math
import re
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from . import _api, _arrays, _backend
from ._activations import ACTIVATIONS_TABLE, KERNELS

__all__ = []
_DTYPES = (torch.float32, torch.float64, torch.float16)
_HALF_NAMES = {torch.float16: "float16", torch.bfloat16: "bfloat16"}
_BF16 = []      # [ml_dtypes.bfloat16], or [None] without ml_dtypes; looked up once


def _bfloat16():
    """NumPy's bfloat16 dtype (ml_dtypes), or None: bfloat16 tensors are computed by
    fastact when ml_dtypes is installed, else by PyTorch."""
    if not _BF16:
        try:
            import ml_dtypes
            _BF16.append(np.dtype(ml_dtypes.bfloat16))
        except ImportError:
            _BF16.append(None)
    return _BF16[0]


class _View:
    """The NumPy array interface of a CPU tensor's memory. Tensor.numpy() would mark the
    tensor's storage as not resizable for good (x.resize_(n) and out= of a larger result
    then fail); the array keeps this object, and so the tensor, alive."""

    def __init__(self, t, dtype):
        self.tensor = t
        size = dtype.itemsize
        self.__array_interface__ = {
            "version": 3, "data": (t.data_ptr(), False), "shape": tuple(t.shape),
            "typestr": dtype.str, "strides": tuple(s * size for s in t.stride())}


# the compiled backend's view of an address (a tenth of _View's cost), or None
_view_at = None if _backend._runner is None else _backend._runner.view_at
_NP_DTYPES = {torch.float16: np.dtype(np.float16), torch.float32: np.dtype(np.float32),
              torch.float64: np.dtype(np.float64), torch.bfloat16: np.dtype(np.int16)}


def _numpy(t):
    """A NumPy view of a (detached) CPU tensor; bfloat16 through its bits."""
    dtype = _NP_DTYPES.get(t.dtype)
    if t.numel() == 0 and t.dtype == torch.bfloat16 and _bfloat16() is not None:
        return np.empty(tuple(t.shape), _bfloat16())   # t.numpy() refuses bfloat16
    if dtype is None or t.numel() == 0:
        a = t.numpy()
    elif _view_at is not None:
        a = _view_at(t.data_ptr(), t.shape, t.stride(), dtype, t)
    else:
        a = np.asarray(_View(t, dtype))
    return a.view(_bfloat16()) if t.dtype == torch.bfloat16 else a


_KEY = torch._C.DispatchKey
# dispatch keys of tensors that only look like CPU tensors: those of torch.func's
# transforms (vmap, grad), tensor subclasses, functionalization
_WRAPPER_KEYS = [getattr(_KEY, k) for k in ("FuncTorchBatched", "FuncTorchGradWrapper",
                                             "Python", "Functionalize") if hasattr(_KEY, k)]


def _eligible(t):
    """Whether fastact's kernels take this tensor: a dense CPU float32/float64/float16
    tensor (bfloat16 too with ml_dtypes installed) with real memory (not the batched tensors of vmap or is_grads_batched, which have
    no CPU key, nor a wrapper)."""
    if not ((type(t) is torch.Tensor or isinstance(t, torch.nn.Parameter))
            and t.is_cpu and t.layout == torch.strided
            and (t.dtype in _DTYPES or (t.dtype == torch.bfloat16 and _bfloat16() is not None))):
        return False
    if t.is_neg():         # a lazily negated view (x.conj().imag, torch._neg_view)
        return False
    keys = torch._C._dispatch_keys(t)
    for k in _WRAPPER_KEYS:                 # a loop: any() of a generator costs more
        if keys.has(k):
            return False
    return keys.has(_KEY.CPU)


def _covers_memory_densely(t):
    """No gaps and no overlaps: the elements fill storage[offset : offset + numel] in some
    order of the dimensions, so elementwise work can run on that span as a flat array."""
    dims = sorted((s, n) for s, n in zip(t.stride(), t.shape) if n != 1)
    expected = 1
    for stride, size in dims:
        if stride != expected:
            return False
        expected *= size
    return True


def _flat(t):
    """A NumPy view of a dense tensor's memory (torch.empty_like keeps its layout)."""
    t = t.detach()
    if t.is_contiguous():
        return _numpy(t.view(-1))
    return _numpy(t.as_strided((t.numel(),), (1,)))


def _dense(t):
    return t if t.is_contiguous() or _covers_memory_densely(t) else t.contiguous()


def _like(t, g):
    """g in t's memory layout (a view when it already is)."""
    if g.stride() == t.stride() and (g.is_contiguous() or _covers_memory_densely(g)):
        return g
    return torch.empty_like(t).copy_(g)


# torch dtype -> the kernel tables' dtype code (the backend's table of codes)
_CODES = {getattr(torch, d.name): code for code, d in _backend._CODES.items()}


def _launch(spec, entry, a, b, out):
    """entry (_api.FWD, BWD or BWDY) of spec's kernel on dense tensors a (and b) of one
    dtype and layout, into the new tensor out: with the compiled backend at their
    addresses (NumPy views of them cost most of a small call), with NumPy's through
    views. A y compared with bounds (y_exact) takes _api's checks and rounding of them."""
    act, kernel, params = spec[0], spec[1], spec[2]
    launch_at = _backend.active.launch_at
    if launch_at is not None and not (entry == _api.BWDY and KERNELS[kernel].y_exact):
        launch_at(kernel, entry, _CODES[out.dtype], out.numel(), a.data_ptr(),
                  0 if b is None else b.data_ptr(), out.data_ptr(), 0, params)
    elif entry == _api.FWD:
        _api._forward(kernel, params, entry, _flat(a), _flat(out))
    elif entry == _api.BWD:
        _api._backward(act.name, kernel, params, _flat(a), _flat(b), None, _flat(out))
    else:
        _api._backward(act.name, kernel, params, _flat(a), None, _flat(b), _flat(out))


def _forward(x, spec):
    """y = f(x), a new tensor in x's layout (dense x's own)."""
    dense = _dense(x)
    y = torch.empty_like(dense)
    _launch(spec, _api.FWD, dense, None, y)
    return y


_forward_ad = torch.autograd.forward_ad


def _untracked(x):
    """Whether nothing records an operation on x: autograd (no grad required, or grad
    mode off), forward-mode AD (no level open: a dual tensor needs the jvp) and
    torch.jit.trace (which records the autograd function, and would miss a kernel)."""
    return (not (x.requires_grad and torch.is_grad_enabled())
            and getattr(_forward_ad, "_current_level", 0) < 0
            and not torch._C._get_tracing_state())


# OpenMP runtimes' file names: GNU's, LLVM's, Intel's
_OPENMP_LIBRARY = re.compile(r"/lib(gomp|omp|iomp5)[-.][^/]*$")


def _openmp_libraries(maps_lines):
    """The OpenMP runtime libraries mapped into a process, from its /proc/self/maps."""
    paths = (fields[-1] for fields in map(str.split, maps_lines) if len(fields) >= 6)
    return {path for path in paths if _OPENMP_LIBRARY.search(path)}


def _shares_pytorchs_openmp():
    """Whether fastact's OpenMP runtime is PyTorch's: PyTorch built with OpenMP and one
    OpenMP runtime in the process (Linux, where the loader binds one library to a
    soname: PyTorch's wheel ships libgomp.so.1, which fastact's build links too)."""
    if not torch._C.has_openmp:
        return False
    try:
        with open("/proc/self/maps") as maps:
            return len(_openmp_libraries(maps)) == 1
    except OSError:
        return False


if _backend.COMPILED is not None:
    # fastact.torch's elementwise calls then run on PyTorch's OpenMP threads, which spin
    # for milliseconds after each PyTorch op, instead of on the pool's (fa_pool.h)
    _backend._runner.set_openmp_team(_shares_pytorchs_openmp())
    # the gated units and the softmax family reach the runner through the array API
    _on_team = _backend._runner.on_team
else:
    def _on_team(fn, *args, **kwargs):
        return fn(*args, **kwargs)


class _Function(torch.autograd.Function):
    """fastact forward; backward (and forward-mode jvp) by the fused kernel from the
    saved x or y; PyTorch operations where autograd differentiates or batches the
    backward itself (create_graph=True, is_grads_batched, vectorized jacobians)."""

    @staticmethod
    def forward(ctx, x, spec):
        from_y = spec[3]
        y = _forward(x, spec)
        ctx.spec = spec
        saved = y if from_y else x
        ctx.save_for_backward(saved)      # x itself: double backward reaches it
        ctx.save_for_forward(saved)
        return y

    @staticmethod
    def backward(ctx, grad_output):
        saved, = ctx.saved_tensors
        return _times_derivative(ctx.spec, grad_output, saved, torch.is_grad_enabled()), None

    @staticmethod
    def jvp(ctx, x_tangent, _):
        saved, = ctx.saved_tensors
        return _times_derivative(ctx.spec, x_tangent, saved, _records(x_tangent, saved))


def _records(*tensors):
    """Whether autograd records an operation on these tensors: grad mode on (as it is in
    ordinary code, where forward-mode AD computes its tangents) and one of them requiring
    grad."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _times_derivative(spec, g, saved, record):
    """g * f' at the saved x (or y): fastact's fused kernel, or the PyTorch expression
    when autograd records it (record: grad mode on in a backward, as create_graph's;
    _records in a jvp) or batches it (vmap of the backward)."""
    from_y, double = spec[3], spec[4]
    if record or not _eligible(g) or g.dtype != saved.dtype:
        return double(g, saved)
    saved = _dense(saved)
    g = _like(saved, g)
    out = torch.empty_like(saved)
    _launch(spec, _api.BWDY if from_y else _api.BWD, g, saved, out)
    return out


def _expression(args, expr, name):
    """A PyTorch expression of the table as a function of args (torch and F in scope)."""
    return eval(compile(f"lambda {args}: {expr}", f"<fastact.torch {name}>", "eval"),
                {"torch": torch, "F": F})


def _double_backward(reference, act, kernel, params, values, from_y):
    """grad_output * f'(saved) as a differentiable PyTorch expression: f' in y (the
    kernel's torch_dy), f' in x (the activation's torch_grad), or autograd of the
    activation's PyTorch expression."""
    if from_y:
        derivative = _expression(", ".join(("y",) + kernel.params), kernel.torch_dy, kernel.name)
        return lambda g, y: g * derivative(y, *params)
    if act.torch_grad:
        derivative = _expression(", ".join(("x",) + act.param_names), act.torch_grad, act.name)
        return lambda g, x: g * derivative(x, *values)

    def from_x(g, x):
        with torch.enable_grad():
            if not x.requires_grad:
                x = x.detach().requires_grad_()
            return torch.autograd.grad(reference(x, values), x, g, create_graph=True)[0]
    return from_x


def _torch_reference(act, torch_module, has_inplace):
    """The activation computed by PyTorch (the table's expression): (input, params,
    inplace) -> tensor; inplace=True through the torch.nn module that has it."""
    fn = _expression(", ".join(("x",) + act.param_names), act.torch, act.name)

    def reference(x, values, inplace=False):
        if inplace and has_inplace:
            return torch_module(*values, inplace=True)(x)
        return fn(x, *values)
    return reference


def _plain(values):
    """Parameter values as fastact takes them: 0-d tensors (which torch.nn.functional
    accepts as numbers) as the number they hold, then _api.plain_values."""
    return _api.plain_values(tuple(v.item() if isinstance(v, torch.Tensor) and v.dim() == 0
                                   else v for v in values))


def _parameter(i, pname, validated):
    """A module's parameter attribute: reads the value in use (self._values[i]); an
    assignment is checked by validated(values), as the constructor checks them, which
    returns the values to keep, used from the next call on."""
    def get(self):
        return self._values[i]

    def set(self, value):
        self._values = validated(self._values[:i] + (value,) + self._values[i + 1:])
    return property(get, set, doc=f"{pname} (validated on assignment)")


def _spec_key(values):
    """Parameter values as a cache key: values equal to each other but not the same
    parameter (True and 1, -0.0 and 0.0) have different keys."""
    return tuple((type(v), v, math.copysign(1.0, v) if type(v) is float else 0.0)
                 for v in values)


def _make(act):
    torch_module = getattr(torch.nn, act.torch_module) if act.torch_module else None
    has_inplace = torch_module is not None and \
        "inplace" in inspect.signature(torch_module).parameters
    prepare = _api._PREPARE[act.name]
    reference = _torch_reference(act, torch_module, has_inplace)
    autograd_fn = type(f"{act.cls_name}Function", (_Function,), {"__module__": __name__})

    @functools.lru_cache(maxsize=256)
    def cached_spec(key, half=None):
        values = tuple(v for _, v, _ in key)
        kernel, params = prepare(*values)
        k = KERNELS[kernel]
        from_y = k.torch_dy is not None and k.takes_y(params, half)
        double = _double_backward(reference, act, k, params, values, from_y)
        return act, kernel, params, from_y, double

    def spec_for(values, half=None):
        """Validated parameters (ValueError) -> what the autograd function needs (for
        a float16 or bfloat16 tensor: half is its name)."""
        return cached_spec(_spec_key(values), half)

    def apply(x, values, spec, inplace):
        if inplace or not isinstance(x, torch.Tensor) or not _eligible(x):
            return reference(x, values, inplace)
        if _untracked(x):                         # no graph: the autograd function's y
            return _forward(x, spec)
        if spec[3] and x.dtype in _HALF_NAMES:    # y in 16 bits may not tell f' (hardtanh)
            spec = spec_for(values, _HALF_NAMES[x.dtype])
        return autograd_fn.apply(x, spec)

    P = inspect.Parameter
    params = [P(n, P.POSITIONAL_OR_KEYWORD, default=P.empty if d is _api.REQUIRED else d)
              for n, d in act.params]
    # a parameterless module whose PyTorch class takes any argument and ignores it
    ignores_args = not act.params and torch_module is not None and any(
        p.kind in (P.VAR_POSITIONAL, P.VAR_KEYWORD)
        for p in inspect.signature(torch_module).parameters.values())
    if has_inplace:
        params.append(P("inplace", P.POSITIONAL_OR_KEYWORD, default=False))
    init_signature = inspect.Signature(params)
    shown_signature = init_signature
    if ignores_args:
        shown_signature = inspect.Signature([P("args", P.VAR_POSITIONAL),
                                             P("kwargs", P.VAR_KEYWORD)])
    signature = inspect.Signature([P("input", P.POSITIONAL_OR_KEYWORD)] + params)

    def bind(args, kwargs):
        """(parameter values, inplace) from the arguments after the input."""
        bound = init_signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = list(bound.arguments.values())
        inplace = values.pop() if has_inplace else False
        return tuple(values), inplace

    # the defaults' values and spec, for calls without parameters (binding costs more
    # than a small call's kernel); None where a parameter has no default
    defaults = None if any(d is _api.REQUIRED for _, d in act.params) else \
        tuple(d for _, d in act.params)
    default_spec = []

    def function(input, *args, **kwargs):
        if (args or kwargs) or defaults is None:
            values, inplace = bind(args, kwargs)
            values = _plain(values)
            return apply(input, values, spec_for(values), inplace)
        if not default_spec:
            default_spec.append(spec_for(defaults))
        return apply(input, defaults, default_spec[0], False)

    function.__name__ = function.__qualname__ = act.name
    function.__module__ = __name__
    function.__signature__ = signature
    function.__doc__ = (f"``{act.formula}``, by fastact's kernels with autograd"
                        + (f"; as torch.nn.{torch_module.__name__}" if torch_module else
                           " (no PyTorch counterpart)")
                        + " (PyTorch computes other tensors).")

    def __init__(self, *args, **kwargs):
        torch.nn.Module.__init__(self)
        if ignores_args:                        # torch.nn.Identity(54, unused=0.1)
            args, kwargs = (), {}
        values, self.inplace = bind(args, kwargs)
        self._values = validated(values)

    def forward(self, input):
        if constants:
            values = tuple(getattr(self, k) for k in constants)
            if values != tuple(constants.values()):
                # constants assigned (ReLU6's bounds): PyTorch's module computes its base
                # class's function with them (F.hardtanh), and so does this one
                base = globals()[torch_module.__mro__[1].__name__.lower()]
                return base(input, *values, *((self.inplace,) if has_inplace else ()))
        return apply(input, self._values, spec_for(self._values), self.inplace)

    def extra_repr(self):
        if torch_module is not None:
            return torch_module.extra_repr(self)
        return ", ".join(f"{n}={v!r}" for n, v in zip(act.param_names, self._values))

    def validated(values):
        values = _plain(values)
        spec_for(values)                        # invalid parameters fail here
        return values

    # the constants of PyTorch's module that are no parameter here (ReLU6's bounds)
    constants = {}
    if torch_module is not None and not act.params and not ignores_args:
        constants = {k: v for k, v in vars(torch_module()).items()
                     if not k.startswith("_") and k not in ("training", "inplace")
                     and isinstance(v, (bool, int, float, str))}

    cls_name = act.torch_module or act.cls_name
    counterpart = f"As torch.nn.{cls_name}" if torch_module else "No torch.nn counterpart"
    namespace = {"__init__": __init__, "forward": forward, "extra_repr": extra_repr,
                 "__module__": __name__, "__signature__": shown_signature,
                 "__doc__": f"{counterpart}; computed by fastact: ``{act.formula}``."}
    namespace.update({n: _parameter(i, n, validated) for i, n in enumerate(act.param_names)})
    namespace.update(constants)
    # a subclass of PyTorch's own module where there is one (isinstance(m, nn.GELU) holds)
    module = type(cls_name, (torch_module or torch.nn.Module,), namespace)
    return function, module


for _act in ACTIVATIONS_TABLE:
    _fn, _cls = _make(_act)
    for _name in (_fn.__name__, _cls.__name__) + _act.aliases:
        globals()[_name] = _cls if _name == _cls.__name__ else _fn
        __all__.append(_name)
del _act, _fn, _cls, _name


# ---- the gated units, prelu and rrelu (docs/gated.md) ----
# Eligible tensors are handed to fastact as NumPy views of their memory (fastact._gated
# reads any dim of a C- or F-contiguous array in place and copies other layouts once);
# the results (and gradients) are tensors PyTorch allocates (resizable, as its own),
# written through NumPy views. The backward saves the inputs (the gradient needs a and the gate
# both) and runs the fused backward kernel; double backward and ineligible tensors use
# the table's PyTorch expression.

from . import _api_gated, _gated  # noqa: E402
from ._activations import GATED_KERNELS, GATED_TABLE  # noqa: E402


def _np(t):
    return _numpy(t.detach())


def _empty_as(shape, ref):
    """An uninitialized CPU tensor of ref's dtype in the layout fastact's results take
    from ref (F order where ref is F- and not C-contiguous, else C): allocated by PyTorch,
    so that it is resizable as PyTorch's results are (torch.from_numpy's are not)."""
    rev = tuple(reversed(range(len(shape))))
    if ref.dim() > 1 and not ref.is_contiguous() and ref.permute(rev).is_contiguous():
        return torch.empty(tuple(reversed(shape)), dtype=ref.dtype).permute(rev)
    return torch.empty(tuple(shape), dtype=ref.dtype)


def _autograd_of(reference, inputs, grads):
    """The gradients of reference(*inputs) for grads, differentiable (double backward)."""
    with torch.enable_grad():
        leaves = [t if t.requires_grad else t.detach().requires_grad_() for t in inputs]
        return torch.autograd.grad(reference(*leaves), leaves, grads, create_graph=True)


def _jvp_of(reference, inputs, tangents):
    """Forward-mode AD's J t of reference(*inputs), for the functions that are not
    elementwise (gated units, prelu): two reverse passes of PyTorch operations (the
    vjp is linear in its cotangent u, and J t is the gradient of <vjp(u), t> in u)."""
    with torch.enable_grad():
        leaves = [t.detach().requires_grad_() for t in inputs]
        y = reference(*leaves)
        u = torch.zeros_like(y, requires_grad=True)
        vjp = torch.autograd.grad(y, leaves, u, create_graph=True)
        ts = [torch.zeros_like(v) if t is None else t for v, t in zip(vjp, tangents)]
        return torch.autograd.grad(vjp, u, ts)[0].detach()


def _split_forward(x, kernel, dim):
    """A gated unit of x's halves along dim, as a new tensor."""
    y = _empty_as(_gated.half_shape(x.shape, dim), x)
    _on_team(_gated.split, kernel, _api_gated.FWD, None, _np(x), dim, None, _np(y), None,
             GATED_KERNELS[kernel].name)
    return y


def _pair_forward(a, b, kernel):
    """A gated unit of a and the gate b, as a new tensor."""
    y = _empty_as(a.shape, a)
    _on_team(_gated.pair, kernel, _api_gated.FWD, None, _np(a), _np(b), _np(y), None, "gated")
    return y


def _prelu_forward(x, weight):
    y = _empty_as(x.shape, x)
    _on_team(_api_gated.prelu, _np(x), _np(weight), out=_np(y))
    return y


class _GatedSplit(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, kernel, dim, reference):
        ctx.kernel, ctx.dim, ctx.reference = kernel, dim, reference
        ctx.save_for_backward(x)
        ctx.save_for_forward(x)
        return _split_forward(x, kernel, dim)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        if torch.is_grad_enabled() or not _eligible(g) or g.dtype != x.dtype:
            return _autograd_of(ctx.reference, [x], g)[0], None, None, None
        gx = _empty_as(x.shape, x)
        _on_team(_gated.split, ctx.kernel, _api_gated.BWD, _np(g), _np(x), ctx.dim, None,
                 _np(gx), None, "gated")
        return gx, None, None, None

    @staticmethod
    def jvp(ctx, x_t, *_):
        x, = ctx.saved_tensors
        return _jvp_of(ctx.reference, [x], [x_t])


class _GatedPair(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, kernel, reference):
        ctx.kernel, ctx.reference = kernel, reference
        ctx.save_for_backward(a, b)
        ctx.save_for_forward(a, b)
        return _pair_forward(a, b, kernel)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        if torch.is_grad_enabled() or not _eligible(g) or g.dtype != a.dtype:
            return (*_autograd_of(ctx.reference, [a, b], g), None, None)
        ga, gb = _empty_as(a.shape, a), _empty_as(a.shape, a)
        _on_team(_gated.pair, ctx.kernel, _api_gated.BWD, _np(g), _np(a), _np(b),
                 (_np(ga), _np(gb)), None, "gated")
        return ga, gb, None, None

    @staticmethod
    def jvp(ctx, a_t, b_t, *_):
        a, b = ctx.saved_tensors
        return _jvp_of(ctx.reference, [a, b], [a_t, b_t])


def _dim_of(name, dim, ndim):
    """dim checked as F.glu checks it: an integer (TypeError), in [-ndim, ndim - 1]
    (IndexError), with PyTorch's messages."""
    index = _arrays.as_index(dim)
    if index is None:
        raise TypeError(f"{name}(): argument 'dim' (position 2) must be int, not "
                        f"{type(dim).__name__}")
    if not -ndim <= index < ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of "
                         f"[{-ndim}, {ndim - 1}], but got {index})")
    return index


class _OddSizeError(ValueError, RuntimeError):
    """An odd size along dim: fastact's ValueError, and the RuntimeError F.glu raises (code
    written for either catches it)."""


class _BoundsError(ValueError, RuntimeError):
    """rrelu's lower above upper: fastact's ValueError, and the RuntimeError F.rrelu and
    nn.RReLU raise."""


def _rrelu_bounds(lower, upper, training):
    """_api_gated._bounds, with lower > upper raised as _BoundsError."""
    lower, upper = _plain((lower, upper))        # 0-d tensors, as F.rrelu takes them
    try:
        return _api_gated._bounds(lower, upper, training)
    except ValueError as exc:
        try:
            crossed = float(lower) > float(upper)
        except (TypeError, ValueError):
            crossed = False
        if crossed:
            raise _BoundsError(str(exc)) from None
        raise


def _make_gated(spec):
    expr = _expression(", ".join(("a", "gate") + spec.param_names), spec.torch, spec.name)
    kernel_of = _api_gated._NAMESPACE[f"_kernel_{spec.name}"]
    P = inspect.Parameter
    params = [P(n, P.POSITIONAL_OR_KEYWORD, default=d) for n, d in spec.params]

    # PyTorch's computation for the autograd function's double backward and jvp: one
    # function object per (dim, values), so that torch.jit.trace records the same graph
    # at each call (its check compares them, function arguments by identity)
    def split_reference(dim, values):
        def reference(t):
            if spec.torch_module is not None:
                return F.glu(t, dim)
            if t.dim() == 0:
                raise ValueError(f"{spec.name}: needs a tensor of at least one "
                                 f"dimension (a and the gate are its halves along dim)")
            return expr(*t.chunk(2, dim), *values)
        return reference

    def pair_reference(values):
        return lambda a, b: expr(a, b, *values)
    cached_split, cached_pair = (functools.lru_cache(maxsize=256)(split_reference),
                                 functools.lru_cache(maxsize=256)(pair_reference))

    def cached(fn, make, *key):
        try:
            return fn(*key)
        except TypeError:                       # an unhashable dim or value
            return make(*key)

    def apply(x, gate, dim, values):
        kernel = kernel_of(*values)             # invalid parameters fail here
        if gate is None:
            if isinstance(x, torch.Tensor) and x.dim() > 0:
                dim = _dim_of(spec.name, dim, x.dim())
            if isinstance(x, torch.Tensor) and x.dim() > 0 and x.shape[dim] % 2:
                raise _OddSizeError(f"{spec.name}: halving dimension must be even, but "
                                    f"dimension {dim} is size {x.shape[dim]}")
            reference = cached(cached_split, split_reference, dim, values)
            if not (_eligible(x) and x.dim() > 0):
                return reference(x)
            if _untracked(x):                     # no graph: the autograd function's y
                return _split_forward(x, kernel, dim)
            return _GatedSplit.apply(x, kernel, dim, reference)

        reference2 = cached(cached_pair, pair_reference, values)
        if not (_eligible(x) and _eligible(gate) and x.dtype == gate.dtype):
            return reference2(x, gate)
        if _untracked(x) and _untracked(gate):
            return _pair_forward(x, gate, kernel)
        return _GatedPair.apply(x, gate, kernel, reference2)

    signature = inspect.Signature(params)
    defaults = tuple(d for _, d in spec.params)

    def function(input, dim=-1, *args, **kwargs):
        """``input`` split in halves along dim (as F.glu), or (a, gate) as two tensors."""
        if args or kwargs:
            values = signature.bind(*args, **kwargs)
            values.apply_defaults()
            values = tuple(values.arguments.values())
        else:
            values = defaults
        if isinstance(dim, torch.Tensor):
            return apply(input, dim, None, values)
        return apply(input, None, dim, values)

    function.__name__ = function.__qualname__ = spec.name
    function.__module__ = __name__
    function.__signature__ = inspect.Signature(       # what *args, **kwargs take
        [P("input", P.POSITIONAL_OR_KEYWORD), P("dim", P.POSITIONAL_OR_KEYWORD, default=-1)]
        + params)
    function.__doc__ = (f"``{spec.torch.replace('gate', 'gate')}`` with ``a, gate = "
                        f"input.chunk(2, dim)`` (or ``{spec.name}(a, gate)``), by fastact's "
                        f"kernels with autograd.")

    def __init__(self, dim=-1, *args, **kwargs):
        torch.nn.Module.__init__(self)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        self.dim = dim
        self._values = validated(tuple(bound.arguments.values()))

    def forward(self, input, gate=None):
        return apply(input, gate, self.dim if gate is None else None, self._values)

    def validated(values):
        kernel_of(*values)                      # invalid parameters fail here
        return values

    def extra_repr(self):
        return ", ".join([f"dim={self.dim}"] + [f"{n}={getattr(self, n)!r}"
                                                 for n in spec.param_names])

    __init__.__signature__ = inspect.Signature(
        [P("self", P.POSITIONAL_OR_KEYWORD), P("dim", P.POSITIONAL_OR_KEYWORD, default=-1)]
        + params)
    namespace = {
        "__init__": __init__, "forward": forward, "extra_repr": extra_repr,
        "__module__": __name__,
        "__doc__": f"``{spec.torch}`` of the halves of the input along dim (computed by "
                   f"fastact)" + (f"; as torch.nn.{spec.torch_module}" if spec.torch_module
                                  else "") + "."}
    namespace.update({n: _parameter(i, n, validated) for i, n in enumerate(spec.param_names)})
    base = getattr(torch.nn, spec.torch_module) if spec.torch_module else torch.nn.Module
    module = type(spec.torch_module or spec.cls_name, (base,), namespace)
    return function, module


def _register(make, table):
    """Add make(spec)'s function and module, for each spec of table, to this module."""
    for spec in table:
        fn, cls = make(spec)
        globals()[fn.__name__], globals()[cls.__name__] = fn, cls
        __all__.extend([fn.__name__, cls.__name__])


_register(_make_gated, GATED_TABLE)


class _PReLUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight):
        ctx.save_for_backward(x, weight)
        ctx.save_for_forward(x, weight)
        return _prelu_forward(x, weight)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        if torch.is_grad_enabled() or not _eligible(g) or g.dtype != x.dtype:
            return tuple(_autograd_of(F.prelu, [x, w], g))
        gx, gw = _empty_as(x.shape, x), torch.empty(w.shape, dtype=w.dtype)
        _on_team(_api_gated.prelu_backward, _np(g), _np(x), _np(w), out=(_np(gx), _np(gw)))
        return gx, gw

    @staticmethod
    def jvp(ctx, x_t, w_t):
        x, w = ctx.saved_tensors
        return _jvp_of(F.prelu, [x, w], [x_t, w_t])


def prelu(input, weight):
    """``F.prelu``, by fastact's kernels with autograd (the weight's gradient summed in a
    fixed order: the same bits for any thread count)."""
    if not (_eligible(input) and _eligible(weight) and input.dtype == weight.dtype):
        return F.prelu(input, weight)
    if _untracked(input) and _untracked(weight):
        return _prelu_forward(input, weight)
    return _PReLUFunction.apply(input, weight)


class PReLU(torch.nn.PReLU):
    """As torch.nn.PReLU (its learnable weight, initialised as torch's); computed by
    fastact."""

    def forward(self, input):
        return prelu(input, self.weight)


class _RReLUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lower, upper, seed):
        y, noise = _empty_as(x.shape, x), _empty_as(x.shape, x)
        _on_team(_api_gated.rrelu_forward_backward, _np(x), lower, upper, True, seed=seed,
                 out=_np(y), grad_out=_np(noise))
        ctx.save_for_backward(noise)
        ctx.save_for_forward(noise)
        return y

    @staticmethod
    def backward(ctx, g):
        noise, = ctx.saved_tensors
        return g * noise, None, None, None

    @staticmethod
    def jvp(ctx, x_t, *_):
        noise, = ctx.saved_tensors
        return x_t * noise


def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False):
    """``F.rrelu``: in training the slopes come from a NumPy generator seeded from
    PyTorch's (torch.manual_seed makes them reproducible); by fastact's kernels."""
    lower, upper = _rrelu_bounds(lower, upper, training)
    if inplace or not _eligible(input):
        return F.rrelu(input, lower, upper, training, inplace)
    if not training:
        return globals()["leaky_relu"](input, _api_gated.mean_slope(lower, upper))
    seed = int(torch.randint(0, 2 ** 62, (), dtype=torch.int64))
    return _RReLUFunction.apply(input, float(lower), float(upper), seed)


class RReLU(torch.nn.RReLU):
    """As torch.nn.RReLU (random slopes in training mode, their mean in eval); computed
    by fastact. The bounds are checked when it is made, as fastact.RReLU's."""

    def __init__(self, lower=1.0 / 8, upper=1.0 / 3, inplace=False):
        _rrelu_bounds(lower, upper, False)
        super().__init__(lower, upper, inplace)

    def forward(self, input):
        return rrelu(input, self.lower, self.upper, self.training, self.inplace)


__all__ += ["prelu", "PReLU", "rrelu", "RReLU"]


# ---- the softmax family (docs/softmax.md) ----
# F.softmax's signature (dim=None: PyTorch's implicit dim, with its warning; dtype= casts
# the input first). A dense CPU float32/float64 tensor is handed to fastact as a NumPy
# view of its memory, its dims permuted into C order (any dense layout: contiguous,
# transposed, channels-last); y is written into a tensor of the input's layout. The
# backward saves y (the output: PyTorch's choice too) and runs fastact.NAME_backward(g,
# y=y); double backward, forward-mode AD with autograd recording, and ineligible
# tensors use PyTorch's formulas from y.

from . import _softmax  # noqa: E402
from ._activations import SOFTMAX_TABLE  # noqa: E402

_SOFTMAX_INDEX = {spec.name: i for i, spec in enumerate(SOFTMAX_TABLE)}


def _c_perm(t):
    """A permutation of t's dims under which t (dense) is C-contiguous, None when t
    already is; False for a tensor with gaps or overlaps."""
    if t.is_contiguous():
        return None
    if _covers_memory_densely(t):
        perm = sorted(range(t.dim()), key=lambda d: -t.stride(d))
        if t.permute(perm).is_contiguous():
            return perm
    return False


def _softmax_run(name, op, x, g, outs, perm, dim):
    """fastact._softmax.compute of op on x (and g) into outs, tensors C-contiguous under
    perm: the compiled backend straight on their memory (fastact._runner.softmax_at; no
    views but for the rows it leaves, a NaN or an infinite max), else on _rows's views."""
    if _backend.active is not _backend.COMPILED:
        _on_team(_softmax.compute, _SOFTMAX_INDEX[name], op, _rows(x, perm, dim),
                 None if g is None else _rows(g, perm, dim), [_rows(o, perm, dim) for o in outs])
        return
    shape = x.shape if perm is None else [x.shape[p] for p in perm]
    axis = dim if perm is None else perm.index(dim)
    spec = SOFTMAX_TABLE[_SOFTMAX_INDEX[name]]
    o2 = outs[1].data_ptr() if len(outs) > 1 else 0
    special = _on_team(_backend._runner.softmax_at, spec.log, spec.sign, op,
                       _softmax._GRAIN_KERNEL, _CODES[x.dtype], x.data_ptr(),
                       0 if g is None else g.data_ptr(), outs[0].data_ptr(), o2,
                       math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:]))
    if special is not None:
        _softmax._special_rows(_SOFTMAX_INDEX[name], op, _rows(x, perm, dim),
                               None if g is None else _rows(g, perm, dim),
                               [_rows(o, perm, dim) for o in outs], special)


def _rows(t, perm, dim):
    """The NumPy view (outer, n, inner) of t (C-contiguous under perm) along dim that
    fastact._softmax's backends read or write: built at t's address where the compiled
    backend is there (t's elements are in C order under perm; a view and its reshape
    cost 2.0 us a call, this 1.1)."""
    shape = t.shape if perm is None else [t.shape[p] for p in perm]
    axis = dim if perm is None else perm.index(dim)
    rows = (math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:]))
    if _view_at is not None:
        dtype = _NP_DTYPES[t.dtype] if t.dtype != torch.bfloat16 else np.dtype(_bfloat16())
        return _view_at(t.data_ptr(), rows, (rows[1] * rows[2], rows[2], 1), dtype, t)
    return _numpy((t if perm is None else t.permute(perm)).detach()).reshape(rows)


def _softmax_formula(name, g, y, dim):
    """grad_x from y for grad_output g in PyTorch operations (differentiable): the
    vector-Jacobian product; for softmax and softmin, whose Jacobian is symmetric, the
    Jacobian-vector product too."""
    if name == "log_softmax":
        return g - y.exp() * g.sum(dim, keepdim=True)
    gx = y * (g - (g * y).sum(dim, keepdim=True))
    return -gx if name == "softmin" else gx


def _softmax_forward(x, name, dim):
    """y, a new tensor in x's layout (dense x's own; one copy of x with gaps)."""
    perm = _c_perm(x)
    if perm is False:                          # gaps or overlaps: one copy
        x, perm = x.contiguous(), None
    y = torch.empty_like(x)                    # x's layout (dense: the same strides)
    _softmax_run(name, _softmax.FWD, x, None, [y], perm, dim)
    return y


def _softmax_backward(name, g, y, dim, record):
    """grad_x for g from the saved y: fastact's kernel on the tensors' memory, or the
    PyTorch formula where autograd records (record, as _times_derivative's) or batches
    the backward."""
    if record or not _eligible(g) or g.dtype != y.dtype:
        return _softmax_formula(name, g, y, dim)
    perm = _c_perm(y)
    if perm is False:                          # not reached: y is made dense
        y, perm = y.contiguous(), None
    g = _like(y, g)                            # y's strides: the same permutation
    out = torch.empty_like(y)
    _softmax_run(name, _softmax.BWDY, y, g, [out], perm, dim)
    return out


class _SoftmaxFunction(torch.autograd.Function):
    """fastact forward; backward (and softmax's/softmin's jvp, their Jacobian being
    symmetric) by fastact's backward kernel from the saved y."""

    @staticmethod
    def forward(ctx, x, name, dim):
        y = _softmax_forward(x, name, dim)
        ctx.name, ctx.dim = name, dim
        ctx.save_for_backward(y)
        ctx.save_for_forward(y)
        return y

    @staticmethod
    def backward(ctx, grad_output):
        y, = ctx.saved_tensors
        return (_softmax_backward(ctx.name, grad_output, y, ctx.dim, torch.is_grad_enabled()),
                None, None)

    @staticmethod
    def jvp(ctx, x_tangent, *_):
        y, = ctx.saved_tensors
        if ctx.name == "log_softmax":
            return x_tangent - (y.exp() * x_tangent).sum(ctx.dim, keepdim=True)
        return _softmax_backward(ctx.name, x_tangent, y, ctx.dim, _records(x_tangent, y))


def _implicit_dim(name, ndim, stacklevel):
    """PyTorch's rule for dim=None (torch.nn.functional._get_softmax_dim), its warning
    included: 0 for 0, 1 and 3 dimensions, else 1."""
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. "
                  "Change the call to include dim=X as an argument.", stacklevel=stacklevel)
    return 0 if ndim in (0, 1, 3) else 1


def _make_softmax(spec):
    name = spec.name
    torch_function = getattr(F, name)
    autograd_fn = type(f"{spec.cls_name}Function", (_SoftmaxFunction,), {"__module__": __name__})

    def function(input, dim=None, _stacklevel=3, dtype=None):
        if not isinstance(input, torch.Tensor):
            return torch_function(input, dim, _stacklevel + 1, dtype)
        if dim is None:
            dim = _implicit_dim(name, input.dim(), _stacklevel)
        if dtype is not None:
            input = input.to(dtype)                 # as PyTorch: cast, then compute
        if not (_eligible(input) and input.dim() > 0 and input.numel() > 0):
            return torch_function(input, dim)
        if isinstance(dim, bool) or not isinstance(dim, int) or \
                not -input.dim() <= dim < input.dim():
            return torch_function(input, dim)       # PyTorch's errors (or named dims)
        if _untracked(input):                       # no graph: the autograd function's y
            return _softmax_forward(input, name, dim % input.dim())
        return autograd_fn.apply(input, name, dim % input.dim())

    function.__name__ = function.__qualname__ = name
    function.__module__ = __name__
    function.__doc__ = (f"``F.{name}(input, dim, dtype=dtype)`` by fastact's kernels with "
                        f"autograd (docs/softmax.md); PyTorch computes other tensors.")

    base = getattr(torch.nn, spec.cls_name)

    def forward(self, input):
        return function(input, self.dim, _stacklevel=5)

    module = type(spec.cls_name, (base,), {
        "forward": forward, "__module__": __name__,
        "__doc__": f"As torch.nn.{spec.cls_name} (``dim=None``: PyTorch's implicit dim, "
                   f"with its warning); computed by fastact."})
    return function, module


_register(_make_softmax, SOFTMAX_TABLE)
