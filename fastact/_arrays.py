"""Array handling shared by both backends (docs/contract.md, *Arrays*).

``run`` takes whatever the user passed, checks it, brings the inputs to one contiguous,
aligned, native-order dtype (float32 or float64), picks or allocates the outputs, calls
a backend's ``launch`` on flat arrays, and shapes the results. The compiled backend's
fast path (fastact._runner) takes the common case without coming here; this is the
complete rule set and the only place that raises for bad arrays.
"""
import numpy as np

ACCEPTED = "float16, float32, float64, bool or integer"
_F16, _F32, _F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)


def is_dask(a):
    """A dask array, recognised without importing dask."""
    return type(a).__module__.startswith("dask.")


def result_dtype(a, name):
    """The dtype fastact returns for an array of a's dtype (native byte order)."""
    dt = a.dtype
    if dt.kind == "f" and dt.itemsize in (2, 4, 8):
        return np.dtype(dt.type)
    if dt.kind in "biu":
        return _F64
    raise TypeError(f"{name} has dtype {dt}; fastact accepts {ACCEPTED} arrays "
                    f"(float16 is computed in float32, bool and integers in float64)")


def check_inputs(arrays, names):
    """Raise unless the inputs (NumPy or dask arrays) share x's shape and have accepted
    dtypes; returns the result dtype (the promotion of theirs)."""
    result = result_dtype(arrays[0], names[0])
    for a, name in zip(arrays[1:], names[1:]):
        result = np.promote_types(result, result_dtype(a, name))
    for a, name in zip(arrays[:-1], names[:-1]):
        if a.shape != arrays[-1].shape:
            raise ValueError(f"{name} has shape {a.shape} but {names[-1]} has shape "
                             f"{arrays[-1].shape}")
    return result


def compute_dtype(result):
    return _F32 if result == _F16 else result


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
    result = check_inputs(arrays, names)
    dtype = compute_dtype(result)
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
            res = shaped if result == dtype else shaped.astype(result, order=order)
            results.append(res[()] if x.ndim == 0 else res)
        else:
            if not d:
                np.copyto(out, shaped, casting="same_kind")
            results.append(out)
    return results[0] if len(results) == 1 else tuple(results)
