"""The generated docstrings (fastact/_docs.py), for every activation of the table: numpydoc
sections naming every parameter, y= offered exactly where the kernel has a y-form, the
classes' signatures, the Notes' values, the Examples run as doctests, numpydoc's
validation."""
import doctest
import glob
import inspect
import os
import re

import numpy as np
import pytest

import fastact
from cases import CASES
from fastact import _docs
from fastact._activations import ACTIVATIONS_TABLE, KERNELS, REQUIRED

SUFFIXES = ("", "_grad", "_backward", "_forward_backward")
ACTS = [pytest.param(a, id=a.name) for a in ACTIVATIONS_TABLE]


def sections(doc):
    """A numpydoc docstring's sections: {title: [lines]} (title underlined by dashes)."""
    lines = inspect.cleandoc(doc).splitlines()
    out, title = {"": []}, ""
    for i, line in enumerate(lines):
        if i + 1 < len(lines) and re.fullmatch(r"-{3,}", lines[i + 1]) and line.strip():
            title = line.strip()
            out[title] = []
        elif not re.fullmatch(r"-{3,}", line):
            out[title].append(line)
    return out


def documented(lines):
    """The names of a Parameters/Returns section (unindented ``name : type`` lines)."""
    return [line.split(" : ")[0] for line in lines if line and not line.startswith(" ")]


def has_y_form(act):
    """Whether NAME_backward takes y= for the parameters the docstrings show."""
    kernel, _ = act.kernel_for(tuple(_docs.example_params(act).values()))
    return kernel.y_form is not None


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("suffix", SUFFIXES)
def test_function_docstring_names_every_parameter(act, suffix):
    fn = getattr(fastact, act.name + suffix)
    s = sections(fn.__doc__)
    summary = [line for line in s[""] if line.strip()]
    assert summary[0].endswith(".") and act.formula in fn.__doc__
    for title in ("Parameters", "Returns", "Raises", "See Also", "Notes", "Examples"):
        assert title in s, (fn.__name__, title)
    params = documented(s["Parameters"])
    expected = list(inspect.signature(fn).parameters)
    if suffix == "_backward" and not has_y_form(act):
        expected.remove("y")                # in the signature, refused with TypeError
    assert sorted(params) == sorted(expected)
    for name, default in act.params:
        entry = next(line for line in s["Parameters"] if line.startswith(name + " : "))
        assert (default is REQUIRED) == ("default" not in entry), entry
        if default is not REQUIRED:
            assert repr(default) in entry
    assert documented(s["Returns"])


@pytest.mark.parametrize("act", ACTS)
def test_y_is_offered_exactly_where_the_kernel_has_a_y_form(act):
    doc = getattr(fastact, act.name + "_backward").__doc__
    offered = "y" in documented(sections(doc)["Parameters"])
    assert offered == has_y_form(act) == ("y=" in doc)
    for suffix in ("", "_grad", "_forward_backward"):
        assert "y=" not in getattr(fastact, act.name + suffix).__doc__


def test_gelu_backward_does_not_offer_y():
    assert "y=" not in fastact.gelu_backward.__doc__
    assert "y :" not in fastact.gelu_backward.__doc__


@pytest.mark.parametrize("act", ACTS)
def test_class_docstring_and_signature(act):
    cls = getattr(fastact, act.cls_name)
    s = sections(cls.__doc__)
    assert act.formula in cls.__doc__
    assert documented(s.get("Parameters", [])) == list(act.param_names)
    for title in ("Notes", "Examples"):
        assert title in s
    P = inspect.Parameter
    assert inspect.signature(cls) == inspect.Signature([
        P(n, P.POSITIONAL_OR_KEYWORD, default=P.empty if d is REQUIRED else d)
        for n, d in act.params])
    instance = cls(**_docs.example_params(act))
    assert list(inspect.signature(instance).parameters) == ["x", "out"]   # its __call__


def test_signature_examples():
    assert str(inspect.signature(fastact.GELU)) == "(approximate='none')"
    assert str(inspect.signature(fastact.Threshold)) == "(threshold, value)"
    assert str(inspect.signature(fastact.ReLU)) == "()"


def notes_rows(doc):
    """(x, f, f') rows of the Notes table, as floats."""
    rows = []
    for line in sections(doc)["Notes"]:
        fields = line.split()
        if len(fields) == 3 and not line.startswith("=") and fields[0] != "x":
            rows.append(tuple(float(v) for v in fields))
    return np.array(rows)


@pytest.mark.parametrize("act", ACTS)
def test_notes_values_are_the_active_backends(act):
    """The Notes (computed at import by the NumPy backend) hold for the active backend:
    NaN, infinities and zeros exactly, the rest within 4 ulp."""
    rows = notes_rows(getattr(fastact, act.name).__doc__)
    kinks = act.kinks_at(_docs.example_params(act))
    assert len(rows) == len(set(kinks)) + 3
    assert {np.inf, -np.inf} <= set(rows[:, 0]) and np.isnan(rows[:, 0]).any()
    params = _docs.example_params(act)
    x = rows[:, 0]
    for got, want in ((getattr(fastact, act.name)(x, **params), rows[:, 1]),
                      (getattr(fastact, act.name + "_grad")(x, **params), rows[:, 2])):
        exact = ~np.isfinite(want) | (want == 0)
        np.testing.assert_array_equal(got[exact], want[exact])
        np.testing.assert_allclose(got[~exact], want[~exact], rtol=4 * np.finfo(float).eps)


