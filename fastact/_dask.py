"""Dask arrays: every fastact function given a ``dask.array.Array`` returns a lazy one,
computed block by block by fastact (on each worker of a dask.distributed cluster).

Imported by fastact._arrays only when a dask array reaches fastact, so fastact never
imports dask itself. It imports nothing of fastact: _arrays checks the arrays and hands
over the function each block runs (its own array path); chunks are kept (a NumPy input
is chunked like the dask one).
"""
import dask.array as da
import numpy as np


def map_blocks(block, inputs, nout, dtype, token, **kwargs):
    """block(*numpy_blocks, nout=nout, **kwargs) over the inputs (dask or NumPy arrays of
    one shape), lazily: a dask array of dtype, or for nout > 1 a tuple of nout (block then
    stacks its results on a new first axis). Task names start with token."""
    chunks = next(a.chunks for a in inputs if not isinstance(a, np.ndarray))
    arrays = [da.from_array(a, chunks=chunks) if isinstance(a, np.ndarray) else a
              for a in inputs]
    index = "".join(chr(ord("a") + i) for i in range(arrays[0].ndim))
    arrays = da.core.unify_chunks(*[x for a in arrays for x in (a, index)])[1]
    ndim = arrays[0].ndim
    kw = dict(kwargs, nout=nout, dtype=dtype, token=token)
    if nout == 1:
        return da.map_blocks(block, *arrays, meta=np.empty((0,) * ndim, dtype), **kw)
    stacked = da.map_blocks(block, *arrays, new_axis=0, chunks=((nout,),) + arrays[0].chunks,
                            meta=np.empty((0,) * (ndim + 1), dtype), **kw)
    return tuple(stacked[i] for i in range(nout))
