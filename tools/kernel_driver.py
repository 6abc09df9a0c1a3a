"""fastact's kernels as a plain C program, for targets the Python build cannot run here.

`render()` writes one C file holding every kernel x entry point x dtype loop, generated
from the activation table exactly as the Cython template generates the loops of each
SIMD level (the same statements, the same constant-parameter loops, a serial loop and an
OpenMP one), a table of them, and a `main` that reads jobs (kernel, entry, dtype,
parameters, inputs) from a file and writes the results. `build()` compiles it with the
project's flags (fastact/_build_flags.py) for a target: `native` (this x86-64 CPU at
AVX2+FMA, which checks the driver itself against the Python build), `neon` (aarch64) or
`sve` (aarch64 + SVE), statically linked and run under `qemu-aarch64` for the foreign
ones. `compare()` runs every case of tests/cases.py on tests/cpu_probe.py's sweep through
the driver and through fastact's compiled kernels at an FMA level, and lists the results
whose bits differ (any NaN equals any NaN).

    python tools/kernel_driver.py --target neon sve     # cross-compile, emulate, compare
    python tools/kernel_driver.py --target sve --vl 16 32 64
    python tools/kernel_driver.py --count sigmoid gelu   # instructions per element

Needs gcc-aarch64-linux-gnu and qemu-user (Debian packages) for neon/sve.
"""
import argparse
import importlib.util
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "fastact", "_src")
TYPES = ((0, "float", "f32"), (1, "double", "f64"))
CROSS_CC = "aarch64-linux-gnu-gcc"
QEMU = "qemu-aarch64"


def _load(filename):
    """A module of the fastact package by path (the build's view, no import of fastact)."""
    name = "_fastact_driver_" + filename[:-3].lstrip("_")
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "fastact", filename))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


TABLE = _load("_activations.py")
FLAGS = _load("_build_flags.py")
# target -> (compiler, (machine, level) of FLAGS.compile_flags, how to run: a command prefix)
TARGETS = {
    "native": ("gcc", ("x86_64", "avx2"), []),
    "neon": (CROSS_CC, ("aarch64-cross", "neon"), [QEMU, "-cpu", "cortex-a72"]),
    "sve": (CROSS_CC, ("aarch64-cross", "sve"), [QEMU, "-cpu", "max"]),
}


def missing_tools(target):
    """The programs a target needs that are not on PATH (or do not run: a stub)."""
    cc, _, runner = TARGETS[target]
    missing = []
    for program in [cc] + runner[:1]:
        try:
            ok = shutil.which(program) and subprocess.run(
                [program, "--version"], capture_output=True, timeout=60).returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
        if not ok:
            missing.append(program)
    return missing


def render():
    """(C source, [(first line, function name)]) of the driver."""
    lines = ['#include <stdio.h>', '#include <stdlib.h>', '#include <stdint.h>',
             '#include "fa_activations.h"']
    lines += [f"#define {k} {v}" for k, v in TABLE.C_MACROS.items()]
    lines += ['#include "fa_table.h"', '',
             'typedef void (*kernel_t)(const char *a, const char *b, char *o1, char *o2, '
             'long n, const double *p, int nthreads);', '']
    funcs = []
    names = []
    for ki, k in enumerate(TABLE.KERNELS):
        for ei, e in enumerate(TABLE.ENTRIES):
            for ti, t, s in TYPES:
                if not TABLE.has_entry(k, e):
                    continue
                ins, outs, _ = TABLE.ENTRY_CODE[e]
                fname = f"{k.name}_{e}_{s}"
                names.append(f"[FA_SLOT({ki}, {ei}, {ti})] = {fname}")
                loops = []
                if k.common:
                    loops.append((f"{k.common[0]} == {k.common[1]!r}",
                                  TABLE.entry_statement(k, e, s, constant=True)))
                loops.append((None, TABLE.entry_statement(k, e, s)))
                # the OpenMP loop in a function of its own, so that the vectorizer's
                # report of each loop names its function (identical loops in one
                # function get one report)
                for suffix, pragma in (("_omp", True), ("", False)):
                    funcs.append((len(lines) + 1, fname + suffix))
                    lines.append(f"static void {fname}{suffix}(const char *in1, const char *in2, "
                                 f"char *out1, char *out2, long n, const double *p, "
                                 f"int nthreads) {{")
                    lines += [f"    const {t} *{v} = (const {t} *){ptr};"
                              for v, ptr in zip(ins, ("in1", "in2"))]
                    lines += [f"    {t} *{v} = ({t} *){ptr};"
                              for v, ptr in zip(outs, ("out1", "out2"))]
                    lines += [f"    {t} {name} = ({t})p[{j}];" for j, name in enumerate(k.params)]
                    lines.append("    long i;")
                    lines.append("    (void)in2; (void)out2; (void)nthreads; (void)p;")
                    if not pragma:
                        lines.append(f"    if (nthreads > 1) {{ {fname}_omp(in1, in2, out1, out2, "
                                     f"n, p, nthreads); return; }}")
                    for cond, stmt in loops:
                        ind = "        " if cond else "    "
                        if cond:
                            lines.append(f"    if ({cond}) {{")
                        if pragma:
                            lines.append("#pragma omp parallel for schedule(static) "
                                         "num_threads(nthreads)")
                        lines.append(f"{ind}for (i = 0; i < n; i++) {stmt};")
                        if cond:
                            lines += ["        return;", "    }"]
                    lines += ["}", ""]
    nin = [len(TABLE.ENTRY_CODE[e][0]) for e in TABLE.ENTRIES]
    nout = [len(TABLE.ENTRY_CODE[e][1]) for e in TABLE.ENTRIES]
    lines += [f"static const kernel_t TABLE[FA_TABLE_SIZE] = {{{', '.join(names)}}};",
              f"static const int NIN[] = {{{', '.join(map(str, nin))}}};",
              f"static const int NOUT[] = {{{', '.join(map(str, nout))}}};", "", MAIN]
    return "\n".join(lines) + "\n", funcs


