"""Dask arrays: every fastact function given a ``dask.array.Array`` returns a lazy one,
computed block by block by fastact (on each worker of a dask.distributed cluster).

Imported only when a dask array reaches fastact, so fastact never imports dask itself.
The block function is fastact's own array path, so blocks get exactly the NumPy-array
results, dtypes and errors; chunks are kept (a NumPy ``grad_output`` is chunked like x).
"""
import dask.array as da
import numpy as np

from . import _arrays, _backend

_FORWARD_BACKWARD = (4, 5)          # _api.FB, _api.FBG: two outputs


def _block(*blocks, kernel, entry, names, params):
    outs = (None, None) if entry in _FORWARD_BACKWARD else (None,)
    out_names = ("out", "grad_out")[:len(outs)]
    r = _arrays.run(_backend.active.launch, kernel, entry, blocks, names, outs, out_names,
                    params)
    return np.stack(r) if entry in _FORWARD_BACKWARD else r


def run(kernel, entry, inputs, names, outs, params):
    """The lazy result (a tuple of two for forward_backward)."""
    if any(o is not None for o in outs):
        raise TypeError("out= is not supported with dask arrays (the result is lazy)")
    lead = next(a for a in inputs if _arrays.is_dask(a))
    arrays = []
    for a, name in zip(inputs, names):
        if not _arrays.is_dask(a):
            a = np.asarray(a)
            if a.shape != lead.shape:
                raise ValueError(f"{name} has shape {a.shape} but the dask array has "
                                 f"shape {lead.shape}")
            a = da.from_array(a, chunks=lead.chunks)
        arrays.append(a)
    if any(a.shape != arrays[-1].shape for a in arrays):
        raise ValueError(f"{names[0]} has shape {arrays[0].shape} but {names[-1]} has "
                         f"shape {arrays[-1].shape}")
    result = _arrays.result_dtype(arrays[0], names[0])
    for a, name in zip(arrays[1:], names[1:]):
        result = np.promote_types(result, _arrays.result_dtype(a, name))
    index = "".join(chr(ord("a") + i) for i in range(lead.ndim))
    arrays = da.core.unify_chunks(*[x for a in arrays for x in (a, index)])[1]
    kw = dict(kernel=kernel, entry=entry, names=names, params=params, dtype=result,
              meta=np.empty((0,) * arrays[0].ndim, result))
    if entry not in _FORWARD_BACKWARD:
        return da.map_blocks(_block, *arrays, **kw)
    kw["meta"] = np.empty((0,) * (arrays[0].ndim + 1), result)
    both = da.map_blocks(_block, *arrays, new_axis=0, chunks=((2,),) + arrays[0].chunks, **kw)
    return both[0], both[1]
