"""fastact on CPUs this machine may not have, emulated by qemu's user mode.

`qemu-x86_64 -cpu MODEL python ...` runs an unmodified Python process on a CPU model:
Nehalem (SSE4.2, no AVX: NumPy 2's floor until 2.4, whose wheels need AVX: then the
baseline modules are checked for AVX instructions instead) and SandyBridge (AVX, no AVX2
and no FMA) must get the baseline kernels, Haswell (AVX2 and FMA, no AVX-512) the avx2
ones. Under each, `import fastact` must work (a module of
a level the CPU lacks executes that level's instructions when imported: SIGILL), asking
for avx512 must warn or raise (never a signal), the benchmark's loop (tiny) and
show_config must run, and every kernel x entry point x dtype on a sweep of specials,
the gated units and the softmax family (rows and columns with special ones, a row of
more than one block; tests/cpu_probe.py) must give the same bits as this machine's run
of the same level; Haswell's (avx2) also as this machine's best FMA level's (avx512,
where it runs it: the FMA levels give the same bits). Nehalem's baseline has no FMA:
its reference is this machine's baseline run. A few float16 and bfloat16 computations
(elementwise, gated, prelu, softmax: cpu_probe.compute_half) are held to the same, and
Nehalem's also to within one ulp of the 16-bit type of this machine's FMA level (the
float math without FMA differs in its last bits, which the rounding to 16 bits hides
but for a rare one). Skipped, with the reason, where qemu-x86_64 is missing or the host
is not x86-64; FASTACT_REQUIRE_EMULATION=1 (set by .ci/run) turns the skip into a failure.
"""
import os
import platform
import shutil
import subprocess
import sys

import numpy as np
import pytest

import cpu_probe
import fastact
from fastact import _backend

HERE = os.path.dirname(os.path.abspath(__file__))
QEMU = shutil.which("qemu-x86_64")
# SandyBridge: AVX, but no AVX2 and no FMA, so the baseline kernels too
MODELS = {"Nehalem": "baseline", "SandyBridge": "baseline", "Haswell": "avx2"}


def _require():
    reason = None
    if platform.machine().lower() not in ("x86_64", "amd64"):
        reason = "the CPU models are x86-64; this host is " + platform.machine()
    elif QEMU is None:
        reason = "qemu-x86_64 not found (Debian: apt-get install qemu-user)"
    if reason:
        if os.environ.get("FASTACT_REQUIRE_EMULATION") == "1":
            pytest.fail(reason + " (FASTACT_REQUIRE_EMULATION=1)")
        pytest.skip(reason)


