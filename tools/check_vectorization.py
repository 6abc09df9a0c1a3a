"""Check that the compiler vectorizes every loop of every generated
kernel, of every dtype (float32, float64, float16, bfloat16).

A kernel whose loop stops vectorizing still computes the right numbers, only 5-20x
slower, so no correctness test notices; this does. It recompiles the cythonized kernels
of each SIMD level with the build's flags and the compiler's vectorization report (GCC's
-fopt-info-vec, clang's -Rpass=loop-vectorize remarks) and maps the loops back to the
kernel functions, with the compiler's reason for a loop it left scalar (float16 and
bfloat16 at the x86 SIMD levels: the float32 loop of each block function, BLOCK). The
segment loops of the gated units and prelu (fa_gated.h, macro-expanded; every dtype) are checked the same
way, each loop of each function on a line of its own (tools/kernel_driver.py's
segment_vectorization: the eight-lane prelu sum may vectorize by SLP, its tail need
not). So are the softmax family's loops (fa_softmax.h: the rows' max, sums and write,
the column tiles), each loop of each of the dtype x (log, op) specializations and of
each call path on its own (kernel_driver.py's softmax_vectorization: the pairwise
combination of the 16 lanes and the per-column constants may stay scalar, and the
misses of SMX_KNOWN, each listed by dtype, are accepted); a loop that did not vectorize
is listed with the compiler's reason. The three compiles of a level run side by side.
Run after a build (the .c files live in build/cython):

    python tools/check_vectorization.py [--level avx2] [--compiler clang]
"""
import argparse
import bisect
import concurrent.futures
import os
import re
import subprocess
import sys
import sysconfig
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from kernel_driver import (FLAGS, SUFFIXES, TABLE, _smx_reports,  # noqa: E402
                           expected_loops, segment_misses, segment_summary,
                           segment_vectorization,  # (what setup.py reads)
                           softmax_misses, softmax_summary, softmax_vectorization)


def _accepts(compiler, flag):
    """Whether the compiler takes the flag (as setup.py probes it)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "t.c")
        open(src, "w").write("int main(void) { return 0; }\n")
        return subprocess.run([compiler, flag, "-Werror", "-c", src, "-o", src + ".o"],
                              capture_output=True).returncode == 0


# Python's CFLAGS and include directory, read once here: sysconfig fills its variables on
# first use, and the checks' threads asking at once saw them half filled (None)
PY_CFLAGS = sysconfig.get_config_var("CFLAGS").split()
PY_INCLUDE = sysconfig.get_paths()["include"]


def _command(compiler, level):
    """The compiler and its flags as setup.py compiles a level's kernel module: Python's
    CFLAGS (with its -fwrapv), then the project's flags (no source, -c or -o)."""
    flags = FLAGS.compile_flags(level, "x86_64", accepts=lambda f: _accepts(compiler, f))
    macros = [f"-D{k}={v}" for k, v in TABLE.C_MACROS.items()]
    return [compiler] + (PY_CFLAGS + flags + macros + [
        "-fopenmp", "-fPIC", "-I", os.path.join(ROOT, "fastact", "_src"), "-I", PY_INCLUDE])


def _report(compiler, level, src, tmp):
    """{line: [(kind, reason)]} of the compiler's vectorization reports (kernel_driver's
    _smx_reports: 'vec' a loop vectorized, 'miss' a loop not, with the compiler's reason),
    compiling as setup.py does: Python's CFLAGS (with its -fwrapv), then the project's
    flags."""
    common = _command(compiler, level)[1:] + ["-c", src, "-o", os.path.join(tmp, "k.o")]
    if compiler == "gcc":
        report = os.path.join(tmp, "vec.txt")
        # -fno-ipa-icf: identical functions (relu's bwd and bwdy) keep a report each
        subprocess.run(["gcc"] + common + ["-fno-ipa-icf",
                                           f"-fopt-info-vec-loop-optimized-missed={report}"],
                       check=True)
        text = open(report).read()
    else:                              # clang's remarks, on stderr
        r = subprocess.run([compiler] + common + ["-fno-caret-diagnostics",
                                                  "-Rpass=loop-vectorize",
                                                  "-Rpass-missed=loop-vectorize",
                                                  "-Rpass-analysis=loop-vectorize"],
                           check=True, capture_output=True, text=True)
        text = r.stderr
    name = os.path.basename(src)
    return {line: kinds for (file, line), kinds in _smx_reports(text, compiler != "gcc").items()
            if file == name}


# float16 and bfloat16 at the x86 SIMD levels (fastact/_src/_kernels.pyx.in): a kernel
# function's loop runs over chunks of two vectors converted in registers (float16 compiled
# by GCC: its float32 loop over a chunk must vectorize, the tail goes to the block
# function) or over blocks of FA_HBLK elements, each through K_E_f16_blk
# (K_E_f16_blk_c with the kernel's common parameter value; _bf16_ likewise) whose float32
# loop over the widened block is the one that must vectorize (the conversions around it
# are F16C / AVX2 / AVX-512 intrinsics; their scalar tails, under 8 or 16 elements, are
# fa_half.h's)
BLOCK = re.compile(r"(\w+_b?f16)_blk(?:_c)?$")


