"""Dask arrays: every fastact function given a ``dask.array.Array`` returns a lazy one,
computed block by block by fastact (on each worker of a dask.distributed cluster).

Imported only when a dask array reaches fastact, so fastact never imports dask itself.
The block function is fastact's own array path, so blocks get exactly the NumPy-array
results, dtypes and errors; chunks are kept (a NumPy ``grad_output`` is chunked like x).
"""
import dask.array as da
import numpy as np

from . import _arrays, _backend
from ._activations import ENTRIES, KERNELS
_FORWARD_BACKWARD = (ENTRIES.index("fb"), ENTRIES.index("fbg"))       # two outputs


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
    arrays = [a if _arrays.is_dask(a) else np.asarray(a) for a in inputs]
    result = _arrays.check_inputs(arrays, names)
    chunks = next(a.chunks for a in arrays if _arrays.is_dask(a))
    arrays = [a if _arrays.is_dask(a) else da.from_array(a, chunks=chunks) for a in arrays]
    index = "".join(chr(ord("a") + i) for i in range(arrays[0].ndim))
    arrays = da.core.unify_chunks(*[x for a in arrays for x in (a, index)])[1]
    # task names say what they compute: 'fastact-gelu-bwd-<hash>'
    token = f"fastact-{KERNELS[kernel].name}-{ENTRIES[entry]}"
    kw = dict(kernel=kernel, entry=entry, names=names, params=params, dtype=result,
              meta=np.empty((0,) * arrays[0].ndim, result), token=token)
    if entry not in _FORWARD_BACKWARD:
        return da.map_blocks(_block, *arrays, **kw)
    kw["meta"] = np.empty((0,) * (arrays[0].ndim + 1), result)
    both = da.map_blocks(_block, *arrays, new_axis=0, chunks=((2,),) + arrays[0].chunks, **kw)
    return both[0], both[1]
