"""Arrays in, results out for the softmax family (docs/softmax.md).

The rules of fastact._arrays (dtypes, out=, the one place that raises for bad arrays)
for a reduction along one axis. A C-contiguous x is ``(outer, n, inner)`` in memory with
the axis in the middle, read in place (an F-contiguous x is its transpose's C layout;
any other layout is copied once; axis=None is the flat array, n = x.size). Results
follow x's layout. The backends compute on these 3-D views: the compiled one through
fastact._runner.softmax (rows, or tiles of columns when inner > 1, spread over the
threads), the NumPy one through fastact._numpy_backend.softmax.
"""
import math

import numpy as np

from . import _arrays, _backend, _numpy_backend
from ._activations import KERNEL_INDEX, SOFTMAX_OPS, SOFTMAX_TABLE
from ._gated import _check_outs, _finish, _prepared, _result, _target

FWD, BWDY, BWDX, FB = range(len(SOFTMAX_OPS))
_OUT_NAMES = {FWD: ("out",), BWDY: ("out",), BWDX: ("out",), FB: ("out", "grad_out")}


def _same_axis(a, b, ndim):
    """Whether a and b name the same axis: of ndim where both are indices in range (1 and
    -1 of a 2-D array do), else as given (normalize_axis refuses what is not an index)."""
    ia, ib = _arrays.as_index(a), _arrays.as_index(b)
    if ndim is None or ia is None or ib is None or not (-ndim <= ia < ndim and -ndim <= ib < ndim):
        return a == b
    return ia % ndim == ib % ndim


def resolve_axis(axis, dim, name, ndim=None):
    """axis (NumPy's word) or dim (PyTorch's): dim when given, unless axis names another
    axis (TypeError; axis=-1 is its default, not given); ndim, where known, compares
    them as axes of it."""
    if dim is None:
        return axis
    if axis is None or (axis != -1 and not _same_axis(axis, dim, ndim)):
        raise TypeError(f"{name}() takes axis or dim, not both")
    return dim


def normalize_axis(axis, dim, ndim, name):
    """axis (NumPy's word) or dim (PyTorch's), as an index in range(ndim), or None for
    the flat array. dim=None means not given (PyTorch's implicit dim is not guessed)."""
    axis = resolve_axis(axis, dim, name, ndim)
    if axis is None:
        return None
    given, axis = axis, _arrays.as_index(axis)
    if axis is None:
        raise TypeError(f"axis must be an integer or None, got {type(given).__name__}")
    if ndim == 0 and axis in (0, -1):                   # a scalar: one row of one
        return None
    if not -ndim <= axis < ndim:
        raise np.exceptions.AxisError(axis, ndim)
    return axis % ndim


# the elementwise kernel whose thread threshold the family uses (an exponential a element)
_GRAIN_KERNEL = KERNEL_INDEX["sigmoid"]


# elements of special rows handed to the NumPy backend at once (its float64 / long
# double temporaries, about ten of them, stay a few MB for any number of such rows)
_SPECIAL_CHUNK = 1 << 15


def compute(func, op, x, g, outs):
    """The backend on the 3-D views (run's, and fastact.torch's of dense tensors, which it
    checks itself). The compiled kernels leave the rows holding a NaN or
    an infinite max to this function: those whose max (of sign * x) is NaN or -inf take
    NaN for every output, as the NumPy backend's rules give them, without their float64
    temporaries (a fully masked attention row had cost about ten times an ordinary
    one); those whose max is +inf go to the NumPy backend, where the rules for the
    limit are written, a few rows at a time."""
    if _backend.active is _backend.NUMPY:
        _numpy_backend.softmax(func, op, x, g, outs)
        return
    spec = SOFTMAX_TABLE[func]
    special = _backend._runner.softmax(spec.log, spec.sign, op, _GRAIN_KERNEL, x, g,
                                       *outs, *(None,) * (2 - len(outs)))
    if special is not None:
        _special_rows(func, op, x, g, outs, special)


def fast(func, op, x, g, axis, o1, o2=None):
    """The common case (fastact._runner.softmax_fast: ndarrays of one dtype the kernels
    take, C-contiguous, axis an int or None, out= absent or of x's layout and apart):
    the result, as run returns it; None for run to take the call."""
    spec = SOFTMAX_TABLE[func]
    r = _backend.active.softmax_fast(spec.log, spec.sign, op, _GRAIN_KERNEL, x, g, o1, o2,
                                     axis)
    if r is None:
        return None
    r1, r2, special = r
    if special is not None:
        ax = None if axis is None else axis % x.ndim
        outs = [r1] if r2 is None else [r1, r2]
        _special_rows(func, op, _views(x, x.shape, ax, "C"),
                      None if g is None else _views(g, x.shape, ax, "C"),
                      [_views(t, x.shape, ax, "C") for t in outs], special)
    return r1 if r2 is None else (r1, r2)


