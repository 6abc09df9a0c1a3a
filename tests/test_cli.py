"""The command line: python -m fastact {info,bench}, its help, its errors, and the
benchmark's main loop over every activation at a tiny size."""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastact
from fastact import bench


def _cli(*args, code=None, timeout=120):
    cmd = [sys.executable] + (["-c", code] if code else ["-m", "fastact"]) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def test_help_describes_the_commands_and_options():
    r = _cli("--help")
    assert r.returncode == 0
    for word in ("info", "bench", "SIMD", "speed-ups"):
        assert word in r.stdout
    r = _cli("bench", "--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    for option in ("--activations", "--sizes", "--dtypes", "--directions", "--repeat",
                   "--threads", "--plot", "--json", "--markdown", "--mlp", "--no-torch",
                   "--half", "--half-sizes", "--step", "--step-sizes", "jax"):
        assert option in text, option
    for default in ("4K,256K,4M", "float32,float64", "forward,backward", "5", "256K",
                    "256K,16M", "256K,4M"):
        assert f"(default: {default})" in text, default


@pytest.mark.parametrize("args, message", [
    (["bench", "--activations", "nosuch"], "unknown activation 'nosuch'"),
    (["bench", "--sizes", "4Q"], "invalid sizes '4Q'"),
    (["bench", "--half", "--half-sizes", "4Q"], "invalid sizes '4Q'"),
    (["bench", "--half", "--activations", "nosuch"], "unknown activation 'nosuch'"),
    (["bench", "--dtypes", "float16x"], "unknown dtype"),
    (["bench", "--directions", "sideways"], "unknown direction"),
    (["bench", "--repeat", "0"], "--repeat"),
    (["bench", "--threads", "0"], "--threads"),
    (["bench", "--threads", "-3"], "--threads"),
    (["bench", "--threads", "257"], "--threads must be an integer from 1 to 256"),
    (["bench", "--threads", "100000"], "got 100000"),
    (["bench", "--mlp", "nosuch"], "--mlp"),
    (["bench", "--gated", "nosuch"], "--gated: unknown nosuch"),
    (["bench", "--peers", "nosuch"], "unknown peer 'nosuch'"),
    (["bench", "--step", "--step-sizes", "4Q"], "invalid sizes '4Q'"),
    (["bench", "--json", "/nonexistent-dir/b.json"], "--json: no directory /nonexistent-dir"),
    (["bench", "--markdown", "/nonexistent-dir/b.md"], "--markdown: no directory"),
    (["bench", "--half", "--json", "/nonexistent-dir/b.json"], "--json: no directory"),
    (["bench", "--plot", "chart.txt"], "--plot: the file's extension must be one of"),
    (["frobnicate"], "invalid choice"),
    ([], "required"),
])
def test_bad_arguments_fail_at_once_with_one_message(args, message):
    r = _cli(*args, timeout=60)
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_plot_without_matplotlib_fails_before_any_work():
    code = ("import sys; sys.modules['matplotlib'] = None; from fastact.__main__ import main;"
            "sys.exit(main(sys.argv[1:]))")
    r = _cli("bench", "--plot", "x.png", "--sizes", "64", code=code, timeout=60)
    assert r.returncode == 2 and "matplotlib" in r.stderr and r.stdout == ""


def test_info():
    r = _cli("info")
    assert r.returncode == 0
    for word in (fastact.__version__, "backend", "SIMD level", "levels", "OpenMP", "threads"):
        assert word in r.stdout


@pytest.mark.parametrize("mkl", [None, "AVX2"])
@pytest.mark.parametrize("onednn", [None, "AVX2"])
def test_bench_says_when_mkl_or_onednn_is_not_held_with_pytorch(mkl, onednn):
    """ATEN_CPU_CAPABILITY does not hold the functions PyTorch computes through MKL (tanh,
    exp, erf) or oneDNN (the exact gelu): the benchmark names each of
    MKL_ENABLE_INSTRUCTIONS and ONEDNN_MAX_CPU_ISA that is not set too."""
    held = {"MKL_ENABLE_INSTRUCTIONS": mkl, "ONEDNN_MAX_CPU_ISA": onednn}
    env = {k: v for k, v in os.environ.items() if k not in held}
    env.update({"ATEN_CPU_CAPABILITY": "avx2"}, **{k: v for k, v in held.items() if v})
    r = subprocess.run([sys.executable, "-m", "fastact", "bench", "--activations", "relu",
                        "--sizes", "64", "--repeat", "1", "--mlp", "none", "--gated", "none",
                        "--quiet", "--no-torch"], capture_output=True, text=True, timeout=120,
                       env=env)
    assert r.returncode == 0 and "relu" in r.stdout, r.stderr
    for name, value in held.items():
        assert (name in r.stderr) == (value is None), r.stderr


