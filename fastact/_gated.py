"""Arrays in, results out for the gated units and prelu/rrelu (docs/gated.md).

The rules of fastact._arrays (dtypes, out=, layouts, the one place that raises for bad
arrays) with these calls' shapes. A gated unit's x is split along dim into a and the
gate and read in place: a C-contiguous x is ``(outer, 2, m)`` in memory, a the rows
``[:, 0]`` and the gate ``[:, 1]`` (an F-contiguous x is its transpose's C layout; any
other is copied once). prelu's x is ``(N, C, inner)``, one weight per channel. The
backends compute on these views: the compiled one through fastact._runner.gated (a block
per thread) and fastact._runner.segments (prelu: fixed blocks for the weight's gradient),
the NumPy one through fastact._numpy_backend.gated/prelu.
"""
import math

import numpy as np

from . import _arrays, _backend, _numpy_backend
from ._activations import (GATED_ENTRIES, GATED_KERNELS, KERNEL_INDEX, PRELU_ENTRIES,
                           SEGMENT_INDEX)

BLOCK = 1 << 15        # elements of a block of prelu's weight gradient (fixed: the sums
                       # do not depend on the thread count)
# the gated entries (GATED_ENTRIES), and which of them give y
_FWD, _GRAD, _BWD, _FB, _FBG = range(len(GATED_ENTRIES))
_HAS_Y = {_FWD: True, _GRAD: False, _BWD: False, _FB: True, _FBG: True}


# ---- the compiled backend's side: views -> fastact._runner.segments ----

def _slot(view):
    """A 2-D view (rows, m) with contiguous rows as a segment slot."""
    if view is None:
        return None
    assert view.ndim == 2 and (view.shape[1] <= 1 or view.strides[1] == view.itemsize)
    return (view, view.strides[0], view.itemsize, 0, 0)


def _compiled_gated(kernel, entry, g, a, b, outs):
    gk = GATED_KERNELS[kernel]
    o1, o2, o3 = tuple(outs) + (None,) * (3 - len(outs))
    _backend._runner.gated(SEGMENT_INDEX[f"{gk.name}_{GATED_ENTRIES[entry]}"],
                           KERNEL_INDEX[gk.f], g, a, b, o1, o2, o3)


