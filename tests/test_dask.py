"""Dask arrays in, lazy dask arrays out, computed block by block by fastact; the results
equal the NumPy-array path (docs/dask.md)."""
import os
import subprocess
import sys

import numpy as np
import pytest

da = pytest.importorskip("dask.array")

import fastact  # noqa: E402
from cases import CASES, case_id  # noqa: E402


def _data(dtype, shape=(300, 70), chunks=(64, 32)):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    g = rng.uniform(-2, 2, shape).astype(dtype)
    return x, g, da.from_array(x, chunks=chunks), da.from_array(g, chunks=chunks)


def _all_entries(name, params, x, g, y=None):
    """Every entry point of one activation, on NumPy or dask arrays alike."""
    f = lambda suffix: getattr(fastact, name + suffix)  # noqa: E731
    return {"forward": f("")(x, **params), "grad": f("_grad")(x, **params),
            "backward": f("_backward")(g, x, **params),
            "forward_backward": f("_forward_backward")(x, **params),
            "forward_backward_g": f("_forward_backward")(x, **params, grad_output=g)}


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_lazy_blockwise_equal_to_numpy(case, dtype, backend):
    name, params = case
    x, g, dx, dg = _data(dtype)
    expected = _all_entries(name, params, x, g)
    lazy = _all_entries(name, params, dx, dg)
    for entry, want in expected.items():
        got = lazy[entry]
        pairs = zip(got, want) if isinstance(want, tuple) else [(got, want)]
        for lz, w in pairs:
            assert isinstance(lz, da.Array), entry          # lazy, not computed
            assert lz.chunks == dx.chunks and lz.dtype == w.dtype, entry
            assert lz._meta.dtype == w.dtype and isinstance(lz._meta, np.ndarray)
            assert np.array_equal(lz.compute(scheduler="threads"), w, equal_nan=True), entry


def test_mixed_inputs_dtypes_and_errors():
    x, g, dx, dg = _data(np.float32)
    r = fastact.tanh_backward(g.astype(np.float64), dx)       # NumPy grad_output, dask x
    assert isinstance(r, da.Array) and r.dtype == np.float64 and r.chunks == dx.chunks
    assert np.array_equal(r.compute(), fastact.tanh_backward(g.astype(np.float64), x))
    y = fastact.sigmoid(dx)
    r = fastact.sigmoid_backward(dg, y=y)
    assert np.array_equal(r.compute(), fastact.sigmoid_backward(g, y=fastact.sigmoid(x)))
    ints = da.arange(-5, 5, chunks=3)
    assert fastact.relu(ints).dtype == np.float64
    assert np.array_equal(fastact.relu(ints).compute(), fastact.relu(np.arange(-5, 5)))
    odd = da.from_array(g, chunks=(100, 70))                  # other chunks: unified
    assert np.array_equal(fastact.silu_backward(odd, dx).compute(), fastact.silu_backward(g, x))
    with pytest.raises(ValueError, match="shape"):
        fastact.gelu_backward(dg[:10], dx)
    with pytest.raises(TypeError, match="out="):
        fastact.gelu(dx, out=np.empty_like(x))
    with pytest.raises(TypeError, match="dtype"):
        fastact.gelu(da.ones(4, dtype=complex))
    with pytest.raises(ValueError, match="alpha"):
        fastact.celu(dx, alpha=0.0)


def test_laziness_the_graph_is_not_computed():
    calls = []

    def spy(block):
        calls.append(block.shape)
        return block
    dx = da.ones((100,), chunks=10).map_blocks(spy, dtype=np.float64)
    calls.clear()                                  # dask's own meta probe of spy
    y = fastact.gelu_backward(dx, dx)
    assert calls == [] and y.numblocks == (10,)
    y.compute()
    assert len(calls) >= 10


def test_importing_fastact_does_not_import_dask():
    code = "import sys, fastact; fastact.gelu([1.0]); print('dask' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "False", r.stderr


def test_distributed_local_cluster():
    distributed = pytest.importorskip("distributed")
    x, g, dx, dg = _data(np.float64, shape=(2000, 50), chunks=(250, 50))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  worker_dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        lazy = {"gelu": fastact.gelu(dx, approximate="tanh"),
                "mish_backward": fastact.mish_backward(dg, dx),
                "elu_fb": fastact.elu_forward_backward(dx, 0.3)[1]}
        got = client.compute(lazy, sync=True)
        where = client.run(lambda: os.getpid())
    assert len(set(where.values())) == 2 and os.getpid() not in where.values()
    assert np.array_equal(got["gelu"], fastact.gelu(x, approximate="tanh"))
    assert np.array_equal(got["mish_backward"], fastact.mish_backward(g, x))
    assert np.array_equal(got["elu_fb"], fastact.elu_grad(x, 0.3))


def test_task_names_say_what_they_compute():
    x = da.from_array(np.linspace(-3, 3, 100), chunks=25)
    assert fastact.gelu(x).name.startswith("fastact-gelu-fwd-")
    assert fastact.celu_backward(x, x, 0.5).name.startswith("fastact-elu-bwd-")
    assert fastact.silu(x).name != fastact.silu(x + 1).name        # still unique per input