def test_bench_main_loop_over_every_activation(tmp_path, capsys):
    """The whole command at a tiny size: every activation (and gelu_tanh) in both
    directions and dtypes, against NumPy and PyTorch where installed, with its JSON,
    Markdown and plot outputs."""
    pytest.importorskip("matplotlib")
    out = tmp_path / "b.json"
    args = ["--sizes", "64", "--repeat", "1", "--mlp", "none", "--quiet", "--json", str(out),
            "--markdown", str(tmp_path / "b.md"), "--plot", str(tmp_path / "b.png"),
            "--gated-sizes", "4K", "--peers", "torch,numpy"]
    assert bench.main(args) == 0
    text = capsys.readouterr().out
    data = json.loads(out.read_text())
    labels = {r["activation"] for r in data["results"]}
    assert labels == set(fastact.ACTIVATIONS) | {"gelu_tanh"}
    assert len(data["results"]) == len(labels) * 4
    for r in data["results"]:
        assert r["fastact"] > 0 and r["copy"] > 0 and r["numpy"] > 0
        assert r.get("torch", 1) > 0
        assert f"{r['activation']:12s} {r['direction']:8s}" in text
    assert "nan" not in text and os.path.getsize(tmp_path / "b.png") > 1000
    # activations with no PyTorch counterpart: not timed against torch, and said so
    from fastact._activations import ACTIVATIONS_TABLE
    no_torch = {a.name for a in ACTIVATIONS_TABLE if "torch" not in a.peers}
    assert no_torch and {r["activation"] for r in data["results"] if "torch" not in r} == \
        (no_torch if bench._have_torch() else labels)
    assert ("No PyTorch counterpart (not timed against torch): " + ", ".join(sorted(no_torch))) \
        in text
    # the gated part: every gated unit and prelu, forward and forward + backward, both
    # dtypes, against eager PyTorch (when installed) and NumPy
    from fastact import _bench_gated
    gated = data["gated"]
    assert {r["activation"] for r in gated} == set(_bench_gated.LABELS)
    assert len(gated) == len(_bench_gated.LABELS) * 2 * 2
    for r in gated:
        assert r["fastact"] > 0 and r["numpy"] > 0 and "compile" not in r
        assert (r.get("torch", 0) > 0) == bench._have_torch()
    assert "Gated units and prelu" in text and "| swiglu | forward_backward |" in \
        (tmp_path / "b.md").read_text()


def test_bench_step_part(tmp_path, capsys):
    """--step at a tiny size: the training step of all nine activations, both dtypes,
    against eager PyTorch, in the table, the JSON, the Markdown and the chart."""
    pytest.importorskip("matplotlib")
    from fastact import _bench_step
    out = tmp_path / "b.json"
    args = ["--activations", "none", "--gated", "none", "--mlp", "none", "--step",
            "--step-sizes", "1K", "--repeat", "1", "--quiet", "--peers", "torch",
            "--json", str(out), "--markdown", str(tmp_path / "b.md"),
            "--plot", str(tmp_path / "b.png")]
    assert bench.main(args) == 0
    text = capsys.readouterr().out
    step = json.loads(out.read_text())["step"]
    assert [(r["activation"], r["dtype"]) for r in step] == \
        [(a, d) for d in ("float32", "float64") for a in _bench_step.LABELS]
    assert len(_bench_step.LABELS) == 9
    for r in step:
        assert r["fastact"] > 0 and r["n"] == 1024 and "compile" not in r and "jax" not in r
        assert (r.get("torch", 0) > 0) == bench._have_torch()
    assert "Training step" in text and "nan" not in text
    md = (tmp_path / "b.md").read_text()
    assert "| mish | 32-bit | 1K |" in md and "| softplus | 64-bit | 1K |" in md
    assert os.path.getsize(tmp_path / "b.png") > 1000


def _reference_step(label, x, g):
    """y and g f'(x) of the step's PyTorch expression in float64 autograd (independent
    of fastact), as NumPy arrays."""
    import torch
    from fastact import _bench_step
    xt = torch.from_numpy(x.astype(np.float64)).requires_grad_()
    y = _bench_step._torch_function(label)(xt)
    y.backward(torch.from_numpy(g.astype(np.float64)))
    return y.detach().numpy(), xt.grad.numpy()


