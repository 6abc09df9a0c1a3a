"""The kernels on platforms this machine is not: aarch64 (NEON, and SVE at three vector
lengths) cross-compiled and run under qemu-aarch64, through the C driver of
tools/kernel_driver.py (every kernel x entry point x dtype loop, generated from the same
table and statements as the Cython loops). They must give the same bits as fastact's
FMA level here (AVX2/AVX-512) on the sweep of tests/cpu_probe.py (specials, subnormals,
every binade, tails, kinks), and every loop must vectorize (GCC's reports); the same
for the segment loops of the gated units and prelu (fa_gated.h). The softmax family's
kernels (fa_softmax.h's table, as fastact._runner calls it) must give the same bits too:
every (log, op) x dtype on rows of assorted lengths (-inf entries, ties, every magnitude)
whole and block by block, rows of more than one block (FA_SMX_BLOCK), and tiles of
columns, and leave the same rows and columns (NaN, a max of +-inf) to the caller
(kernel_driver.softmax_jobs; their loops' vectorization is tools/check_vectorization.py's
and `python tools/kernel_driver.py`'s). float16 and bfloat16 (stored as 16 bits, computed
in float) are held to the same apart (test_half_same_bits): every entry point of every
case on a sweep of their bit patterns, the forward and backward of gelu, silu, sigmoid,
tanh, elu, softplus and relu on all 65536 of them (at SVE's first vector length: the
others, emulated 4x slower, run the sweep), every segment loop (swiglu's fbg and prelu's
fbgw also on all 65536) and the softmax family's rows, long rows and columns
(kernel_driver.half_jobs, segment_jobs, softmax_jobs). The driver
built for this x86-64 CPU is held to the same, which shows that it computes what the
Cython loops compute. Skipped, with the reason, where a tool is missing;
FASTACT_REQUIRE_EMULATION=1 (set by .ci/run) turns the skip into a failure.
"""
import os
import platform
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools"))
kernel_driver = pytest.importorskip("kernel_driver", reason="tools/ is not beside tests/")

TARGETS = [("native", None)] + [("neon", None)] + [
    ("sve", f"max,sve-default-vector-length={vl}") for vl in (16, 32, 64)]


def _require(target):
    reason = None
    if kernel_driver.fma_level() is None:
        reason = "this CPU runs no FMA level of fastact to compare with"
    elif target == "native" and platform.machine().lower() not in ("x86_64", "amd64"):
        reason = "the native driver is built for x86-64"
    elif kernel_driver.missing_tools(target):
        reason = (f"{', '.join(kernel_driver.missing_tools(target))} not found (Debian: "
                  f"apt-get install gcc-aarch64-linux-gnu qemu-user)")
    if reason:
        if os.environ.get("FASTACT_REQUIRE_EMULATION") == "1":
            pytest.fail(reason + " (FASTACT_REQUIRE_EMULATION=1)")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    """target -> the driver built for it (once per test session)."""
    built = {}

    def get(target):
        if target not in built:
            built[target] = kernel_driver.build(target, str(tmp_path_factory.mktemp(target)))
        return built[target]
    return get


FULL = [s for i, _, s, _ in kernel_driver.TYPES if i not in kernel_driver.HALF]
HALF = [s for i, _, s, _ in kernel_driver.TYPES if i in kernel_driver.HALF]


@pytest.mark.parametrize("target, cpu", TARGETS, ids=lambda v: (v or "").split("=")[-1])
def test_same_bits(target, cpu, tmp_path, driver):
    """float32 and float64."""
    _require(target)
    n, differ = kernel_driver.compare(target, str(tmp_path), cpu, exe=driver(target),
                                      dtypes=FULL)
    assert n > 400
    assert not differ, f"{len(differ)} of {n} jobs differ from fastact's FMA level: {differ[:5]}"


@pytest.mark.parametrize("target, cpu", TARGETS, ids=lambda v: (v or "").split("=")[-1])
def test_half_same_bits(target, cpu, tmp_path, driver):
    """float16 and bfloat16 (the driver passes their bits; fastact's bfloat16 arrays need
    ml_dtypes)."""
    _require(target)
    pytest.importorskip("ml_dtypes", reason="fastact's bfloat16 arrays are ml_dtypes'")
    half_all = cpu is None or cpu == TARGETS[2][1]        # (SVE: its first vector length)
    n, differ = kernel_driver.compare(target, str(tmp_path), cpu, exe=driver(target),
                                      dtypes=HALF, half_all=half_all)
    assert HALF and n > 400
    assert not differ, f"{len(differ)} of {n} jobs differ from fastact's FMA level: {differ[:5]}"


@pytest.mark.parametrize("target", ["native", "neon", "sve"])
def test_every_loop_vectorizes(target):
    _require(target)
    counts = kernel_driver.vectorized(target)
    missed = [f for f, c in counts.items()
              if c < kernel_driver.expected_loops(f) and not f.startswith("linear_")]
    assert len(counts) > 400 and not missed, f"not vectorized for {target}: {missed}"
    # every dtype's loops are there (float16 and bfloat16 too)
    assert all(any(f.removesuffix("_omp").endswith("_" + s) for f in counts)
               for s in FULL + HALF)


@pytest.mark.parametrize("target", ["native", "neon", "sve"])
def test_every_segment_loop_vectorizes(target):
    """The segment loops of fa_gated.h (gated units, prelu): every loop of every function
    (tools/kernel_driver.py's segment_vectorization: the eight-lane prelu sum by the loop
    or the SLP vectorizer, its tail of under eight elements exempt)."""
    _require(target)
    result = kernel_driver.segments_vectorized(target)
    missed = kernel_driver.segment_misses(result)
    assert len(result) == len(kernel_driver.TYPES) * len(kernel_driver.TABLE.SEGMENTS) \
        and not missed, \
        f"not vectorized for {target}: {missed}"
