"""Comparison helpers and the PyTorch counterpart of every activation."""
import numpy as np

import fastact
from fastact._activations import ACTIVATIONS_BY_NAME


def same(a, b):
    """Equal results (tuples elementwise), NaN equal to NaN."""
    if isinstance(a, tuple):
        return all(same(u, v) for u, v in zip(a, b))
    return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)


def half_pair_dtype():
    """NumPy's common dtype of float16 and bfloat16 as the installed ml_dtypes defines it:
    float32 from ml_dtypes 0.7 on, None before (no common dtype)."""
    import ml_dtypes
    try:
        return np.promote_types(np.float16, ml_dtypes.bfloat16)
    except TypeError:
        return None


def check_half_pair(call, widened, match):
    """call() mixes float16 and bfloat16 inputs. Where NumPy and ml_dtypes define no
    common dtype: TypeError matching `match`. Else results of that dtype, equal to
    widened() (the same call on float32 copies of the 16-bit inputs)."""
    import pytest
    common = half_pair_dtype()
    if common is None:
        with pytest.raises(TypeError, match=match):
            call()
        return
    got, want = call(), widened()
    for u in (got if isinstance(got, tuple) else (got,)):
        assert u.dtype == common, (u.dtype, common)
    assert same(got, want)


def ulp_distance(a, b, dtype, flush=0.0):
    """|a - b| in ulps of b's binade, in dtype; 0 where both are NaN or equal infinities,
    and where both are below flush * (the smallest normal number): results there may be
    flushed (docs/contract.md, Accuracy)."""
    info = np.finfo(dtype)
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    _, e = np.frexp(np.maximum(np.abs(b64), float(info.tiny)))
    with np.errstate(invalid="ignore"):
        d = np.abs(a64 - b64) / np.ldexp(float(info.eps), e - 1)
    same = (np.isnan(a64) & np.isnan(b64)) | (a64 == b64)
    tiny = flush * float(info.tiny)
    same |= (np.abs(a64) < tiny) & (np.abs(b64) < tiny)
    return np.where(same, 0.0, np.where(np.isnan(d), np.inf, d))


def assert_ulp_close(actual, expected, dtype, ulps, atol_eps=0.0, what="", flush=0.0):
    """Elementwise within `ulps` ulps (or atol_eps machine epsilons absolute); NaN
    matches NaN and infinities must match exactly; see ulp_distance for flush."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    d = ulp_distance(actual, expected, dtype, flush)
    if atol_eps:
        with np.errstate(invalid="ignore"):
            absolute = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
        d = np.where(absolute <= atol_eps * float(np.finfo(dtype).eps), 0.0, d)
    bad = np.flatnonzero(d > ulps)
    assert bad.size == 0, (f"{what}: {bad.size} elements beyond {ulps} ulp, e.g. index "
                           f"{bad[0]}: got {actual.flat[bad[0]]!r}, expected "
                           f"{expected.flat[bad[0]]!r} ({d.flat[bad[0]]:.1f} ulp)")


def torch_function(name, params):
    """PyTorch's computation of a fastact activation with parameters: the table's torch
    expression (torch.nn.functional's function where PyTorch has the activation, else
    the formula in torch operations)."""
    import torch
    import torch.nn.functional as F
    act = ACTIVATIONS_BY_NAME[name]
    fn = eval(f"lambda x, {', '.join(act.param_names)}: {act.torch}", {"torch": torch, "F": F})
    values = [act.with_defaults(params)[p] for p in act.param_names]
    return lambda t: fn(t, *values)


def torch_values(name, x, params, dtype):
    """(f(x), f'(x)) from torch autograd, computed in dtype."""
    import torch
    t = torch.tensor(np.asarray(x, dtype), requires_grad=True)
    y = torch_function(name, params)(t)
    y.backward(torch.ones_like(y))
    return y.detach().numpy(), t.grad.numpy()


def fastact_values(name, x, params):
    return (getattr(fastact, name)(x, **params), getattr(fastact, name + "_grad")(x, **params))