@pytest.mark.parametrize("label", ["gelu", "gelu_tanh", "silu", "mish", "elu", "softplus",
                                   "sigmoid", "tanh", "leaky_relu"])
def test_bench_step_sides_compute_the_same_step(label):
    """Each side's callable, as timed, returns y and g f'(x): fastact's and eager
    PyTorch's against PyTorch's float64 autograd."""
    pytest.importorskip("torch")
    from fastact import _bench_step
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(4096) * 3).astype(np.float32)
    g = rng.uniform(-1, 1, 4096).astype(np.float32)
    y_ref, dx_ref = _reference_step(label, x, g)
    for make in (_bench_step._fastact, _bench_step._torch_eager):
        y, dx = make(label, x, g)()
        np.testing.assert_allclose(np.asarray(y, np.float64), y_ref, rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(np.asarray(dx, np.float64), dx_ref, rtol=2e-5, atol=1e-6)


_COMPILE_CHECK = """
import numpy as np, torch
from fastact import _bench_step
rng = np.random.default_rng(2)
x = (rng.standard_normal(2048) * 3).astype(np.float64)
g = rng.uniform(-1, 1, 2048)
y, dx = _bench_step._torch_compiled("elu", x, g)()
xt = torch.from_numpy(x).requires_grad_()
yt = torch.nn.functional.elu(xt)
yt.backward(torch.from_numpy(g))
np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), rtol=1e-12, atol=1e-15)
np.testing.assert_allclose(dx.numpy(), xt.grad.numpy(), rtol=1e-12, atol=1e-15)
notes = []
res = _bench_step.run(["elu"], [2048], ["float32"], peers=["compile"], repeat=1,
                      progress=None, notes=notes)
assert res[0].get("compile", 0) > 0 and res[0]["fastact"] > 0, (res, notes)
print("compile ok")
"""


def _have_cxx():
    """Whether Inductor's C++ compiler (g++) runs here: tools/wheel_test.sh hides every
    compiler, to show that the installed wheel needs none."""
    import shutil
    cxx = shutil.which("g++")
    try:
        return bool(cxx) and subprocess.run([cxx, "--version"], capture_output=True,
                                            timeout=60).returncode == 0
    except OSError:
        return False


def test_bench_step_compile_peer_is_one_fused_step():
    """torch.compile of the vjp: returns y and g f'(x) (against eager float64 autograd)
    and is timed. In a child process, away from the other tests' PyTorch state."""
    pytest.importorskip("torch")
    if not _have_cxx():
        pytest.skip("torch.compile's Inductor needs a C++ compiler (g++); none runs here")
    r = _cli(code=_COMPILE_CHECK, timeout=600)
    assert r.returncode == 0 and "compile ok" in r.stdout, r.stderr[-3000:]


_JAX_CHECK = """
import numpy as np, torch
from fastact import _bench_step
rng = np.random.default_rng(3)
for dtype, tol in ((np.float32, 2e-5), (np.float64, 1e-12)):
    x = (rng.standard_normal(1024) * 3).astype(dtype)
    g = rng.uniform(-1, 1, 1024).astype(dtype)
    for label in ("gelu", "mish", "leaky_relu"):
        y, dx = _bench_step._jax_jitted(label, x, g)()
        assert np.asarray(y).dtype == dtype and np.asarray(dx).dtype == dtype
        xt = torch.from_numpy(x.astype(np.float64)).requires_grad_()
        yt = _bench_step._torch_function(label)(xt)
        yt.backward(torch.from_numpy(g.astype(np.float64)))
        np.testing.assert_allclose(np.asarray(y, np.float64), yt.detach().numpy(), rtol=tol, atol=tol)
        np.testing.assert_allclose(np.asarray(dx, np.float64), xt.grad.numpy(), rtol=tol, atol=tol)
print("jax ok")
"""


def test_bench_step_jax_peer():
    """jax.jit of jax.vjp (jax is an optional peer, in the bench extra): both dtypes stay
    themselves (x64 enabled) and agree with PyTorch's float64 autograd. In a child
    process: JAX's threads must not live in this one (the fork tests)."""
    pytest.importorskip("torch")
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed (the bench extra has it)")
    r = _cli(code=_JAX_CHECK, timeout=300)
    assert r.returncode == 0 and "jax ok" in r.stdout, r.stderr


def test_bench_step_peer_that_disagrees_is_not_timed(monkeypatch):
    """A peer whose y or dx is not fastact's is left out of the case, with a note."""
    pytest.importorskip("torch")
    from fastact import _bench_step
    monkeypatch.setitem(_bench_step.CASES, "gelu", ("gelu", {}, "F.silu(x)", "x"))
    notes = []
    res = _bench_step.run(["gelu"], [1024], ["float32"], peers=["torch"], repeat=1,
                          progress=None, notes=notes)
    assert "torch" not in res[0] and res[0]["fastact"] > 0
    assert len(notes) == 1 and notes[0].startswith("torch gelu float32 1K: not timed")


def test_bench_step_without_jax():
    """Without jax: --step leaves the jax column out; asking for it fails at once."""
    code = ("import sys; sys.modules['jax'] = None; from fastact.__main__ import main;"
            "sys.exit(main(sys.argv[1:]))")
    r = _cli("bench", "--step", "--peers", "jax", code=code, timeout=60)
    assert r.returncode == 2 and "--peers jax needs jax" in r.stderr and r.stdout == ""
    r = _cli("bench", "--activations", "none", "--gated", "none", "--mlp", "none", "--step",
             "--step-sizes", "256", "--dtypes", "float64", "--repeat", "1", "--quiet",
             "--no-torch", code=code, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Training step" in r.stdout and "vs jax" not in r.stdout


@pytest.fixture
def softmax_backend():
    """The active backend (the compiled one in CI, which fails if it did not build)."""
    yield fastact.backend()


def test_bench_softmax_options_in_help_and_bad_values():
    text = " ".join(_cli("bench", "--help").stdout.split())
    for option in ("--softmax", "--softmax-shapes", "scipy"):
        assert option in text, option
    assert "(default: 4096x32000,65536x128,16x1000000)" in text
    for args, message in ((["--softmax", "softmax,nosuch"], "--softmax: unknown nosuch"),
                          (["--softmax-shapes", "64x"], "invalid shapes '64x'"),
                          (["--softmax-shapes", "0x64"], "invalid shapes '0x64'"),
                          (["--softmax-shapes", "64"], "invalid shapes '64'")):
        r = _cli("bench", *args, timeout=60)
        assert r.returncode == 2 and message in r.stderr, r.stderr
        assert "Traceback" not in r.stderr and r.stdout == ""


def test_bench_softmax_part(tmp_path, capsys, monkeypatch, softmax_backend):
    """--softmax all at tiny shapes: every function x mode x shape x axis against eager
    PyTorch (when installed), NumPy and SciPy (when installed), in the table, the JSON,
    the Markdown and the chart; a torch.compile that fails leaves its column out with a
    note (the real one is too slow to compile here: CI's bench step runs it)."""
    from fastact import _bench_softmax
    have_scipy = _bench_softmax.scipy_impl("softmax") is not None
    have_torch = bench._have_torch()

    def broken(name):
        raise RuntimeError("no compiler\nmore")
    monkeypatch.setattr(_bench_softmax, "compiled_impl", broken)
    out = tmp_path / "s.json"
    args = ["--activations", "none", "--gated", "none", "--mlp", "none", "--softmax", "all",
            "--softmax-shapes", "8x50,3x7", "--dtypes", "float32", "--repeat", "2",
            "--peers", "torch,compile,numpy,scipy", "--quiet", "--json", str(out),
            "--markdown", str(tmp_path / "s.md")]
    plot = importlib.util.find_spec("matplotlib") is not None
    if plot:
        args += ["--plot", str(tmp_path / "s.png")]
    assert bench.main(args) == 0
    text = capsys.readouterr().out
    rows = json.loads(out.read_text())["softmax"]
    cases = {(r["function"], r["mode"], r["dtype"], tuple(r["shape"]), r["axis"]) for r in rows}
    assert cases == {(f, m, "float32", (rows_, n) if axis == -1 else (n, rows_), axis)
                     for f in ("softmax", "log_softmax", "softmin")
                     for m in ("forward", "forward_backward")
                     for rows_, n in ((8, 50), (3, 7)) for axis in (-1, 0)}
    assert len(rows) == len(cases) == 24
    for r in rows:
        assert r["fastact"] > 0 and r["copy"] > 0 and r["numpy"] > 0
        assert (r.get("scipy", 0) > 0) == have_scipy
        assert (r.get("torch", 0) > 0) == have_torch and "compile" not in r
        assert f"{r['function']:12s} {r['mode']:17s} float32" in text
    assert text.startswith("\nSoftmax family: forward, and forward + backward in one call")
    assert "fastact/numpy time, geometric mean over 24 cases:" in text
    assert ("fastact/scipy time, geometric mean over 24 cases:" in text) == have_scipy
    assert ("fastact/torch time, geometric mean over 24 cases:" in text) == have_torch
    if have_torch:
        assert text.count("torch.compile failed (RuntimeError: no compiler); the compile "
                          "column is left out from softmax forward float32 8x50 axis=-1 on") == 1
    assert "nan" not in text and "fastact/compile" not in text
    assert "| log_softmax | forward_backward | 32-bit | 50x8 | 0 |" in (tmp_path / "s.md").read_text()
    if plot:
        assert os.path.getsize(tmp_path / "s.png") > 1000 and "chart written to" in text


def test_bench_softmax_peers_agree_with_fastact(softmax_backend):
    """The sides time the same computation: each peer's y and grad_x equal fastact's
    (float64, both axes, every function and mode, a tiny case)."""
    import numpy as np

    from fastact import _bench_softmax
    peers = [p for p in ("torch", "numpy", "scipy")
             if p != "torch" or bench._have_torch()]
    rng = np.random.default_rng(1)
    for name in _bench_softmax.FUNCTIONS:
        for mode in _bench_softmax.MODES:
            for axis, shape in ((-1, (6, 5)), (0, (5, 6))):
                x, g = (a.reshape(shape) for a in _bench_softmax._data(rng, "float64", 30))
                y, gx = np.empty_like(x), np.empty_like(x)
                fns = _bench_softmax.case_fns(name, mode, x, axis,
                                              g if mode == "forward_backward" else None,
                                              peers, y, gx)
                ours = fns.pop("fastact")()
                ours = [np.array(a) for a in (ours if isinstance(ours, tuple) else (ours,))]
                fns.pop("copy")()
                assert np.array_equal(y, x)
                assert set(fns) == {p for p in peers if p != "scipy" or
                                    _bench_softmax.scipy_impl(name)}
                for peer, fn in fns.items():
                    theirs = fn()
                    theirs = theirs if isinstance(theirs, tuple) else (theirs,)
                    assert len(theirs) == len(ours)
                    for a, b in zip(theirs, ours):
                        a = a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)
                        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12,
                                                   err_msg=f"{peer} {name} {mode} {axis}")


