"""Backends, SIMD levels, configuration and the command line."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastact
from cases import CASES, case_id
from helpers import assert_ulp_close


def _python(code, **env):
    full = {**os.environ, **env}
    for key, value in env.items():
        if value is None:
            full.pop(key)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_compiled_backend_is_active():
    """A normal install computes with the compiled extension; a silent fallback to NumPy
    would fail here (CI runs without FASTACT_BACKEND)."""
    if os.environ.get("FASTACT_BACKEND") == "numpy":
        pytest.skip("FASTACT_BACKEND=numpy set on purpose")
    assert fastact.backend() == "compiled"
    from fastact import _runner
    assert _runner.__file__.endswith((".so", ".pyd"))
    assert fastact.simd_level() in ("baseline", "avx2", "avx512")


def test_environment_selects_backend():
    assert _python("import fastact; print(fastact.backend())", FASTACT_BACKEND="numpy") == "numpy"
    assert _python("import fastact; print(fastact.backend())", FASTACT_BACKEND=None) == "compiled"
    r = subprocess.run([sys.executable, "-c", "import fastact"], capture_output=True, text=True,
                       env={**os.environ, "FASTACT_BACKEND": "gpu"})
    assert r.returncode != 0 and "FASTACT_BACKEND" in r.stderr


def test_set_backend():
    previous = fastact.set_backend("numpy")
    try:
        assert fastact.backend() == "numpy"
        with pytest.raises(ValueError):
            fastact.set_backend("fortran")
    finally:
        fastact.set_backend(previous)
    assert fastact.backend() == previous


def test_simd_levels():
    from fastact import _backend
    levels = _backend.supported_levels()
    assert "baseline" in levels and fastact.simd_level() == levels[-1]
    code = "import fastact; print(fastact.simd_level())"
    for level in levels:
        assert _python(code, FASTACT_SIMD=level) == level
    r = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True,
                       text=True, env={**os.environ, "FASTACT_SIMD": "avx1024"})
    assert r.stdout.strip() == levels[-1] and "FASTACT_SIMD" in r.stderr
    with pytest.raises(ValueError):
        fastact.set_simd_level("avx1024")


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_levels_agree(case, dtype):
    """Every level this CPU runs against the others: levels with FMA (avx2, avx512)
    give the same bits; the baseline build (no FMA) is within 8 ulp of them."""
    from fastact import _backend
    name, params = case
    rng = np.random.default_rng(11)
    x = np.concatenate([rng.standard_normal(3000) * 5, rng.uniform(-100, 100, 1000)]).astype(dtype)
    g = rng.uniform(-2, 2, x.size).astype(dtype)
    current = fastact.simd_level()
    results = {}
    try:
        for level in _backend.supported_levels():
            fastact.set_simd_level(level)
            results[level] = (getattr(fastact, name)(x, **params),
                              getattr(fastact, name + "_grad")(x, **params),
                              getattr(fastact, name + "_backward")(g, x, **params))
    finally:
        fastact.set_simd_level(current)
    fma = [lv for lv in results if lv != "baseline"]
    for a, b in zip(results[fma[0]], results[fma[-1]]) if fma else ():
        assert np.array_equal(a, b, equal_nan=True)
    atol = 4 if name in ("silu", "gelu", "mish") else 0
    for a, b in zip(results["baseline"], results[(fma or ["baseline"])[-1]]):
        assert_ulp_close(a, b, dtype, 8, atol_eps=atol, what=name, flush=2)


def test_show_config_and_info(capsys):
    fastact.show_config()
    text = capsys.readouterr().out
    for word in (fastact.__version__, "backend", "SIMD level", "OpenMP", "threads", "flags"):
        assert word in text
    out = subprocess.run([sys.executable, "-m", "fastact", "info"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "SIMD level" in out.stdout