def _compiled_prelu(entry, g, x, w, outs):
    """As fastact._numpy_backend.prelu. One weight per channel: rows (n, c) of the inner
    elements (a weight per row) when inner > 1 or C == 1, else rows n of the C channels
    (a weight per element); one weight per element (w of x's shape): one row. The weight's
    gradient is summed per block (of a size fixed by the shape) into float64 partial sums,
    then over the blocks in order."""
    n_, c, inner = x.shape
    total, isz = x.size, x.itemsize
    name = PRELU_ENTRIES[entry]
    block = max(BLOCK, 64 * c) if name.endswith("w") else 0
    partial = np.zeros((-(-total // block), c)) if name.endswith("w") else None
    if w.ndim != 1:                                   # a weight per element: one row
        mode, rows, m, wslot, aslot = "v", 1, total, (w, 0, isz, 0, 0), None
    elif inner > 1 or c == 1:                         # rows (n, c): w[r % c]
        mode, rows, m = "s", n_ * c, inner
        if c == 1:
            rows, m = 1, total
        wslot = (w, isz, 0, 0, c)
        aslot = None if partial is None else (partial, 8, 0, 8 * c, c)
    else:                                             # rows n: w[j]
        mode, rows, m = "v", n_, c
        wslot = (w, 0, isz, 0, 0)
        aslot = None if partial is None else (partial, 0, 8, 8 * c, 0)
    flat = [None if v is None else v.reshape(rows, m) for v in (g, x) + tuple(outs)]
    slots = (_slot(flat[0]), _slot(flat[1]), wslot,
             *(_slot(v) for v in flat[2:]), *(None,) * (2 - len(outs)), aslot)
    _backend._runner.segments(SEGMENT_INDEX[f"prelu_{mode}_{name}"], _backend._runner.dtype_index(x),
                              KERNEL_INDEX["leaky_relu"], slots, total, m, block)
    return None if partial is None else partial.sum(axis=0)


def _backend_impl():
    if _backend.active is _backend.NUMPY:
        return _numpy_backend.gated, _numpy_backend.prelu
    return _compiled_gated, _compiled_prelu


# ---- common array rules ----

def _result(arrays, names, weak=()):
    result = _arrays.common_dtype(arrays, names, weak)
    return result, result           # (the kernels compute in the result's dtype)


def _prepared(a, dtype, order="C"):
    """a as an aligned, native array of dtype, contiguous in order: a itself if it is."""
    flags = a.flags
    if a.dtype == dtype and flags.aligned and (flags.c_contiguous if order == "C" else
                                               flags.f_contiguous):
        return a
    return np.require(a, dtype=dtype, requirements=[order, "A"])


def half_shape(shape, dim):
    """The shape of a split unit's result: shape with dim (either sign) halved."""
    shape, dim = tuple(shape), dim % len(shape)
    return shape[:dim] + (shape[dim] // 2,) + shape[dim + 1:]


def _target(out, shape, dtype, inputs, order="C"):
    """Where the kernel writes a result of shape: out itself when it can, else a new
    array (copied into out afterwards). An out sharing memory with an input, even as the
    very same elements, gets a new array: the segment loops take their arrays as not
    aliased (restrict), and an entry with several outputs reads its inputs after writing
    the first."""
    if out is None:
        return np.empty(shape, dtype, order=order)
    if out.dtype == dtype and out.flags.aligned and \
            (out.flags.c_contiguous if order == "C" else out.flags.f_contiguous) and \
            not any(np.may_share_memory(out, a) for a in inputs if a is not None):
        return out
    return np.empty(shape, dtype, order=order)


def _finish(target, out, result):
    """The user's result: out (filled), or the computed array in the result dtype."""
    if out is not None:
        if target is not out:
            np.copyto(out, target, casting="same_kind")
        return out
    res = target if target.dtype == result else target.astype(result, order="K")
    return res[()] if res.ndim == 0 else res


def _check_outs(outs, names, shapes, result):
    if all(o is None for o in outs):
        return
    for out, name, shape in zip(outs, names, shapes):
        _arrays.check_out(out, name, shape, result)
    given = [o for o in outs if o is not None]
    for i, o in enumerate(given):
        for p in given[i + 1:]:
            if np.may_share_memory(o, p):
                raise ValueError("the output arrays must not overlap")


def resolve_dim(dim, axis, name):
    """dim (PyTorch's word) or axis (NumPy's), not both (dim at its default -1 is not
    given)."""
    if axis is not None:
        if dim is not None and dim != -1:
            raise TypeError(f"{name}() takes dim or axis, not both")
        dim = axis
    return -1 if dim is None else dim


def normalize_dim(dim, axis, ndim, name):
    """dim or axis (resolve_dim), as an index in range(ndim)."""
    given = resolve_dim(dim, axis, name)
    dim = _arrays.as_index(given)
    if dim is None:
        raise TypeError(f"dim must be an integer, got {type(given).__name__}")
    if not -ndim <= dim < ndim:
        raise np.exceptions.AxisError(dim, ndim)
    return dim % ndim


# ---- gated units ----

_FAST = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16))


def _ready(a, dtype, shape):
    """An ndarray the kernels take as it is: dtype (native), C-contiguous, aligned."""
    return type(a) is np.ndarray and a.dtype == dtype and a.flags.c_contiguous and \
        a.flags.aligned and a.shape == shape


_MASKED = "pass x.filled(value) and mask the result yourself"


def _split_fast(kernel, entry, g, x, dim, out, grad_out):
    """split's common case (C-contiguous float32/float64 arrays, outputs absent or of
    the same kind and apart from the inputs) with the least Python; None otherwise."""
    if type(x) is not np.ndarray or (x.dtype not in _FAST and not _arrays.is_bfloat16(x.dtype)) \
            or not x.flags.c_contiguous or \
            not x.flags.aligned or type(dim) is not int or x.ndim == 0:
        return None
    shape, ndim = x.shape, x.ndim
    if not -ndim <= dim < ndim:
        return None
    dim %= ndim
    if shape[dim] % 2:
        return None
    yshape = half_shape(shape, dim)
    dtype = x.dtype
    if g is not None and not _ready(g, dtype, yshape):
        return None
    has_y = _HAS_Y[entry]
    y_out, gx_out = (out, grad_out) if has_y else (None, out)
    for o, oshape in ((y_out, yshape), (gx_out, shape)):
        if o is not None and (not _ready(o, dtype, oshape) or not o.flags.writeable or
                              np.may_share_memory(o, x) or
                              (g is not None and np.may_share_memory(o, g))):
            return None
    if y_out is not None and gx_out is not None and np.may_share_memory(y_out, gx_out):
        return None
    y = (np.empty(yshape, dtype) if y_out is None else y_out) if has_y else None
    gx = (np.empty(shape, dtype) if gx_out is None else gx_out) if entry != _FWD else None
    outer = math.prod(shape[:dim])
    m = shape[dim] // 2 * math.prod(shape[dim + 1:])
    if outer * m:
        x3 = x.reshape(outer, 2, m)
        g3 = None if gx is None else gx.reshape(outer, 2, m)
        gk = GATED_KERNELS[kernel]
        outs = ([y.reshape(outer, m)] if has_y else []) + \
            ([] if g3 is None else [g3[:, 0], g3[:, 1]])
        outs += [None] * (3 - len(outs))
        _backend._runner.gated(
            SEGMENT_INDEX[f"{gk.name}_{GATED_ENTRIES[entry]}"], KERNEL_INDEX[gk.f],
            None if g is None else g.reshape(outer, m), x3[:, 0], x3[:, 1], *outs)
    if not has_y:
        return gx
    return y if gx is None else (y, gx)


def split(kernel, entry, g, x, dim, axis, out, grad_out, name):
    """A gated entry on x split along dim (g: grad_output for bwd/fbg). Returns y, the
    gradient (x's shape) or (y, gradient)."""
    if axis is None and _backend.active is not _backend.NUMPY:
        r = _split_fast(kernel, entry, g, x, dim, out, grad_out)
        if r is not None:
            return r
    if _arrays.is_dask(x) or _arrays.is_dask(g):
        _no_out(out, grad_out)
        return _lazy_split(kernel, entry, g, x, dim, axis, name)
    _arrays.refuse_masked((x, g), name, _MASKED)
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError(f"{name}() needs an array of at least one dimension (a and the "
                         f"gate are the halves of x along dim)")
    dim = normalize_dim(dim, axis, x.ndim, name)
    if x.shape[dim] % 2:
        raise ValueError(f"{name}(): the size of x along dim {dim} must be even (a and the "
                         f"gate are its halves), got {x.shape[dim]}")
    yshape = half_shape(x.shape, dim)
    arrays, names = ([x], ["x"]) if g is None else ([np.asarray(g), x], ["grad_output", "x"])
    result, dtype = _result(arrays, names, _arrays.weak_scalars((g, x)[-len(arrays):]))
    if g is not None and arrays[0].shape != yshape:
        raise ValueError(f"grad_output has shape {arrays[0].shape}, expected {yshape} (x's "
                         f"shape with dim {dim} halved)")
    has_y, has_grad = _HAS_Y[entry], entry != _FWD
    y_out, gx_out = (out if has_y else None), (grad_out if has_y else out)
    _check_outs((y_out, gx_out), ("out", "grad_out" if has_y else "out"),
                (yshape, x.shape), result)

    # the working orientation: C order (an F-contiguous x is computed as its transpose)
    flip = x.ndim > 1 and x.flags.f_contiguous and not x.flags.c_contiguous
    t = (lambda v: None if v is None else v.T) if flip else (lambda v: v)
    wdim = x.ndim - 1 - dim if flip else dim
    xw = _prepared(t(x), dtype)
    gw = None if g is None else _prepared(t(arrays[0]), dtype)
    outer = math.prod(xw.shape[:wdim])
    m = xw.shape[wdim] // 2 * math.prod(xw.shape[wdim + 1:])
    inputs = (xw, gw)
    yshape_w = half_shape(xw.shape, wdim)
    y_t = _target(t(y_out), yshape_w, dtype, inputs) if has_y else None
    gx_t = _target(t(gx_out), xw.shape, dtype, inputs) if has_grad else None
    if outer * m:
        x3 = xw.reshape(outer, 2, m)
        outs = []
        if has_y:
            outs.append(y_t.reshape(outer, m))
        if has_grad:
            g3 = gx_t.reshape(outer, 2, m)
            outs += [g3[:, 0], g3[:, 1]]
        gated, _ = _backend_impl()
        gated(kernel, entry, None if gw is None else gw.reshape(outer, m), x3[:, 0], x3[:, 1],
              tuple(outs))
    results = []
    if has_y:
        results.append(_finish(t(y_t), y_out, result))
    if has_grad:
        results.append(_finish(t(gx_t), gx_out, result))
    return results[0] if len(results) == 1 else tuple(results)


def _pair_fast(kernel, entry, g, a, b, out, grad_out):
    """pair's common case (a, the gate and g C-contiguous arrays of one shape and of
    float32/float64/float16/bfloat16, outputs absent or of the same kind and apart from
    the inputs and each other) with the least Python; None otherwise."""
    if type(b) is not np.ndarray or (b.dtype not in _FAST and not _arrays.is_bfloat16(b.dtype)) \
            or b.ndim == 0 or not b.flags.c_contiguous or not b.flags.aligned:
        return None
    dtype, shape = b.dtype, b.shape
    inputs = (a, b) if g is None else (g, a, b)
    if not all(_ready(v, dtype, shape) for v in inputs):
        return None
    has_y, has_grad = _HAS_Y[entry], entry != _FWD
    grads = (grad_out if has_y else out) if has_grad else None
    if grads is None:
        grads = (None, None)
    elif type(grads) is not tuple or len(grads) != 2:
        return None
    outs = [out if has_y else None, *grads]
    wanted = (has_y, has_grad, has_grad)
    for i, (o, w) in enumerate(zip(outs, wanted)):
        if o is None:
            if w:
                outs[i] = np.empty(shape, dtype)
        elif not _ready(o, dtype, shape) or not o.flags.writeable or \
                any(np.may_share_memory(o, v) for v in inputs) or \
                any(p is not None and np.may_share_memory(o, p) for p in outs[:i]):
            return None
    n = b.size
    if n:
        views = [o.reshape(1, n) for o in outs if o is not None]
        _compiled_gated(kernel, entry, None if g is None else g.reshape(1, n), a.reshape(1, n),
                        b.reshape(1, n), views)
    results = [o for o, w in zip(outs, wanted) if w]
    return results[0] if len(results) == 1 else tuple(results)


def pair(kernel, entry, g, a, b, out, grad_out, name):
    """A gated entry on a and the gate b (g: grad_output for bwd/fbg). Returns y, the
    pair of gradients, or (y, grad_a, grad_gate)."""
    if _backend.active is not _backend.NUMPY:
        r = _pair_fast(kernel, entry, g, a, b, out, grad_out)
        if r is not None:
            return r
    inputs = (a, b) if g is None else (g, a, b)
    names = ("a", "gate") if g is None else ("grad_output", "a", "gate")
    if any(_arrays.is_dask(v) for v in inputs):
        _no_out(out, grad_out)
        return _lazy_pair(kernel, entry, inputs, names)
    _arrays.refuse_masked(inputs, name, _MASKED)
    arrays = [np.asarray(v) for v in inputs]
    result = _arrays.check_inputs(arrays, names, _arrays.weak_scalars(inputs))  # same shapes
    dtype = result
    shape = arrays[-1].shape
    has_y, has_grad = _HAS_Y[entry], entry != _FWD
    grads = (grad_out if has_y else out) if has_grad else None
    if grads is None:
        grads = (None, None)
    elif not (isinstance(grads, tuple) and len(grads) == 2):
        raise TypeError(f"{'grad_out' if has_y else 'out'} must be a pair of arrays "
                        f"(grad_a, grad_gate) or None in the two-array form")
    outs = ((out if has_y else None),) + tuple(grads)
    out_names = ("out", "grad_a out", "grad_gate out")
    _check_outs(outs, out_names, (shape,) * 3, result)
    first = arrays[-2]
    order = "F" if first.ndim > 1 and first.flags.f_contiguous and \
        not first.flags.c_contiguous else "C"
    flat = [_prepared(v, dtype, order).reshape(-1, order=order) for v in arrays]
    wanted = [has_y, has_grad, has_grad]
    targets = [_target(o, shape, dtype, arrays, order) if w else None
               for o, w in zip(outs, wanted)]
    n = flat[-1].size
    if n:
        gv = None if g is None else flat[0].reshape(1, n)
        views = tuple(t.reshape(-1, order=order).reshape(1, n) for t in targets
                      if t is not None)
        gated, _ = _backend_impl()
        gated(kernel, entry, gv, flat[-2].reshape(1, n), flat[-1].reshape(1, n), views)
    results = [_finish(t, o, result) for t, o, w in zip(targets, outs, wanted) if w]
    return results[0] if len(results) == 1 else tuple(results)


# ---- dask ----

def _no_out(out, grad_out):
    if out is not None or grad_out is not None:
        raise TypeError("out= is not supported with dask arrays (the result is lazy)")


def _lazy_split(kernel, entry, g, x, dim, axis, name):
    import dask.array as da

    x = x if _arrays.is_dask(x) else da.from_array(np.asarray(x))
    if x.ndim == 0:
        raise ValueError(f"{name}() needs an array of at least one dimension")
    dim = normalize_dim(dim, axis, x.ndim, name)
    if len(x.chunks[dim]) != 1:
        raise ValueError(f"{name}(): x has {len(x.chunks[dim])} chunks along dim {dim}; the "
                         f"gated dim must be in one chunk (x.rechunk({{{dim}: -1}}))")
    if x.shape[dim] % 2:
        raise ValueError(f"{name}(): the size of x along dim {dim} must be even, got "
                         f"{x.shape[dim]}")
    ychunks = tuple(c if i != dim else (x.shape[dim] // 2,) for i, c in enumerate(x.chunks))
    arrays = [x]
    if g is not None:
        g = g if _arrays.is_dask(g) else da.from_array(np.asarray(g))
        yshape = tuple(sum(c) for c in ychunks)
        if g.shape != yshape:
            raise ValueError(f"grad_output has shape {g.shape}, expected {yshape}")
        arrays = [g.rechunk(ychunks), x]
    result, _ = _result([np.empty(0, a.dtype) for a in arrays],
                        ["grad_output", "x"][-len(arrays):])
    def run(e, chunks):
        def block(*blocks):
            gb, xb = (None,) + blocks if len(blocks) == 1 else blocks
            return split(kernel, e, gb, xb, dim, None, None, None, name)
        return da.map_blocks(block, *arrays, chunks=chunks, dtype=result,
                             token=f"fastact-{GATED_KERNELS[kernel].name}-{GATED_ENTRIES[e]}",
                             meta=np.empty((0,) * x.ndim, result))

    if entry == _FWD:
        return run(_FWD, ychunks)
    grad_entry = _GRAD if entry in (_GRAD, _FB) else _BWD
    grad = run(grad_entry, x.chunks)
    if entry in (_GRAD, _BWD):
        return grad
    return run(_FWD, ychunks), grad


def _lazy_pair(kernel, entry, inputs, names):
    from . import _dask

    arrays = [v if _arrays.is_dask(v) else np.asarray(v) for v in inputs]
    result = _arrays.check_inputs(arrays, names, _arrays.weak_scalars(inputs))
    nout = (1 if _HAS_Y[entry] else 0) + (2 if entry != _FWD else 0)
    token = f"fastact-{GATED_KERNELS[kernel].name}-{GATED_ENTRIES[entry]}"
    return _dask.map_blocks(_pair_block, arrays, nout, result, token, kernel=kernel,
                            entry=entry)


def _pair_block(*blocks, kernel, entry, nout):
    g, a, b = (None,) + blocks if len(blocks) == 2 else blocks
    r = pair(kernel, entry, g, a, b, None, None, "")
    return np.stack(r) if nout > 1 else r


# ---- prelu and rrelu: leaky_relu with a slope per channel or per element ----

def check_weight(weight, x_ndim, channels):
    """prelu's weight as a flat array (PyTorch's rules: a scalar or 1-D, of one element or
    one per channel along dim 1)."""
    w = np.asarray(weight)
    if w.dtype.kind not in "iuf" and not _arrays.is_bfloat16(w.dtype):
        # a bool weight is refused, as a bool parameter is (and as PyTorch's prelu does)
        raise TypeError(f"weight has dtype {w.dtype}; prelu's weight is a real number or "
                        f"numbers (not bool)")
    if w.ndim > 1:
        raise ValueError(f"prelu: the weight must be a scalar or 1-D, got {w.ndim} dimensions")
    if w.size != 1 and w.size != channels:
        raise ValueError(f"prelu: the weight has {w.size} elements; it needs 1 or one per "
                         f"channel (x.shape[1] = {channels})" if x_ndim >= 2 else
                         f"prelu: the weight has {w.size} elements; x of {x_ndim} dimensions "
                         f"has no channel dim, so it needs 1")
    return w


# the largest finite value of each dtype the kernels take, by dtype code (float32,
# float64, float16, bfloat16): a float weight beyond it goes through weighted
_FINITE_MAX = (3.4028234663852886e+38, 1.7976931348623157e+308, 65504.0,
               3.3895313892515355e+38)


def prelu_fast(x, weight):
    """prelu's forward in the common case, straight to the kernel (the compiled backend;
    x a C-contiguous, aligned, native ndarray of a dtype the kernels take, not empty;
    weight a float, or an aligned 1-D or 0-d ndarray of x's dtype with one value or one
    per channel; no out=): y, as weighted gives it; None for weighted."""
    if _backend.active is _backend.NUMPY or type(x) is not np.ndarray or x.ndim == 0 \
            or x.size == 0:
        return None
    flags = x.flags
    if not (flags.c_contiguous and flags.aligned and x.dtype.isnative):
        return None
    code = _backend._runner.dtype_index(x)
    if code < 0:
        return None
    dtype, shape = x.dtype, x.shape
    if type(weight) is float:
        if abs(weight) > _FINITE_MAX[code]:
            return None
        w = np.array([weight]).astype(dtype)
    elif type(weight) is np.ndarray and weight.dtype == dtype and weight.ndim <= 1 and \
            weight.flags.c_contiguous and weight.flags.aligned:
        w = weight.reshape(-1)
        if w.size != 1 and (x.ndim < 2 or w.size != shape[1]):
            return None                     # (weighted's error)
    else:
        return None
    c = w.size
    n_, inner = (1, x.size) if c == 1 else (shape[0], math.prod(shape[2:]))
    y = np.empty_like(x)
    _compiled_prelu(PRELU_ENTRIES.index("fwd"), None, x.reshape(n_, c, inner), w,
                    (y.reshape(n_, c, inner),))
    return y


def weighted(entry, g, x, weight, outs, names, per_element=False):
    """PRELU_ENTRIES[entry] on x (and g, grad_output) with prelu's weight (per_element:
    an array of x's shape and compute dtype, rrelu's slopes). outs: the user's arrays for
    the entry's outputs (y and/or d, then grad_weight for the w entries). Returns the
    results in that order (one alone, else a tuple)."""
    if any(_arrays.is_dask(v) for v in (g, x, weight)):
        raise TypeError("prelu and rrelu do not take dask arrays (the weight's gradient is "
                        "a reduction over every block, rrelu's slopes one random sequence)")
    if not per_element:                 # rrelu refuses them itself, in both modes
        _arrays.refuse_masked((g, x, weight), "prelu", _MASKED)
    arrays = [np.asarray(x)] if g is None else [np.asarray(g), np.asarray(x)]
    result = _arrays.check_inputs(arrays, ("grad_output", "x")[-len(arrays):],
                                  _arrays.weak_scalars((g, x)[-len(arrays):]))
    dtype = result
    x = arrays[-1]
    shape = x.shape
    if per_element:
        # rrelu's slopes, drawn in x's dtype, widened here to the result dtype
        w, wshape = _prepared(weight, dtype), None
        n_, c, inner = 1, 1, x.size
    else:
        channels = shape[1] if x.ndim >= 2 else 1
        w0 = check_weight(weight, x.ndim, channels)
        # the weight in x's dtype (a parameter: a wider grad_output does not promote it),
        # then widened to the result dtype
        with np.errstate(over="ignore"):             # a weight beyond float32: inf
            w = np.ascontiguousarray(w0.reshape(-1).astype(_arrays.result_dtype(x, "x")),
                                     dtype=dtype)
        wshape = w0.shape
        c = w.size
        n_, inner = (1, x.size) if c == 1 else (shape[0], math.prod(shape[2:]))
    name = PRELU_ENTRIES[entry]
    reduce = name.endswith("w")
    n_arr = len(outs) - reduce
    _check_outs(outs[:n_arr], names[:n_arr], (shape,) * n_arr, result)
    if reduce:
        _arrays.check_out(outs[-1], names[-1], wshape, result)
    xs = [_prepared(a, dtype) for a in arrays]
    targets = [_target(o, shape, dtype, xs) for o in outs[:n_arr]]
    gw = None
    if x.size:
        x3 = [a.reshape(n_, c, inner) for a in xs]
        w3 = w.reshape(n_, c, inner) if per_element else w
        _, impl = _backend_impl()
        gw = impl(entry, None if g is None else x3[0], x3[-1], w3,
                  tuple(t.reshape(n_, c, inner) for t in targets))
    results = [_finish(t, o, result) for t, o in zip(targets, outs)]
    if x.ndim > 1 and x.flags.f_contiguous and not x.flags.c_contiguous:
        # computed in C order; returned in x's layout, as the elementwise functions do
        results = [np.asfortranarray(r) if o is None else r for r, o in zip(results, outs)]
    if reduce:
        if gw is None:                               # no element (a channel count may be 0)
            gw = np.zeros(c)
        with np.errstate(over="ignore"):             # a sum beyond float32: inf
            gw = gw.reshape(wshape).astype(result)
        results.append(_finish(gw, outs[-1], result) if outs[-1] is not None else
                       (gw[()] if gw.ndim == 0 else gw))
    return results[0] if len(results) == 1 else tuple(results)


def rrelu_slopes(shape, dtype, lower, upper, seed, rng):
    """rrelu's training slopes: lo + (hi - lo) u in dtype, lo and hi the bounds rounded
    to dtype, u from rng (else default_rng(seed)) drawn per element in C order."""
    if rng is None:
        rng = np.random.default_rng(seed)
    elif seed is not None:
        raise TypeError("rrelu takes seed or rng, not both")
    elif not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    with np.errstate(over="ignore"):                 # bounds beyond float32: +-inf
        lo, hi = (dtype.type(lower), dtype.type(upper)) if dtype.itemsize != 2 else \
            (float(np.float32(lower)), float(np.float32(upper)))
    if not (np.isfinite(lo) and np.isfinite(hi)):     # NaN or infinite slopes, as inf bounds
        raise ValueError(f"rrelu's bounds must be finite in the slopes' dtype "
                         f"({'float32' if dtype.itemsize == 2 else dtype.name}): {lower!r} and "
                         f"{upper!r} round to {lo} and {hi}")
    if dtype.itemsize != 2:                          # (the bounds rounded to dtype)
        u = rng.random(shape, dtype=dtype)
        u *= hi - lo
        u += lo
        return u
    # float16, bfloat16 (computed in float32): the bounds rounded to float32, u drawn in
    # float32 (the same stream, in pieces: no array of x's size but the 16-bit slopes),
    # lo + (hi - lo) u in float64 (exact but for one rounding: a float32 sum near 0
    # would cancel), rounded once to dtype
    slopes = np.empty(shape, dtype)
    flat = slopes.reshape(-1)
    for i in range(0, flat.size, 1 << 16):
        u = rng.random(min(1 << 16, flat.size - i), dtype=np.float32).astype(np.float64)
        u *= hi - lo
        u += lo
        flat[i:i + u.size] = u
    return slopes