def test_bench_half_report(tmp_path, capsys):
    """--half at a tiny size: every activation with a PyTorch counterpart, both
    directions, fastact float32/bfloat16/float16 and PyTorch bfloat16/float16 (where
    ml_dtypes and PyTorch are installed), in the table, the JSON and the Markdown; no
    timing is asserted."""
    from fastact import _bench_half
    have_bf16 = _bench_half.bfloat16() is not None
    have_torch = bench._have_torch()
    out, md = tmp_path / "h.json", tmp_path / "h.md"
    args = ["--half", "--half-sizes", "64,1K", "--repeat", "1", "--quiet", "--json", str(out),
            "--markdown", str(md)]
    assert bench.main(args) == 0
    text = capsys.readouterr().out
    data = json.loads(out.read_text())
    rows = data["half"]
    labels = _bench_half.default_labels()
    assert {"relu", "gelu", "gelu_tanh", "sigmoid"} <= set(labels)
    assert not {"squareplus", "swish"} & set(labels)              # no PyTorch peer
    assert [(r["activation"], r["direction"], r["n"]) for r in rows] == \
        [(a, d, n) for n in (64, 1024) for a in labels for d in ("forward", "backward")]
    for r in rows:
        assert r["fastact_float32"] > 0 and r["fastact_float16"] > 0
        assert (r.get("fastact_bfloat16", 0) > 0) == have_bf16
        assert (r.get("torch_float16", 0) > 0) == have_torch
        assert (r.get("torch_bfloat16", 0) > 0) == (have_torch and have_bf16)
        assert set(r["ratios"]) == {"bf16/f32", "f16/f32", "bf16/torch", "f16/torch"}
        assert (r["ratios"]["f16/f32"] > 0) and (r["ratios"]["bf16/f32"] is None) != have_bf16
        assert r["from_y"] == (r["direction"] == "backward" and bench.from_y(r["activation"]))
        assert f"{r['activation']:12s} {bench._SHORT[r['direction']]:3s} " \
               f"{bench._size_label(r['n']):>5s} " in text
    s = data["summary"]
    assert s["geomean"]["f16/f32"] > 0 and ("bf16/f32" in s["geomean"]) == have_bf16
    assert set(s["geomean_by_size"]["f16/f32"]) == {"64", "1K"}
    assert text.startswith("Half precision: fastact float32, bfloat16, float16 and PyTorch's")
    assert "fastact float16/float32 time, geometric mean:" in text and "nan" not in text
    if have_bf16:
        bound = s["memory_bound"]
        assert bound["n"] == 1024 and bound["target"] == 0.6
        assert {c["activation"] for c in bound["cases"]} == \
            {"relu", "leaky_relu", "hardtanh", "relu6", "threshold", "hardshrink", "softshrink",
             "hardsigmoid", "hardswish", "linear"}
        assert "Memory-bound activations, bfloat16/float32 at 1K: linear fwd" in text
        assert "target_memory_bound_bf16_at_16M" not in s      # not run at 16M
    if have_torch:
        assert s["cases_vs_torch"] == len(rows) * (2 if have_bf16 else 1)
        assert s["slower_than_torch_count"] == len(s["slower_than_torch"])
        assert all(c["ratio"] > 1 for c in s["slower_than_torch"])
        assert s["worst_vs_torch"]["dtype"] in ("bfloat16", "float16")
        assert "Worst fastact/torch: " in text and "16-bit cases slower than PyTorch: " in text
        assert "Target, no 16-bit case slower than PyTorch: " in text
    table = md.read_text()
    assert table.startswith("| activation | dir | n | f32 | bf16 | f16 | torch bf16 | torch f16 "
                            "| bf16/f32 | f16/f32 | bf16/torch | f16/torch |")
    assert table.count("\n| relu | ") == 4