def public_objects():
    """(name, activation) of every public function and class of every activation."""
    return [pytest.param(name, act, id=name) for act in ACTIVATIONS_TABLE
            for name in [act.name + s for s in SUFFIXES] + [act.cls_name]]


@pytest.fixture(params=["compiled", "numpy"])
def each_backend(request):
    if request.param == "compiled" and fastact.backend() != "compiled":
        pytest.skip("compiled backend not built")
    before = fastact.backend()
    fastact.set_backend(request.param)
    yield
    fastact.set_backend(before)


@pytest.mark.parametrize("name, act", public_objects())
def test_examples_run(name, act, each_backend):
    """Every Examples section is a true doctest, on both backends."""
    obj = getattr(fastact, name)
    finder, runner = doctest.DocTestFinder(recurse=False), doctest.DocTestRunner(
        optionflags=doctest.NORMALIZE_WHITESPACE)
    tests = finder.find(obj, f"fastact.{name}", globs={})
    assert tests and tests[0].examples
    for test in tests:
        runner.run(test)
    assert runner.failures == 0, f"doctest of fastact.{name} failed (output above)"


# numpydoc.validate's checks left out, and why:
# - PR08 (a parameter's description starts with a capital letter): the description is
#   the table's param_docs line, which may start with a variable ("x above which ...").
# - PR01 for y in NAME_backward where the kernel has no y-form: the signature is uniform
#   across activations, the call raises TypeError, and the docstring must not offer y.
IGNORED = {"PR08"}


@pytest.mark.parametrize("name, act", public_objects())
def test_numpydoc_validates(name, act):
    validate = pytest.importorskip("numpydoc.validate")
    errors = [(code, msg) for code, msg in validate.validate(f"fastact.{name}")["errors"]
              if code not in IGNORED]
    if name == act.name + "_backward" and not has_y_form(act):
        errors.remove(("PR01", "Parameters {'y'} not documented"))
    assert errors == []


# ---- the documentation pages (docs/, README.md) where the source tree is at hand ----

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def page(path):
    full = f"{ROOT}/{path}"
    try:
        return open(full, encoding="utf-8").read()
    except FileNotFoundError:
        pytest.skip(f"{path} not in this tree")


def test_contract_table_is_the_activation_table():
    """The contract page includes the table of activations generated from the code: every
    activation, in order, with its class, parameters and defaults, and backward from y
    exactly where its kernel has a y-form."""
    from fastact import _docs
    assert "{include} api/activations.md" in page("docs/contract.md")
    rows = re.findall(r"(?m)^\| (\w+)[^|]* \| (\w+) \| ([^|]*) \|.*\| ([^|]+) \|$",
                      _docs.activation_table())[1:]
    assert [r[0] for r in rows] == [a.name for a in ACTIVATIONS_TABLE]
    for (name, cls, params, from_y), act in zip(rows, ACTIVATIONS_TABLE):
        assert cls == act.cls_name
        expected = ", ".join(n if d is REQUIRED else f"{n}={d!r}" for n, d in act.params)
        assert params.strip() == (expected or "–"), name
        obj = fastact.get(name, **dict(CASES).get(name, {}) if name == "threshold" else {})
        y_form = KERNELS[obj._kernel].y_form
        assert (from_y.strip() == "no") == (y_form is None), name


def test_pages_link_to_files_that_exist():
    """Relative links and images in README and docs/*.md point to existing files."""
    for path in ["README.md"] + sorted(os.path.relpath(p, ROOT) for p in
                                       glob.glob(f"{ROOT}/docs/*.md")):
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page(path)):
            if "://" in target or target.startswith("api/"):   # api/: generated by conf.py
                continue
            assert os.path.exists(os.path.join(ROOT, os.path.dirname(path), target)), \
                (path, target)


def _anchors(text):
    """The anchors of a page's headings, as GitHub and MyST make them: lower case,
    punctuation but hyphens and underscores dropped, spaces to hyphens."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)          # (no headings in code)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
            for h in re.findall(r"^#{1,6} (.+)$", text, re.M)}


def test_page_anchors_exist():
    """Links to a heading (page.md#anchor, #anchor) in README and docs/*.md name a
    heading of that page (Sphinx's missing-reference warnings are silenced for the
    links to files outside docs/, so it would not tell)."""
    for path in ["README.md"] + sorted(os.path.relpath(p, ROOT) for p in
                                       glob.glob(f"{ROOT}/docs/*.md")):
        for target, anchor in re.findall(r"\]\(([^)#\s]*)#([^)\s]+)\)", page(path)):
            if "://" in target or target.startswith("api/"):
                continue
            linked = os.path.normpath(os.path.join(os.path.dirname(path), target)) \
                if target else path
            assert anchor in _anchors(page(linked)), (path, target, anchor)


def test_readme_is_the_front_door():
    readme = page("README.md")
    assert len(readme) < 10_000
    assert "SPEC" not in readme
    quick = readme.split("## Quick start")[1].split("\n## ")[0]
    commands = re.findall(r"```sh\n(.*?)```", quick, re.S)[0].split("\n")
    assert [c for c in commands if c] == ["pip install torch==2.13.0", 'pip install -e ".[test]"',
                                          "python -m fastact bench", "python -m pytest -q tests"]


def test_no_page_mentions_the_spec():
    for path in glob.glob(f"{ROOT}/docs/*.md") + glob.glob(f"{ROOT}/docs/*.py"):
        assert "SPEC" not in open(path, encoding="utf-8").read(), path