# jobs: a header (kernel, entry, dtype, repeat: int32; p[5]: double; n: int64), then the
# entry's inputs; the results are written in job order. `repeat` runs the kernel that
# many times (for instruction counts).
HEADER = struct.Struct("<4i5dq")
MAIN = r"""
struct header { int32_t kernel, entry, dtype, repeat; double p[5]; int64_t n; };

int main(int argc, char **argv) {
    FILE *in, *out;
    struct header h;
    if (argc != 3 || !(in = fopen(argv[1], "rb")) || !(out = fopen(argv[2], "wb"))) {
        fprintf(stderr, "usage: driver JOBS RESULTS\n");
        return 2;
    }
    while (fread(&h, sizeof h, 1, in) == 1) {
        size_t size = (size_t)h.n * (h.dtype ? 8 : 4);
        char *buf[4] = {0, 0, 0, 0};
        int j, r;
        kernel_t f = TABLE[FA_SLOT(h.kernel, h.entry, h.dtype)];
        if (!f) { fprintf(stderr, "no such kernel\n"); return 1; }
        for (j = 0; j < 4; j++) buf[j] = malloc(size ? size : 1);
        for (j = 0; j < NIN[h.entry]; j++)
            if (fread(buf[j], 1, size, in) != size) { fprintf(stderr, "short read\n"); return 1; }
        for (r = 0; r < h.repeat; r++)
            f(buf[0], buf[1], buf[2], buf[3], (long)h.n, h.p, 1);
        for (j = 0; j < NOUT[h.entry]; j++) fwrite(buf[2 + j], 1, size, out);
        for (j = 0; j < 4; j++) free(buf[j]);
    }
    fclose(out);
    return 0;
}
"""


def write_source(directory):
    source, funcs = render()
    path = os.path.join(directory, "fastact_driver.c")
    with open(path, "w") as f:
        f.write(source)
    return path, funcs


def compile_flags(target, openmp=False):
    cc, (machine, level), _ = TARGETS[target]
    return ([cc] + FLAGS.compile_flags(level, machine) + ["-I", SRC]
            + (["-fopenmp"] if openmp else []))


def build(target, directory):
    """Compile the driver for a target (no OpenMP: the serial loops); its path."""
    src, _ = write_source(directory)
    exe = os.path.join(directory, f"driver_{target}")
    cmd = compile_flags(target) + [src, "-o", exe, "-lm"] + (["-static"] if target != "native" else [])
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return exe


def run(target, exe, jobs, directory, cpu=None):
    """Run the jobs [(kernel, entry, dtype, params, inputs)] through the driver; the list
    of each job's outputs."""
    jobs_path, out_path = os.path.join(directory, "jobs.bin"), os.path.join(directory, "out.bin")
    with open(jobs_path, "wb") as f:
        for kernel, entry, dtype, params, inputs, repeat in jobs:
            p = tuple(params) + (0.0,) * (TABLE.NPARAMS - len(params))
            f.write(HEADER.pack(kernel, entry, int(dtype == np.float64), repeat, *p,
                                inputs[0].size))
            for a in inputs:
                f.write(np.ascontiguousarray(a, dtype).tobytes())
    runner = list(TARGETS[target][2])
    if cpu and runner:
        runner[2] = cpu
    subprocess.run(runner + [exe, jobs_path, out_path], check=True, capture_output=True,
                   timeout=1800)
    data = open(out_path, "rb").read()
    results, offset = [], 0
    for kernel, entry, dtype, params, inputs, repeat in jobs:
        outs = []
        for _ in TABLE.ENTRY_CODE[TABLE.ENTRIES[entry]][1]:
            n = inputs[0].size * np.dtype(dtype).itemsize
            outs.append(np.frombuffer(data[offset:offset + n], dtype))
            offset += n
        results.append(outs)
    return results