def check(compiler, level):
    """(kernel functions of a level, {dtype suffix: those functions}, the functions (and
    16-bit block functions) whose loops did not all vectorize, each as 'name
    (vectorized/expected loops: the compiler's reasons for those it left, by line of the
    generated .c)'). A function's loops must vectorize (a report that one did not
    fails it, beside one that did): its loop, of both variants where
    the kernel has a constant one (linear's, copies, are left to memcpy); at the x86 SIMD
    levels a 16-bit function's block functions' float32 loops (BLOCK)."""
    src = os.path.join(ROOT, "build", "cython", "build", "generated", "fastact",
                       f"_kernels_{level}.c")
    if not os.path.exists(src):
        sys.exit(f"{src} not found: build fastact first")
    with tempfile.TemporaryDirectory() as tmp:
        reports = _report(compiler, level, src, tmp)
    text = open(src).read().splitlines()
    pattern = re.compile(r"static void __pyx_f_\w+?_kernels_[a-z0-9]+?_(\w+)\("
                         r"(?:char|fa_half_t) const \*")
    funcs = []                           # (first line, last line, name)
    for i, line in enumerate(text, 1):
        if "/*proto*/" not in line and (m := pattern.match(line)):
            end = next(j for j in range(i, len(text) + 1) if text[j - 1] == "}")
            funcs.append((i, end, m.group(1)))
    names = {name for *_, name in funcs}
    counts = {name: 0 for *_, name in funcs}
    slp = {name: 0 for *_, name in funcs}         # lines SLP-vectorized
    misses = {name: [] for *_, name in funcs}
    starts = [i for i, *_ in funcs]
    for line, kinds in sorted(reports.items()):
        k = bisect.bisect(starts, line) - 1
        if line < len(text) and text[line].strip().startswith("__pyx_v_blk = "):
            # the loop over the blocks of a call past the caches (_kernels.pyx.in's
            # FA_PBLK): a loop of prefetches and the block's own loop, which is the one
            # that must vectorize (and is counted where it is reported)
            kinds = [(kind, why) for kind, why in kinds if kind != "miss"]
        if k >= 0 and line <= funcs[k][1]:
            counts[funcs[k][2]] += sum(kind == "vec" for kind, _ in kinds)
            slp[funcs[k][2]] += any(kind == "slp" for kind, _ in kinds)
            misses[funcs[k][2]] += [f"line {line}: {why or 'no reason given'}"
                                    for kind, why in kinds if kind == "miss"]

    def chunked(name):
        """A 16-bit function at an x86 SIMD level whose loop runs over chunks (float16
        built by GCC: FA_HALF_CHUNKS): the float32 loop over a chunk (of each variant)
        must vectorize, by the loop vectorizer or, where GCC unrolls its 16 or 32
        iterations first, by SLP; the loop over the chunks, of intrinsics, cannot."""
        return compiler == "gcc" and name + "_blk" in names and name.endswith("_f16")

    def expected(name):
        """(vectorized loop reports expected at least, whether misses count)"""
        if BLOCK.match(name):
            return 1, True
        if chunked(name):
            return expected_loops(name), False
        if name + "_blk" in names:       # 16 bits at an x86 SIMD level: the loop over blocks
            return 0, False
        return expected_loops(name), True

    def vectorized(name):
        """The loops of a function vectorized (a chunk function's SLP lines count)."""
        return counts[name] + (slp[name] if chunked(name) else 0)
    bad = []
    for name in counts:
        n = vectorized(name)
        want, strict = expected(name)
        if name.startswith("linear_") or (n >= want and not (strict and misses[name])):
            continue
        bad.append(f"{name} ({n}/{want} loops vectorized"
                   + (f": {'; '.join(misses[name])})" if misses[name] else ")"))
    kernels = [name for name in names if not BLOCK.match(name)]
    by_dtype = {s: [name for name in kernels if name.endswith("_" + s)] for s in SUFFIXES}
    blocks = sum(bool(BLOCK.match(name)) for name in names)
    return len(kernels), by_dtype, blocks, bad


def check_segments(compiler, level):
    """segment_vectorization() of the segment loops (fa_gated.h) compiled as the level's
    kernel module is; a compiler other than gcc is taken for clang (its remarks)."""
    return segment_vectorization(_command(compiler, level), clang=compiler != "gcc")


def check_softmax(compiler, level):
    """softmax_vectorization() of the softmax family's loops (fa_softmax.h) compiled as
    the level's kernel module is; a compiler other than gcc is taken for clang."""
    return softmax_vectorization(_command(compiler, level), clang=compiler != "gcc")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--level", nargs="+", default=list(FLAGS.LEVELS),
                    choices=FLAGS.LEVELS, help="SIMD levels (default: all)")
    ap.add_argument("--compiler", default="gcc",
                    help="gcc (its -fopt-info reports) or clang (its -Rpass remarks)")
    args = ap.parse_args()
    status = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        for level in args.level:
            jobs = [pool.submit(f, args.compiler, level)
                    for f in (check, check_segments, check_softmax)]
            (n, by_dtype, blocks, bad), segments, softmax = (job.result() for job in jobs)
            dtypes = ", ".join(f"{len(v)} {s}" for s, v in by_dtype.items())
            blocks = f", 16 bits in {blocks} block functions" if blocks else ""
            print(f"{args.compiler}: {n} kernels at {level} ({dtypes}{blocks}): "
                  + ("all loops vectorized" if not bad else f"{len(bad)} NOT vectorized"))
            for miss in bad:
                print(f"    NOT vectorized at {level}: {miss}")
            status |= bool(bad) or not all(by_dtype.values())
            print(f"{args.compiler}: {segment_summary(segments)} at {level}")
            status |= bool(segment_misses(segments))
            print(f"{args.compiler}: {softmax_summary(softmax)} at {level}")
            for miss in softmax_misses(softmax):
                print(f"    NOT vectorized at {level}: {miss}")
            status |= bool(softmax_misses(softmax))
            sys.stdout.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