def _special_rows(func, op, x, g, outs, special):
    """The rows the kernels left (flat indices of the 3-D views' rows; compute says how)."""
    spec = SOFTMAX_TABLE[func]
    step = max(1, _SPECIAL_CHUNK // max(x.shape[1], 1))
    for k in range(0, len(special), step):
        o, i = np.divmod(special[k:k + step], x.shape[2])
        xr = x[o, :, i]
        nan = _numpy_backend.softmax_no_limit(xr.max(axis=1) if spec.sign > 0
                                              else -xr.min(axis=1))
        for t in outs:
            t[o[nan], :, i[nan]] = np.nan
        o, i, xr = o[~nan], i[~nan], xr[~nan]                  # rows whose max is +inf
        if not o.size:
            continue
        gr = None if g is None else g[o, :, i][:, :, None]
        res = [np.empty_like(xr[:, :, None]) for _ in outs]
        _numpy_backend.softmax(func, op, xr[:, :, None], gr, res)
        for t, r in zip(outs, res):
            t[o, :, i] = r[:, :, 0]


def _views(a, shape, axis, order):
    """a (contiguous in order) as the 3-D view (outer, n, inner), C-contiguous."""
    if order == "F":
        a, shape = a.T, shape[::-1]
        axis = None if axis is None else len(shape) - 1 - axis
    if axis is None:
        return a.reshape(1, -1, 1)
    return a.reshape(math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:]))


def run(func, op, x, g, axis, dim, outs, name):
    """SOFTMAX_OPS[op] of SOFTMAX_TABLE[func] along axis (or dim): x is y for BWDY,
    g is grad_output (None: all ones for FB, the gradient of sum(y)); outs the user's
    out= arrays (None: new). Returns the result, or (y, grad_x) for FB."""
    inputs = (x,) if g is None else (g, x)
    if any(_arrays.is_dask(a) for a in inputs):
        if any(o is not None for o in outs):
            raise TypeError("out= is not supported with dask arrays (the result is lazy)")
        return _lazy(func, op, x, g, axis, dim, name)
    xname = "y" if op == BWDY else "x"
    names = ("grad_output", xname)[-len(inputs):]
    _arrays.refuse_masked(inputs, name, "fill the masked entries with a value that leaves "
                          "them out of each sum (x.filled(-np.inf); +inf for softmin)")
    weak = _arrays.weak_scalars(inputs)
    inputs = tuple(np.asarray(a) for a in inputs)
    x = inputs[-1]
    if g is not None:
        g = inputs[0]
        if g.shape != x.shape:
            raise ValueError(f"grad_output has shape {g.shape} but {xname} has shape {x.shape}")
    result, dtype = _result(inputs, names, weak)
    ax = normalize_axis(axis, dim, x.ndim, name)
    out_names = _OUT_NAMES[op]
    _check_outs(outs, out_names, (x.shape,) * len(outs), result)
    order = "F" if x.ndim > 1 and x.flags.f_contiguous and not x.flags.c_contiguous else "C"
    shape = x.shape
    prepared = [None if a is None else _prepared(a, dtype, order) for a in (g, x)]
    if op == FB and g is None:
        prepared[0] = np.ones(shape, dtype, order=order)
    targets = [_target(o, shape, dtype, prepared, order) for o in outs]
    if x.size:
        compute(func, op,
                _views(prepared[1], shape, ax, order),
                None if prepared[0] is None else _views(prepared[0], shape, ax, order),
                [_views(t, shape, ax, order) for t in targets])
    results = [_finish(t, o, result) for t, o in zip(targets, outs)]
    return results[0] if len(results) == 1 else tuple(results)


# ---- dask: each row within one chunk along the axis ----

def _lazy(func, op, x, g, axis, dim, name):
    import dask.array as da

    x = x if _arrays.is_dask(x) else da.from_array(np.asarray(x))
    ax = normalize_axis(axis, dim, x.ndim, name)
    if ax is None and x.ndim > 0 and x.npartitions != 1:
        raise ValueError(f"{name}(axis=None) of a dask array needs it in one chunk "
                         f"(x.rechunk(-1)); it has {x.npartitions}")
    if ax is not None and len(x.chunks[ax]) != 1:
        raise ValueError(f"{name}(): x has {len(x.chunks[ax])} chunks along axis {ax}; "
                         f"each row must be in one chunk (x.rechunk({{{ax}: -1}}))")
    arrays = [x]
    if g is not None:
        g = g if _arrays.is_dask(g) else da.from_array(np.asarray(g))
        if g.shape != x.shape:
            raise ValueError(f"grad_output has shape {g.shape} but x has shape {x.shape}")
        arrays = [g.rechunk(x.chunks), x]
    result, _ = _result([np.empty(0, a.dtype) for a in arrays],
                        ["grad_output", "x"][-len(arrays):])
    token = f"fastact-{SOFTMAX_TABLE[func].name}-{SOFTMAX_OPS[op]}"

    def block(*blocks, o):
        gb, xb = (None,) + blocks if len(blocks) == 1 else blocks
        r = run(func, op, xb, gb, ax, None, (None,) * len(_OUT_NAMES[op]), name)
        return r[o] if isinstance(r, tuple) else r

    meta = np.empty((0,) * x.ndim, result)
    parts = [da.map_blocks(block, *arrays, o=o, dtype=result, meta=meta,
                           token=f"{token}-{o}") for o in range(len(_OUT_NAMES[op]))]
    return parts[0] if len(parts) == 1 else tuple(parts)
