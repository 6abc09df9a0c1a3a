"""The package as shipped: version, type stubs, generated sources up to date."""
import importlib.metadata
import os
import re
import subprocess
import sys

import pytest

import fastact

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tool(name, *args):
    return subprocess.run([sys.executable, os.path.join(ROOT, "tools", name), *args],
                          capture_output=True, text=True, timeout=300)


def test_version():
    assert re.fullmatch(r"\d+\.\d+\.\d+", fastact.__version__)
    assert importlib.metadata.version("fastact") == fastact.__version__


def test_stubs_cover_the_public_api():
    stub = os.path.join(os.path.dirname(fastact.__file__), "__init__.pyi")
    text = open(stub).read()
    declared = set(re.findall(r"^(?:def|class) (\w+)|^(\w+) = ", text, re.M))
    declared = {a or b for a, b in declared} - {"_Result", "_Out", "_Dim"}  # the stub's type aliases
    public = set(fastact.__all__) - {"__version__", "ACTIVATIONS", "ALIASES", "GATED",
                                     "WEIGHTED", "SOFTMAX"}
    assert declared == public
    assert os.path.exists(os.path.join(os.path.dirname(fastact.__file__), "py.typed"))


@pytest.mark.parametrize("tool", ["gen_stubs.py", "fit_coeffs.py"])
def test_generated_files_are_current(tool):
    if not os.path.exists(os.path.join(ROOT, "tools", tool)):
        pytest.skip("source tree not available")
    r = _tool(tool, "--check")
    assert r.returncode == 0, f"run: python tools/{tool}\n{r.stderr}"


def test_mypy_sees_the_entry_points(tmp_path):
    mypy = pytest.importorskip("mypy.api")
    good = tmp_path / "good.py"
    good.write_text(
        "import numpy as np\nimport fastact\nx = np.ones(3)\n"
        "y = fastact.gelu(x, approximate='tanh')\ng = fastact.gelu_backward(x, x)\n"
        "a, b = fastact.elu_forward_backward(x, 0.5, grad_output=x)\n"
        "act = fastact.ELU(alpha=0.5)\nz = act.backward(x, y=x)\n"
        "with fastact.threads(2):\n    fastact.threshold(x, 0.1, 2.0)\n")
    bad = tmp_path / "bad.py"
    bad.write_text("import fastact\nfastact.gelu([1.0], approximate='fast')\nfastact.geluu([1.0])\n"
                   "fastact.threshold([1.0])\n")
    env_path = os.path.dirname(os.path.dirname(fastact.__file__))
    old = os.environ.get("MYPYPATH")
    if os.path.basename(env_path) != "site-packages":    # an editable install: show mypy where
        os.environ["MYPYPATH"] = env_path
    try:
        out, err, status = mypy.run(["--strict", "--no-incremental", str(good)])
        assert status == 0, out + err
        out, err, status = mypy.run(["--no-incremental", str(bad)])
        assert status == 1
        assert "approximate" in out and "geluu" in out and "threshold" in out
    finally:
        if old is None:
            os.environ.pop("MYPYPATH", None)
        else:
            os.environ["MYPYPATH"] = old
