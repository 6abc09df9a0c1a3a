"""Arrays in, results out: the one way every fastact call computes (docs/contract.md,
*Arrays*).

``compute`` is what fastact._api calls: the active backend's fast path (``fast``, the
common case straight to a kernel) first, else dask arrays (fastact._dask, lazily), masked
arrays, or ``run``, the general path: it checks whatever the user passed, brings the
inputs to one contiguous, aligned, native-order dtype (float32, float64, float16 or bfloat16: the 16-bit
types are read and written as they are, computed in float32 by the kernels), picks or
allocates the outputs, calls the backend's ``launch`` on flat arrays, and shapes the
results. It is the complete rule set and the only place that raises for bad arrays.
"""
import numpy as np

from . import _backend
from ._activations import ENTRIES, KERNELS

ACCEPTED = "float16, bfloat16 (ml_dtypes), float32, float64, bool or integer"
_F16, _F32, _F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)


def is_bfloat16(dt):
    """Whether a NumPy dtype is ml_dtypes.bfloat16 (recognised without importing it)."""
    return dt.name == "bfloat16" and dt.type.__module__.startswith("ml_dtypes")


def is_dask(a):
    """A dask array, recognised without importing dask."""
    return type(a).__module__.startswith("dask.")


def refuse_masked(arrays, name, hint):
    """TypeError for masked arrays (numpy.ma) among arrays: the functions that are not
    elementwise (the gated units, prelu, rrelu, the softmax family) would compute on the
    masked data, where a mask has no one meaning (hint says what to do instead)."""
    if any(isinstance(a, np.ma.MaskedArray) for a in arrays):
        raise TypeError(f"{name}() does not take masked arrays: {hint}")


def as_index(v):
    """v as an int where it is an integer as NumPy's axis= takes one (int, a NumPy
    integer, a 0-d integer array; not a bool), else None."""
    if isinstance(v, (bool, np.bool_)):
        return None
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in "iu":
        return int(v)
    return None


def result_dtype(a, name):
    """The dtype fastact returns for an array of a's dtype (native byte order)."""
    dt = a.dtype
    if (dt.kind == "f" and dt.itemsize in (2, 4, 8)) or is_bfloat16(dt):
        return np.dtype(dt.type)
    if dt.kind in "biu":
        return _F64
    raise TypeError(f"{name} has dtype {dt}; fastact accepts {ACCEPTED} arrays "
                    f"(bool and integers are computed in float64)")


def promote(a, b, names):
    """NumPy's promotion of two result dtypes (ml_dtypes defines bfloat16's: with float32
    float32, with float64 float64, with float16 float32 from ml_dtypes 0.7 on and none
    before); TypeError naming the inputs where there is none."""
    try:
        return np.promote_types(a, b)
    except TypeError:
        raise TypeError(f"{names[0]} ({a}) and {names[1]} ({b}) have no common dtype "
                        f"(NumPy and ml_dtypes define none); convert one of them, e.g. "
                        f"both to float32") from None


def weak_scalars(values):
    """Which of the values are Python bool, int or float: NumPy 2's weak scalars, which
    take the dtype of the other inputs (``np.float32(0.5) * 2.0`` is float32)."""
    return tuple(type(v) in (bool, int, float) for v in values)


def common_dtype(arrays, names, weak=()):
    """The result dtype of the inputs (arrays, after numpy.asarray): the promotion of
    their result dtypes, leaving out those that weak (weak_scalars of what the user
    passed) marks, unless every input is weak; TypeError for a refused dtype."""
    typed = [(a, n) for a, n, w in zip(arrays, names, weak or (False,) * len(arrays))
             if not w] or list(zip(arrays, names))
    result = result_dtype(*typed[0])
    for a, name in typed[1:]:
        result = promote(result, result_dtype(a, name), (typed[0][1], name))
    return result


def check_inputs(arrays, names, weak=()):
    """Raise unless the inputs (NumPy or dask arrays) share x's shape and have accepted
    dtypes; returns their common_dtype."""
    result = common_dtype(arrays, names, weak)
    for a, name in zip(arrays[:-1], names[:-1]):
        if a.shape != arrays[-1].shape:
            raise ValueError(f"{name} has shape {a.shape} but {names[-1]} has shape "
                             f"{arrays[-1].shape}")
    return result


def check_out(out, name, shape, dtype):
    """Raise unless out can receive a result of this shape and dtype (no casting)."""
    if out is None:
        return
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype.newbyteorder("=") != dtype:
        raise TypeError(f"{name} has dtype {out.dtype}, expected {dtype} (fastact does not cast)")
    if out.shape != shape:
        raise ValueError(f"{name} has shape {out.shape}, expected {shape}")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")


def _contiguous(a, order):
    return a.flags.c_contiguous if order == "C" else a.flags.f_contiguous


def _flat_input(a, dtype, order):
    """a as a flat array of dtype the kernels can read: a view when possible."""
    if a.dtype == dtype and a.flags.aligned and _contiguous(a, order):
        return a.reshape(-1, order=order)
    return np.array(a, dtype=dtype, order=order).reshape(-1, order=order)


def _same_memory(a, b):
    return (a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
            and a.strides == b.strides and a.dtype == b.dtype)


