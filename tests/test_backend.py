"""Backends, SIMD levels, configuration and the command line."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastact
from cases import CASES, case_id, crossing
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
        # the name in any case, as FASTACT_BACKEND and set_simd_level take it
        assert fastact.set_backend(" NumPy ") == "numpy" and fastact.backend() == "numpy"
        if previous == "compiled":
            assert fastact.set_backend("COMPILED") == "numpy"
            assert fastact.backend() == "compiled"
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
    # any case and surrounding spaces, as FASTACT_SIMD takes them
    current = fastact.simd_level()
    try:
        for level in levels:
            assert _python(code, FASTACT_SIMD=f" {level.upper()} ") == level
            fastact.set_simd_level(f" {level.upper()}")
            assert fastact.simd_level() == level
    finally:
        fastact.set_simd_level(current)


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
    atol = 4 if crossing(name, params) is not None else 0
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


def test_environment_warnings_point_at_the_users_line(tmp_path):
    """A bad FASTACT_SIMD or FASTACT_NUM_THREADS warns at the user's `import fastact`
    line, not inside fastact."""
    script = tmp_path / "user_script.py"
    script.write_text("import os\n\nimport fastact  # line 3\n")
    for var, value in (("FASTACT_SIMD", "avx1024"), ("FASTACT_NUM_THREADS", "many"),
                       ("FASTACT_NUM_THREADS", "3000000000")):
        r = subprocess.run([sys.executable, "-W", "always", str(script)], capture_output=True,
                           text=True, env={**os.environ, var: value}, timeout=120)
        assert r.returncode == 0, r.stderr
        assert "user_script.py:3: RuntimeWarning" in r.stderr and var in r.stderr, r.stderr


def test_numpy_backend_reports_no_simd_level():
    code = "import fastact; print(fastact.backend(), fastact.simd_level())"
    assert _python(code, FASTACT_BACKEND="numpy") == "numpy None"
    previous = fastact.set_backend("numpy")
    try:
        assert fastact.simd_level() is None
    finally:
        fastact.set_backend(previous)
    assert fastact.simd_level() in ("baseline", "avx2", "avx512")


def test_a_level_that_fails_to_load_says_why(tmp_path):
    """A kernel module that exists but cannot be imported (a broken build) is reported
    with its own ImportError, and a lower level is used."""
    import shutil
    from fastact import _backend
    levels = _backend.supported_levels()
    if len(levels) < 2:
        pytest.skip("needs two SIMD levels this CPU runs")
    pkg = tmp_path / "fastact"
    shutil.copytree(os.path.dirname(fastact.__file__), pkg)
    broken = next(pkg.glob(f"_kernels_{levels[-1]}.*"))
    broken.write_bytes(b"not a shared object")
    r = subprocess.run([sys.executable, "-W", "always", "-c",
                        "import fastact; print(fastact.simd_level())"], capture_output=True,
                       text=True, cwd=tmp_path, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == levels[-2]
    assert f"fastact._kernels_{levels[-1]} failed to load" in r.stderr
    assert "invalid ELF header" in r.stderr or "file too short" in r.stderr, r.stderr
