"""Check that the compiler vectorizes every loop (serial and OpenMP) of every generated
kernel.

A kernel whose loop stops vectorizing still computes the right numbers, only 5-20x
slower, so no correctness test notices; this does. It recompiles the cythonized kernels
of each SIMD level with the build's flags and the compiler's vectorization report (GCC's
-fopt-info-vec-optimized, clang's -Rpass=loop-vectorize remarks) and maps the vectorized
loops back to the kernel functions. The segment loops of the gated units and prelu
(fa_gated.h, macro-expanded) are checked the same way, each loop of each function on a
line of its own (tools/kernel_driver.py's segment_vectorization: the eight-lane prelu sum
may vectorize by SLP, its tail need not). So are the softmax family's loops (fa_softmax.h:
the rows' max, sums and write, the column tiles), each loop of each of the 16 dtype x
(log, op) specializations and of each call path on its own (kernel_driver.py's
softmax_vectorization: the pairwise combination of the 16 lanes and the per-column
constants may stay scalar); a loop that did not vectorize is listed with the compiler's
reason. The three compiles of a level run side by side. Run after a build (the .c files
live in build/cython):

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
from kernel_driver import (FLAGS, TABLE, expected_loops, segment_misses,  # noqa: E402
                           segment_summary, segment_vectorization,  # (what setup.py reads)
                           softmax_misses, softmax_summary, softmax_vectorization)


def _accepts(compiler, flag):
    """Whether the compiler takes the flag (as setup.py probes it)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "t.c")
        open(src, "w").write("int main(void) { return 0; }\n")
        return subprocess.run([compiler, flag, "-Werror", "-c", src, "-o", src + ".o"],
                              capture_output=True).returncode == 0


def _command(compiler, level):
    """The compiler and its flags as setup.py compiles a level's kernel module: Python's
    CFLAGS (with its -fwrapv), then the project's flags (no source, -c or -o)."""
    flags = FLAGS.compile_flags(level, "x86_64", accepts=lambda f: _accepts(compiler, f))
    macros = [f"-D{k}={v}" for k, v in TABLE.C_MACROS.items()]
    return [compiler] + (sysconfig.get_config_var("CFLAGS").split() + flags + macros + [
        "-fopenmp", "-fPIC", "-I", os.path.join(ROOT, "fastact", "_src"),
        "-I", sysconfig.get_paths()["include"]])


def _report(compiler, level, src, tmp):
    """The line numbers the compiler reports a vectorized loop at, compiling as setup.py
    does: Python's CFLAGS (with its -fwrapv), then the project's flags."""
    common = _command(compiler, level)[1:] + ["-c", src, "-o", os.path.join(tmp, "k.o")]
    if compiler == "gcc":
        report = os.path.join(tmp, "vec.txt")
        # -fno-ipa-icf: identical functions (relu's bwd and bwdy) keep a report each
        subprocess.run(["gcc"] + common + ["-fno-ipa-icf", f"-fopt-info-vec-optimized={report}"],
                       check=True)
        text, pattern = open(report).read(), r"\.c:(\d+):\d+: optimized: loop vectorized"
    else:                              # clang's remarks, on stderr
        r = subprocess.run([compiler] + common + ["-Rpass=loop-vectorize"], check=True,
                           capture_output=True, text=True)
        text, pattern = r.stderr, r"\.c:(\d+):\d+: remark: vectorized loop"
    return [int(m.group(1)) for m in re.finditer(pattern, text)]


def check(compiler, level):
    """Kernel functions of a level whose loops did not all vectorize."""
    src = os.path.join(ROOT, "build", "cython", "build", "generated", "fastact",
                       f"_kernels_{level}.c")
    if not os.path.exists(src):
        sys.exit(f"{src} not found: build fastact first")
    with tempfile.TemporaryDirectory() as tmp:
        lines = _report(compiler, level, src, tmp)
    text = open(src).read().splitlines()
    funcs = [(i, m.group(1)) for i, line in enumerate(text, 1) if "/*proto*/" not in line
             and (m := re.match(r"static void __pyx_f_\w+?_kernels_[a-z0-9]+?_(\w+)\(char const \*", line))]
    starts = [i for i, _ in funcs]
    counts = {name: 0 for _, name in funcs}
    for line in lines:
        k = bisect.bisect(starts, line) - 1
        if k >= 0:
            counts[funcs[k][1]] += 1
    # the serial and the OpenMP loop of each (and of the constant-parameter variant where
    # the kernel has one); linear's are copies that the compiler turns into memcpy
    return len(funcs), [name for name, n in counts.items()
                        if n < 2 * expected_loops(name) and not name.startswith("linear_")]


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
            (n, bad), segments, softmax = (job.result() for job in jobs)
            print(f"{args.compiler}: {n} kernels at {level}: "
                  f"{'all loops vectorized' if not bad else 'NOT vectorized: ' + ', '.join(bad)}")
            status |= bool(bad)
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