def _emulated(model, tmp_path, env=None):
    out = tmp_path / f"{model}.npz"
    # the child imports the very fastact under test
    path = os.pathsep.join([os.path.dirname(os.path.dirname(fastact.__file__)),
                            os.environ.get("PYTHONPATH", "")])
    cmd = [QEMU, "-cpu", model, sys.executable, os.path.join(HERE, "cpu_probe.py"), str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": path, **(env or {})})
    assert r.returncode == 0, (f"qemu -cpu {model}: exit {r.returncode} "
                               f"(-4/132: illegal instruction)\n{r.stderr[-3000:]}")
    with np.load(out) as data:
        return {k: data[k] for k in data.files}


def _values(a, key):
    """(values for the NaN test, bits) of a result: a 16-bit one (cpu_probe.half_key) is
    held as its bits."""
    half = cpu_probe.half_key(key)
    if half:
        return cpu_probe.half_widen(a, half), a.view(np.uint16)
    return a, a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


def _same_bits(a, b, key=""):
    """Bit for bit, except that any NaN equals any NaN: the sign of a NaN result is not
    specified (IEEE 754), and qemu's emulation of x86 does not always keep a NaN
    input's sign (-NaN in, +NaN out, where the hardware gives -NaN)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    (va, ba), (vb, bb) = _values(a, key), _values(b, key)
    return np.array_equal(np.where(np.isnan(va), 0, ba), np.where(np.isnan(vb), 0, bb)) \
        and np.array_equal(np.isnan(va), np.isnan(vb))


def _within_ulp(a, b, key):
    """16-bit results (bits) within one ulp of their type of each other (NaN where the
    other is NaN: any NaN)."""
    half = cpu_probe.half_key(key)
    nan_a, nan_b = np.isnan(cpu_probe.half_widen(a, half)), np.isnan(cpu_probe.half_widen(b, half))
    far = np.abs(cpu_probe.half_order(a) - cpu_probe.half_order(b)) > 1
    return a.shape == b.shape and np.array_equal(nan_a, nan_b) and not np.any(far & ~nan_a)


def _numpy_runs_on(model):
    r = subprocess.run([QEMU, "-cpu", model, sys.executable, "-c", "import numpy"],
                       capture_output=True, text=True, timeout=300)
    return r.returncode == 0


def _vex_instructions(path):
    """The instructions of a shared object that a CPU without AVX lacks (VEX- or
    EVEX-encoded: v-mnemonics, ymm/zmm registers), by objdump."""
    dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", path], capture_output=True,
                         text=True, check=True).stdout
    found = []
    for line in dis.splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[1].strip():
            mnemonic = parts[1].split()[0]
            if (mnemonic.startswith("v") and mnemonic not in ("verr", "verw")) \
                    or "%ymm" in parts[1] or "%zmm" in parts[1]:
                found.append(line.strip())
    return found


@pytest.mark.parametrize("model", MODELS)
def test_cpu_model(model, tmp_path):
    _require()
    level = MODELS[model]
    if model == "Nehalem" and not _numpy_runs_on(model):
        # NumPy 2.4's wheels need AVX themselves: no process with this NumPy runs on a CPU
        # without it (SandyBridge below runs the baseline kernels emulated). What a CPU
        # without AVX needs of fastact is then checked in the files: the modules it would
        # load (the runner, the baseline kernels) hold no AVX instruction.
        assert _numpy_runs_on("SandyBridge"), "NumPy runs on neither Nehalem nor SandyBridge"
        mods = [m for m in (_backend._runner, _backend.kernel_module("baseline")) if m is not None]
        assert len(mods) == 2, mods
        for mod in mods:
            vex = _vex_instructions(mod.__file__)
            assert not vex, f"{mod.__file__}: {len(vex)} AVX instructions, e.g. {vex[:3]}"
        return
    got = _emulated(model, tmp_path, {"FASTACT_SIMD": "avx512"})
    assert str(got.pop("info:simd_level")) == level
    assert str(got.pop("info:cpu_levels")).split(",")[-1] == level
    assert "FASTACT_SIMD='avx512' is not available" in str(got.pop("info:warnings"))
    assert str(got.pop("info:set_avx512")).startswith("ValueError")
    assert int(got.pop("info:bench_cases")) == (len(fastact.ACTIVATIONS) + 1) * 4
    config = str(got.pop("info:show_config"))
    runs = ", ".join(_backend.LEVELS[:_backend.LEVELS.index(level) + 1])
    assert f"SIMD level:  {level}" in config and f"this CPU runs {runs}" in config

    if level not in _backend.supported_levels():
        pytest.skip(f"this host does not run the {level!r} level to compare with")
    fma = [lv for lv in _backend.supported_levels() if lv != "baseline"]
    for reference in [level] + (fma[-1:] if level != "baseline" and fma[-1] != level else []):
        previous = fastact.set_simd_level(reference)
        try:
            native = cpu_probe.compute()
        finally:
            fastact.set_simd_level(previous)
        assert native.keys() == got.keys()
        assert sum(map(bool, map(cpu_probe.half_key, native))) >= 20     # the 16-bit ones
        differ = [k for k in native if not _same_bits(native[k], got[k], k)]
        assert not differ, (f"{len(differ)} results of {model}'s {level} differ from the "
                            f"native {reference} run: {differ[:5]}")
    if level == "baseline" and fma:
        # no FMA: the 16-bit results within one ulp of the FMA level's
        previous = fastact.set_simd_level(fma[-1])
        try:
            native = cpu_probe.compute_half()
        finally:
            fastact.set_simd_level(previous)
        far = [k for k in native if not _within_ulp(native[k], got[k], k)]
        assert not far, (f"{len(far)} 16-bit results of {model}'s {level} are not within "
                         f"one ulp of the native {fma[-1]} run: {far[:5]}")