def jobs():
    """Every case of tests/cases.py x entry x dtype on tests/cpu_probe.py's sweep, as
    (kernel, entry, dtype, params, inputs, repeat) with the kernel parameters the API
    would pass."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import cpu_probe
    from cases import CASES, kinks
    import fastact._api as api

    out = []
    for dtype in (np.float32, np.float64):
        for name, params in CASES:
            act = TABLE.ACTIVATIONS_BY_NAME[name]
            values = tuple(params.get(p, d) for p, d in act.params)
            kernel, kparams = api._PREPARE[name](*values)
            x = cpu_probe.sweep(dtype, kinks(name, params))
            g = np.resize(np.array([1.5, -0.75, 0.0, -0.0, 3.0e5], dtype), x.size)
            for ei, e in enumerate(TABLE.ENTRIES):
                if not TABLE.has_entry(TABLE.KERNELS[kernel], e):
                    continue
                inputs = (x,) if len(TABLE.ENTRY_CODE[e][0]) == 1 else (g, x)
                out.append((kernel, ei, dtype, kparams, inputs, 1))
    return out


def native_results(job_list, level):
    """The same jobs through fastact's compiled kernels of a level."""
    from fastact import _backend
    previous = _backend.set_simd_level(level)
    try:
        results = []
        for kernel, entry, dtype, params, inputs, _ in job_list:
            outs = tuple(np.empty(inputs[0].size, dtype)
                         for _ in TABLE.ENTRY_CODE[TABLE.ENTRIES[entry]][1])
            _backend.COMPILED.launch(kernel, entry, tuple(np.ascontiguousarray(a) for a in inputs),
                                     outs, params)
            results.append(list(outs))
        return results
    finally:
        _backend.set_simd_level(previous)


def same_bits(a, b):
    """Bit for bit, any NaN equal to any NaN (the sign of a NaN is unspecified)."""
    bits = np.uint32 if a.dtype == np.float32 else np.uint64
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    return np.array_equal(nan_a, nan_b) and np.array_equal(
        np.where(nan_a, 0, a.view(bits)), np.where(nan_b, 0, b.view(bits)))


def fma_level():
    """The FMA level fastact runs here (the reference bits), or None."""
    from fastact import _backend
    levels = [lv for lv in _backend.supported_levels() if lv != "baseline"]
    return levels[-1] if levels else None


def compare(target, directory, cpu=None, exe=None):
    """(number of jobs, descriptions of those whose driver results differ from fastact's
    FMA level); exe: a driver already built for the target."""
    job_list = jobs()
    exe = exe or build(target, directory)
    got = run(target, exe, job_list, directory, cpu)
    expected = native_results(job_list, fma_level())
    bad = []
    for job, g, e in zip(job_list, got, expected):
        if not all(same_bits(a, b) for a, b in zip(g, e)):
            kernel, entry, dtype, params = job[:4]
            bad.append(f"{TABLE.KERNELS[kernel].name}.{TABLE.ENTRIES[entry]}."
                       f"{np.dtype(dtype).name}{params}")
    return len(job_list), bad


def vectorized(target, compiler_report=None):
    """{function: number of vectorized loops} of the driver compiled for a target with
    OpenMP (GCC's -fopt-info-vec-optimized)."""
    import bisect
    import re
    with tempfile.TemporaryDirectory() as tmp:
        src, funcs = write_source(tmp)
        report = os.path.join(tmp, "vec.txt")
        # -fno-ipa-icf: identical functions (relu's bwd and bwdy) are not folded into one
        cmd = compile_flags(target, openmp=True) + ["-fno-ipa-icf", "-c", src, "-o",
                                                    os.path.join(tmp, "d.o"),
                                                    f"-fopt-info-vec-optimized={report}"]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        lines = open(report).read().splitlines()
    starts = [line for line, _ in funcs]
    counts = {name: 0 for _, name in funcs}
    for line in lines:
        m = re.search(r"\.c:(\d+):\d+: optimized: loop vectorized", line)
        if m:
            i = bisect.bisect(starts, int(m.group(1))) - 1
            if i >= 0:
                counts[funcs[i][1]] += 1
    return counts