def _writes_directly(out, dtype, order, flat_inputs):
    """Whether the kernel can write into out itself: right layout, and no input partially
    overlapping it (an input that is exactly out is fine: in place)."""
    if out.dtype != dtype or not out.flags.aligned or not _contiguous(out, order):
        return False
    flat = out.reshape(-1, order=order)
    return all(_same_memory(flat, a) or not np.may_share_memory(flat, a) for a in flat_inputs)


def run(launch, kernel, entry, inputs, names, outs, out_names, params):
    """Compute entry of kernel on inputs into outs (None: allocate); returns the result,
    or a tuple of results when there are two outputs."""
    arrays = [np.asarray(a) for a in inputs]
    result = dtype = check_inputs(arrays, names, weak_scalars(inputs))  # computed in it
    x = arrays[-1]
    shape = x.shape
    for out, name in zip(outs, out_names):
        check_out(out, name, shape, result)
    if len(outs) == 2 and outs[0] is not None and outs[1] is not None \
            and np.may_share_memory(outs[0], outs[1]):
        raise ValueError(f"{out_names[0]} and {out_names[1]} must not overlap")

    order = "F" if x.ndim > 1 and x.flags.f_contiguous and not x.flags.c_contiguous else "C"
    flat_inputs = tuple(_flat_input(a, dtype, order) for a in arrays)
    direct = [out is not None and _writes_directly(out, dtype, order, flat_inputs)
              for out in outs]
    targets = tuple(out.reshape(-1, order=order) if d else np.empty(x.size, dtype)
                    for out, d in zip(outs, direct))
    launch(kernel, entry, flat_inputs, targets, params)

    results = []
    for out, target, d in zip(outs, targets, direct):
        shaped = target.reshape(shape, order=order)
        if out is None:
            results.append(shaped[()] if x.ndim == 0 else shaped)
        else:
            if not d:
                np.copyto(out, shaped, casting="same_kind")
            results.append(out)
    return results[0] if len(results) == 1 else tuple(results)


def compute(kernel, entry, a, b, o1, o2, params, names, out_names):
    """entry of kernel with the active backend, on the kernel's own slots: inputs a, b
    (grad_output first; b unused where names has one) into outputs o1, o2 (None:
    allocate; o2 unused where out_names has one). The result, or a tuple of two."""
    backend = _backend.active
    fast = backend.fast                 # an attribute load: faster than a method call
    r = fast(kernel, entry, a, b, o1, o2, params)
    if r is not None:
        return r
    inputs, outs = (a, b)[:len(names)], (o1, o2)[:len(out_names)]
    if any(is_dask(x) for x in inputs):
        return _lazy(kernel, entry, inputs, names, outs, params)
    if any(isinstance(x, np.ma.MaskedArray) for x in inputs):
        return _masked(backend.launch, kernel, entry, inputs, names, outs, out_names, params)
    return run(backend.launch, kernel, entry, inputs, names, outs, out_names, params)


def _masked(launch, kernel, entry, inputs, names, outs, out_names, params):
    """Masked arrays as NumPy's ufuncs treat them: computed on the data, returned masked
    where any input it reads is (out= must then be a masked array too, and gets the
    mask): forward_backward's y with a grad_output reads x alone, and takes x's mask."""
    masks = [np.ma.getmaskarray(a) for a in inputs]
    mask = np.logical_or.reduce(masks)
    out_masks = [mask] * len(outs)
    if len(out_names) == 2 and names[0] == "grad_output":
        out_masks[0] = masks[1]
    plain_outs = tuple(np.ma.getdata(o) if o is not None else None for o in outs)
    for o, name in zip(outs, out_names):
        if o is not None and not isinstance(o, np.ma.MaskedArray):
            raise TypeError(f"{name} must be a numpy.ma.MaskedArray for masked inputs")
    r = run(launch, kernel, entry, tuple(np.ma.getdata(a) for a in inputs), names,
            plain_outs, out_names, params)
    results = r if isinstance(r, tuple) else (r,)
    wrapped = []
    for res, o, m in zip(results, outs, out_masks):
        m = np.broadcast_to(m, np.shape(res))
        if o is None:
            wrapped.append(np.ma.masked_array(res, mask=m.copy()))
        else:
            o.mask = m
            wrapped.append(o)
    return tuple(wrapped) if isinstance(r, tuple) else wrapped[0]


def _lazy(kernel, entry, inputs, names, outs, params):
    """Dask inputs: a lazy result (a tuple of two for two outputs), each block computed
    by ``compute`` (so blocks get exactly the NumPy-array results, dtypes and errors)."""
    from . import _dask

    if any(o is not None for o in outs):
        raise TypeError("out= is not supported with dask arrays (the result is lazy)")
    arrays = [a if is_dask(a) else np.asarray(a) for a in inputs]
    result = check_inputs(arrays, names, weak_scalars(inputs))
    # task names say what they compute: 'fastact-gelu-bwd-<hash>'
    return _dask.map_blocks(_block, arrays, len(outs), result,
                            f"fastact-{KERNELS[kernel].name}-{ENTRIES[entry]}",
                            kernel=kernel, entry=entry, names=names, params=params)


def _block(*blocks, kernel, entry, names, params, nout):
    """One block of a dask computation: two results stacked on a new first axis."""
    a, b = (blocks + (None,))[:2]
    r = compute(kernel, entry, a, b, None, None, params, names, ("out", "grad_out")[:nout])
    return np.stack(r) if nout == 2 else r
