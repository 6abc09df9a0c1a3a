"""The command line: python -m fastact {info,bench}, its help, its errors, and the
benchmark's main loop over every activation at a tiny size."""
import json
import os
import subprocess
import sys

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
                   "--threads", "--plot", "--json", "--markdown", "--mlp", "--no-torch"):
        assert option in text, option
    for default in ("4K,256K,4M", "float32,float64", "forward,backward", "5", "256K"):
        assert f"(default: {default})" in text, default


@pytest.mark.parametrize("args, message", [
    (["bench", "--activations", "nosuch"], "unknown activation 'nosuch'"),
    (["bench", "--sizes", "4Q"], "invalid sizes '4Q'"),
    (["bench", "--dtypes", "float16x"], "unknown dtype"),
    (["bench", "--directions", "sideways"], "unknown direction"),
    (["bench", "--repeat", "0"], "--repeat"),
    (["bench", "--threads", "0"], "--threads"),
    (["bench", "--mlp", "nosuch"], "--mlp"),
    (["bench", "--gated", "nosuch"], "--gated: unknown nosuch"),
    (["bench", "--peers", "jax"], "unknown peer 'jax'"),
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
