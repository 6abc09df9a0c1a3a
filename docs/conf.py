"""Sphinx configuration of fastact's documentation.

    python -m sphinx -W --keep-going -b html docs build/html

The API reference (docs/api/, not kept in git) is written here from the code: one page
per activation of fastact._api's table and one for everything else fastact exports, so no
list of names is kept by hand. Needs fastact importable (built in place or installed),
torch for fastact.torch, and no network.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)            # this tree's fastact, not another installed one

import fastact  # noqa: E402
import fastact.torch  # noqa: E402
from fastact import _api  # noqa: E402

project = "fastact"
author = "fastact developers"
copyright = "fastact developers"
release = version = fastact.__version__

extensions = ["sphinx.ext.autodoc", "numpydoc", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
numpydoc_show_class_members = False      # the methods are ActivationFunction's
numpydoc_xref_param_type = False
autodoc_member_order = "bysource"
html_theme = "alabaster"
html_theme_options = {"description": "Activation functions and their gradients for NumPy, "
                                     "within 4 ulp", "fixed_sidebar": True}
suppress_warnings = ["myst.xref_missing"]   # links to files outside docs/ (tools/, tests/)

API = os.path.join(os.path.dirname(os.path.abspath(__file__)), "api")


def _write(name, text):
    """Write docs/api/NAME.rst, only when its text changed (keeps rebuilds incremental)."""
    path = os.path.join(API, name + ".rst")
    old = open(path).read() if os.path.exists(path) else None
    if old != text:
        with open(path, "w") as f:
            f.write(text)


def _heading(text, char="="):
    return f"{text}\n{char * len(text)}\n"


def write_api_pages():
    """docs/api/: an index, a page per activation, the rest of fastact, fastact.torch, and
    the table of activations the contract page includes."""
    os.makedirs(API, exist_ok=True)
    from fastact import _docs
    path = os.path.join(API, "activations.md")
    if not os.path.exists(path) or open(path).read() != _docs.activation_table():
        with open(path, "w") as f:
            f.write(_docs.activation_table())
    table = _api.ACTIVATIONS_TABLE
    per_activation = set(_api.PUBLIC)
    rows, pages = [], []
    for act in table:
        names = [act.name + s for s in ("", "_grad", "_backward", "_forward_backward")]
        assert set(names) | {act.cls_name} <= per_activation, act.name
        per_activation -= set(names) | {act.cls_name}
        params = ", ".join(n if d is _api.REQUIRED else f"{n}={d!r}" for n, d in act.params)
        rows.append(f"   * - :doc:`{act.name} <{act.name}>`\n     - :class:`~fastact.{act.cls_name}`"
                    f"\n     - {params or '–'}\n     - ``{act.formula}``")
        pages.append(act.name)
        _write(act.name, "\n".join(
            [_heading(f"{act.name}, {act.cls_name}"), ".. currentmodule:: fastact\n",
             f"``f(x) = {act.formula}``\n"]
            + [f".. autofunction:: {n}\n" for n in names]
            + [f".. autoclass:: {act.cls_name}\n"]))
    assert not per_activation, f"public names of no activation: {per_activation}"
    from fastact import _api_gated
    gated = [n for n in fastact.__all__ if n in _api_gated.PUBLIC]
    _write("gated", "\n".join(
        [_heading("Gated units, prelu, rrelu"), ".. currentmodule:: fastact\n",
         "See :doc:`../gated` for the forms, shapes and accuracy.\n"]
        + [f".. auto{'class' if isinstance(getattr(fastact, n), type) else 'function'}:: {n}\n"
           + ("   :members:\n" if isinstance(getattr(fastact, n), type) else "")
           for n in gated]))
    from fastact import _api_softmax
    softmax = [n for n in fastact.__all__ if n in _api_softmax.PUBLIC]
    _write("softmax", "\n".join(
        [_heading("Softmax, log_softmax, softmin"), ".. currentmodule:: fastact\n",
         "See :doc:`../softmax` for the rules, the values of special rows and the "
         "accuracy bound.\n"]
        + [f".. auto{'class' if isinstance(getattr(fastact, n), type) else 'function'}:: {n}\n"
           + ("   :members:\n" if isinstance(getattr(fastact, n), type) else "")
           for n in softmax if n != "SOFTMAX"]
        + [".. autodata:: SOFTMAX\n   :annotation:\n"]))
    others = sorted(set(fastact.__all__) - set(_api.PUBLIC) - set(gated) - set(softmax)
                    - {"__version__"})
    directives = []
    for name in others:
        obj = getattr(fastact, name)
        kind = ("autoclass" if isinstance(obj, type) else
                "autofunction" if callable(obj) else "autodata")
        options = "   :members:\n" if kind == "autoclass" else \
            "   :annotation:\n" if kind == "autodata" else ""
        directives.append(f".. {kind}:: {name}\n{options}")
    _write("configuration", "\n".join(
        [_heading("Configuration, backends, threads"), ".. currentmodule:: fastact\n",
         "Everything ``fastact`` exports besides the activations.\n"] + directives))
    torch_names = fastact.torch.__all__
    torch_directives = [f".. auto{'class' if isinstance(getattr(fastact.torch, n), type) else 'function'}"
                        f":: {n}\n" for n in torch_names]
    _write("torch", "\n".join(
        [_heading("fastact.torch reference"), ".. module:: fastact.torch\n",
         "Autograd functions (``torch.nn.functional``'s signatures) and ``torch.nn`` "
         "modules for every activation; see :doc:`../torch` for how they work.\n"]
        + torch_directives))
    _write("index", "\n".join([
        _heading("API reference"), ".. currentmodule:: fastact\n",
        "For every activation NAME: ``NAME(x)``, ``NAME_grad(x)``, "
        "``NAME_backward(grad_output, x)``, ``NAME_forward_backward(x)`` and a class "
        "(see :doc:`../contract`). This reference is generated from the code.\n",
        ".. list-table::\n   :header-rows: 1\n\n   * - activation\n     - class\n"
        "     - parameters\n     - f(x)\n" + "\n".join(rows) + "\n",
        ".. toctree::\n   :hidden:\n\n" + "".join(f"   {p}\n" for p in pages)
        + "   gated\n   softmax\n   configuration\n   torch\n",
        ":doc:`gated`: the gated units, prelu and rrelu. :doc:`softmax`: softmax, "
        "log_softmax, softmin. "
        ":doc:`configuration`: backends, SIMD levels, threads, ``get``, "
        "``ActivationFunction``. :doc:`torch`: ``fastact.torch``.\n"]))


def _signature(app, what, name, obj, options, signature, return_annotation):
    """Show a required parameter's placeholder default (NAME_backward's) as <required>."""
    if signature:
        signature = re.sub(r"<object object(?: at 0x[0-9a-f]+)?>", "<required>", signature)
    return signature, return_annotation


def setup(app):
    write_api_pages()
    app.connect("autodoc-process-signature", _signature)