def expected_loops(function):
    """Loops in a driver function: one, two where the kernel has a constant variant."""
    kernel = function.split("_" + next(e for e in TABLE.ENTRIES if f"_{e}_f" in function))[0]
    return 2 if TABLE.KERNELS[[k.name for k in TABLE.KERNELS].index(kernel)].common else 1


def instructions_per_element(target, exe, kernel, entry, suffix, cpu=None, n=4096):
    """Instructions qemu executes per element in one kernel loop of a built driver (qemu
    -singlestep -d exec logs one line per instruction; the driver's own work cancels
    out between running the loop once and three times)."""
    ki = [k.name for k in TABLE.KERNELS].index(kernel)
    ei = TABLE.ENTRIES.index(entry)
    dtype = np.float32 if suffix == "f32" else np.float64
    x = np.linspace(-20, 20, n).astype(dtype)
    inputs = (x,) if len(TABLE.ENTRY_CODE[entry][0]) == 1 else (np.ones_like(x), x)
    runner = list(TARGETS[target][2])
    if cpu:
        runner[2] = cpu
    counts = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in (1, 3):
            jobs_path, log = os.path.join(tmp, "jobs.bin"), os.path.join(tmp, "exec.log")
            with open(jobs_path, "wb") as f:
                f.write(HEADER.pack(ki, ei, int(dtype == np.float64), repeat,
                                    *(1.0,) * TABLE.NPARAMS, n))
                for a in inputs:
                    f.write(a.tobytes())
            subprocess.run(runner[:1] + ["-singlestep", "-d", "exec,nochain", "-D", log]
                           + runner[1:] + [exe, jobs_path, os.path.join(tmp, "o.bin")],
                           check=True, capture_output=True)
            with open(log, "rb") as f:
                counts.append(sum(c.count(b"Trace ") for c in iter(lambda: f.read(1 << 20), b"")))
    return (counts[1] - counts[0]) / (2 * n)


def count_table(kernels, entries=("fwd", "bwd"), suffixes=("f32", "f64")):
    """Rows (kernel, entry, dtype, NEON, SVE 128-bit) of instructions per element."""
    with tempfile.TemporaryDirectory() as tmp:
        exes = {t: build(t, tmp) for t in ("neon", "sve")}
        for k in kernels:
            for e in entries:
                for s in suffixes:
                    yield (k, e, s, instructions_per_element("neon", exes["neon"], k, e, s),
                           instructions_per_element("sve", exes["sve"], k, e, s,
                                                    cpu="max,sve-default-vector-length=16"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", nargs="+", default=["neon", "sve"], choices=sorted(TARGETS))
    ap.add_argument("--vl", nargs="+", type=int, default=[16, 32, 64],
                    help="SVE vector lengths in bytes to run (default 16 32 64)")
    ap.add_argument("--count", nargs="*", metavar="KERNEL",
                    help="instructions per element of the forward and backward loops of "
                         "these kernels (default: all), NEON against SVE at 128 bits")
    args = ap.parse_args()
    if args.count is not None:
        print("| kernel | entry | dtype | NEON | SVE (128-bit) | SVE / NEON |")
        print("|---|---|---|---:|---:|---:|")
        ratios = []
        for k, e, s, neon, sve in count_table(args.count or [k.name for k in TABLE.KERNELS]):
            ratios.append(sve / neon)
            print(f"| {k} | {e} | {s} | {neon:.2f} | {sve:.2f} | {sve / neon:.2f} |", flush=True)
        print(f"geometric mean SVE / NEON: {np.exp(np.mean(np.log(ratios))):.3f}")
        return 0
    status = 0
    for target in args.target:
        if missing_tools(target):
            print(f"{target}: missing {', '.join(missing_tools(target))}")
            status = 1
            continue
        counts = vectorized(target)
        novec = [f for f, c in counts.items() if c < expected_loops(f)
                 and not f.startswith("linear_")]
        print(f"{target}: {len(counts)} kernel functions, "
              + ("every loop vectorized" if not novec else f"NOT vectorized: {', '.join(novec)}"))
        cpus = [None] if target != "sve" else [f"max,sve-default-vector-length={v}" for v in args.vl]
        for cpu in cpus:
            with tempfile.TemporaryDirectory() as tmp:
                n, bad = compare(target, tmp, cpu)
            print(f"{target}{' (' + cpu + ')' if cpu else ''}: {n} jobs, "
                  + ("same bits as fastact's " + fma_level() if not bad
                     else f"{len(bad)} differ: {bad[:5]}"))
            status |= bool(bad) or bool(novec)
    return status


if __name__ == "__main__":
    sys.exit(main())