def test_bench_half_without_ml_dtypes_or_torch_skips_their_columns(tmp_path):
    """No ml_dtypes: the bfloat16 columns are skipped with a message; no PyTorch: the
    torch columns; not an error. An activation without a PyTorch peer can be asked for."""
    code = ("import sys; sys.modules['ml_dtypes'] = None; sys.modules['torch'] = None; "
            "from fastact.__main__ import main; sys.exit(main(sys.argv[1:]))")
    r = _cli("bench", "--half", "--half-sizes", "64", "--repeat", "1", "--quiet",
             "--activations", "relu,squareplus", "--json", str(tmp_path / "h.json"),
             code=code, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "ml_dtypes is not installed: the bfloat16 columns are skipped" in r.stderr
    assert "PyTorch is not installed: the torch columns are skipped" in r.stderr
    rows = json.loads((tmp_path / "h.json").read_text())["half"]
    assert [r_["activation"] for r_ in rows] == ["relu", "relu", "squareplus", "squareplus"]
    for row in rows:
        assert set(row) & set(("fastact_bfloat16", "torch_bfloat16", "torch_float16")) == set()
        assert row["fastact_float32"] > 0 and row["fastact_float16"] > 0
    assert "Traceback" not in r.stderr and "relu         fwd    64 " in r.stdout
    r = _cli("bench", "--half", "--activations", "none", timeout=60)
    assert r.returncode == 2 and "nothing to time" in r.stderr


def test_bench_half_sides_compute_the_same():
    """Each 16-bit case's PyTorch side computes what fastact's does (within a few ulp of
    the dtype), so the report compares like with like."""
    import numpy as np
    torch = pytest.importorskip("torch")
    from fastact import _bench_half
    arrays = _bench_half.data(2048, _bench_half.dtypes_available())
    for label in _bench_half.default_labels():
        for direction in ("forward", "backward"):
            for dtype in _bench_half.HALF:
                if dtype not in arrays:
                    continue
                fns = _bench_half.case_fns(label, direction, arrays)
                ours = np.asarray(fns[f"fastact_{dtype}"]()).astype(np.float32)
                theirs = fns[f"torch_{dtype}"]()
                assert isinstance(theirs, torch.Tensor) and \
                    theirs.dtype == getattr(torch, dtype), (label, dtype)
                theirs = theirs.float().numpy()
                err = np.abs(ours - theirs) / np.maximum(np.abs(theirs), 1)
                assert err.max() < 2 ** -6, (label, direction, dtype, err.max())
