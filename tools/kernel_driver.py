"""fastact's kernels as a plain C program, for targets the Python build cannot run here.

`render()` writes one C file holding every kernel x entry point x dtype loop, generated
from the activation table exactly as the Cython template generates the loops of each
SIMD level (the same statements, the same constant-parameter loops, a serial loop and an
OpenMP one), a table of them, and a `main` that reads jobs (kernel, entry, dtype,
parameters, inputs) from a file and writes the results. `build()` compiles it with the
project's flags (fastact/_build_flags.py) for a target: `native` (this x86-64 CPU at
AVX2+FMA, which checks the driver itself against the Python build), `neon` (aarch64) or
`sve` (aarch64 + SVE), statically linked and run under `qemu-aarch64` for the foreign
ones. The driver also holds every segment loop of fa_gated.h (the gated units and prelu,
the header's own functions). `compare()` runs every case of tests/cases.py on
tests/cpu_probe.py's sweep, and every segment loop on the sweep, special values and short
lengths (segment_jobs), through the driver and through fastact's compiled kernels at an
FMA level (the segments through fastact._runner.segments), and lists the results whose
bits differ (any NaN equals any NaN). `segment_vectorization()` checks that every loop of
every segment function vectorizes (also used by tools/check_vectorization.py).

    python tools/kernel_driver.py --target neon sve     # cross-compile, emulate, compare
    python tools/kernel_driver.py --target sve --vl 16 32 64
    python tools/kernel_driver.py --count sigmoid gelu   # instructions per element

Needs gcc-aarch64-linux-gnu and qemu-user (Debian packages) for neon/sve.
"""
import argparse
import importlib.util
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import typing

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
              f"static const int NOUT[] = {{{', '.join(map(str, nout))}}};", ""]
    # the segment loops of fa_gated.h (the header's own functions, as the kernel modules
    # take them): at 2 * index + dtype, with what each reads and writes
    io = [segment_io(name) for name in TABLE.SEGMENTS]
    lines += ['#include "fa_gated.h"', f"#define NSEG {len(TABLE.SEGMENTS)}",
              "static const fa_seg_t SEGS[2 * NSEG] = {"
              + ", ".join(f"fa_{name}_seg_{s}" for name in TABLE.SEGMENTS for _, _, s in TYPES)
              + "};"]
    lines += [f"static const int {array}[NSEG] = {{{', '.join(str(v[k]) for v in io)}}};"
              for k, array in enumerate(("SEG_G", "SEG_NOUT", "SEG_ONE_B", "SEG_ACC"))]
    lines += ["", MAIN]
    return "\n".join(lines) + "\n", funcs


# segment loops (fa_gated.h's header comment): entry -> (reads grad_output g, outputs
# o1.. of the segment's type); the prelu entries ending in w also add to the float64
# accumulator(s) o3
GATED_IO = {"fwd": (0, 1), "grad": (0, 2), "bwd": (1, 2), "fb": (0, 3), "fbg": (1, 3)}
PRELU_IO = {"fwd": (0, 1), "grad": (0, 1), "bwd": (1, 1), "fb": (0, 2), "fbg": (1, 2),
            "bwdw": (1, 1), "fbw": (0, 2), "fbgw": (1, 2)}


def segment_io(name):
    """(reads g, outputs of the segment's type, b is one value (prelu's s) rather than one
    per element, float64 accumulator: 0 none, 1 one (prelu_s_*w), 2 one per element
    (prelu_v_*w)) of a segment loop of fastact._activations.SEGMENTS."""
    if set(GATED_IO) != set(TABLE.GATED_ENTRIES) or set(PRELU_IO) != set(TABLE.PRELU_ENTRIES):
        raise RuntimeError("the segment entries changed: update GATED_IO/PRELU_IO of "
                           "tools/kernel_driver.py from fa_gated.h")
    if name.startswith("prelu_"):
        mode, entry = name.split("_")[1:]
        has_g, nout = PRELU_IO[entry]
        return has_g, nout, int(mode == "s"), (1 if mode == "s" else 2) * entry.endswith("w")
    entry = name.rsplit("_", 1)[1]
    return GATED_IO[entry] + (0, 0)


# jobs: a header (kernel, entry, dtype, repeat: int32; p[5]: double; n: int64), then the
# entry's inputs; the results are written in job order. `repeat` runs the kernel that
# many times (for instruction counts). A segment job has entry -1 and the segment's index
# in kernel; its inputs are g (if it reads it), a (n), b (n, or one value), then the
# initial float64 accumulator(s) (one, or n) of the prelu w entries; its results the
# outputs of its type, then the accumulator(s).
HEADER = struct.Struct("<4i5dq")
SEGMENT_JOB = -1
MAIN = r"""
struct header { int32_t kernel, entry, dtype, repeat; double p[5]; int64_t n; };

static char *read_array(FILE *in, size_t size) {
    char *p = malloc(size ? size : 1);
    if (p && fread(p, 1, size, in) != size) { free(p); p = NULL; }
    return p;
}

/* one segment job (entry -1): 0, or 1 on a short read */
static int run_segment(const struct header *h, FILE *in, FILE *out) {
    int s = h->kernel, j, r;
    size_t t = h->dtype ? 8 : 4, n = (size_t)h->n;
    size_t nacc = SEG_ACC[s] == 1 ? 1 : SEG_ACC[s] == 2 ? n : 0;
    char *g = NULL, *a, *b, *o[3] = {0, 0, 0};
    int ok;
    if (SEG_G[s] && !(g = read_array(in, n * t))) return 1;
    a = read_array(in, n * t);
    b = read_array(in, SEG_ONE_B[s] ? t : n * t);
    ok = a && b;
    for (j = 0; j < SEG_NOUT[s]; j++) o[j] = malloc(n * t ? n * t : 1);
    if (nacc) ok = ok && (o[2] = read_array(in, nacc * 8));
    if (ok)
        for (r = 0; r < h->repeat; r++)
            SEGS[2 * s + h->dtype](g, a, b, o[0], o[1], o[2], (ptrdiff_t)n);
    for (j = 0; ok && j < SEG_NOUT[s]; j++) fwrite(o[j], 1, n * t, out);
    if (ok && nacc) fwrite(o[2], 1, nacc * 8, out);
    free(g); free(a); free(b);
    for (j = 0; j < 3; j++) free(o[j]);
    return !ok;
}

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
        kernel_t f;
        if (h.entry == -1) {
            if (h.kernel < 0 || h.kernel >= NSEG) { fprintf(stderr, "no such segment\n"); return 1; }
            if (run_segment(&h, in, out)) { fprintf(stderr, "short read\n"); return 1; }
            continue;
        }
        f = TABLE[FA_SLOT(h.kernel, h.entry, h.dtype)];
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


class SegmentJob(typing.NamedTuple):
    """A segment loop's job: SEGMENTS[seg] for dtype on inputs (g or None, a, b) with the
    initial accumulator acc (float64; None where the segment has none); label: what the
    case is (for the report)."""
    seg: int
    dtype: type
    inputs: tuple
    acc: typing.Optional[np.ndarray]
    label: str = ""
    repeat: int = 1


def _n(job):
    return job.inputs[1].size if isinstance(job, SegmentJob) else job[4][0].size


def _write_job(f, job):
    if isinstance(job, SegmentJob):
        f.write(HEADER.pack(job.seg, SEGMENT_JOB, int(job.dtype == np.float64), job.repeat,
                            *(0.0,) * TABLE.NPARAMS, _n(job)))
        for a in job.inputs:
            if a is not None:
                f.write(np.ascontiguousarray(a, job.dtype).tobytes())
        if job.acc is not None:
            f.write(np.ascontiguousarray(job.acc, np.float64).tobytes())
        return
    kernel, entry, dtype, params, inputs, repeat = job
    p = tuple(params) + (0.0,) * (TABLE.NPARAMS - len(params))
    f.write(HEADER.pack(kernel, entry, int(dtype == np.float64), repeat, *p, inputs[0].size))
    for a in inputs:
        f.write(np.ascontiguousarray(a, dtype).tobytes())


def _result_layout(job):
    """[(dtype, elements)] of a job's results, in the driver's order."""
    n = _n(job)
    if isinstance(job, SegmentJob):
        _, nout, _, acc = segment_io(TABLE.SEGMENTS[job.seg])
        return [(job.dtype, n)] * nout + ([(np.float64, job.acc.size)] if acc else [])
    return [(job[2], n)] * len(TABLE.ENTRY_CODE[TABLE.ENTRIES[job[1]]][1])


def run(target, exe, jobs, directory, cpu=None):
    """Run the jobs [(kernel, entry, dtype, params, inputs, repeat) or SegmentJob] through
    the driver; the list of each job's outputs (a segment's: its outputs, then its
    accumulator)."""
    jobs_path, out_path = os.path.join(directory, "jobs.bin"), os.path.join(directory, "out.bin")
    with open(jobs_path, "wb") as f:
        for job in jobs:
            _write_job(f, job)
    runner = list(TARGETS[target][2])
    if cpu and runner:
        runner[2] = cpu
    subprocess.run(runner + [exe, jobs_path, out_path], check=True, capture_output=True,
                   timeout=1800)
    data = open(out_path, "rb").read()
    results, offset = [], 0
    for job in jobs:
        outs = []
        for dtype, count in _result_layout(job):
            size = count * np.dtype(dtype).itemsize
            outs.append(np.frombuffer(data[offset:offset + size], dtype))
            offset += size
        results.append(outs)
    if offset != len(data):
        raise RuntimeError(f"the driver wrote {len(data)} bytes, expected {offset}")
    return results


def jobs():
    """Every case of tests/cases.py x entry x dtype on tests/cpu_probe.py's sweep, as
    (kernel, entry, dtype, params, inputs, repeat) with the kernel parameters the API
    would pass; then segment_jobs()."""
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
    return out + segment_jobs()


def _specials(dtype, extra=()):
    """0, -0, +-inf, NaN, subnormal, tiny, huge and ordinary values of a dtype."""
    info = np.finfo(dtype)
    v = [1.0, -2.5, 0.0, -0.0, np.inf, -np.inf, np.nan, info.smallest_subnormal,
         -info.tiny, info.max, -info.max / 3, 1e-30, 3e30, 0.5, -7.0] + list(extra)
    return np.array(v, dtype)


# prelu's weights: signs, magnitudes, zeros, specials (float64 values, cast to the dtype)
PRELU_WEIGHTS = (0.25, -1.5, 0.0, -0.0, 1e-3, 3.0e5, -1e-30, 1.0, np.inf, np.nan)
# segment lengths of the short jobs: the tails of every vector length (and of prelu's
# eight partial sums)
SHORT = (1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 63, 71)


def segment_jobs():
    """SegmentJobs of every segment loop x dtype: the gate (gated) or x (prelu) over
    tests/cpu_probe.py's sweep, a (gated) and grad_output over special values, prelu's
    weights of several signs and magnitudes (one per segment: each of PRELU_WEIGHTS; one
    per element: all of them, interleaved), accumulators starting at 0 and elsewhere;
    and every segment on short lengths (SHORT)."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import cpu_probe

    out = []
    for dtype in (np.float32, np.float64):
        for si, name in enumerate(TABLE.SEGMENTS):
            has_g, _, one_b, acc_kind = segment_io(name)
            if name.startswith("prelu_"):
                x = cpu_probe.sweep(dtype, (0.0,))
                # first, finite x and g, shuffled (x of moderate size, then of every
                # magnitude with the products within float64): the weight's gradient is
                # then a sum whose order shows, not inf or NaN
                x64, rng = x.astype(np.float64), np.random.default_rng(si)
                cases = []
                for label, limit in (("moderate", 1e4), ("finite", 1e300)):
                    fin = rng.permutation(x[np.isfinite(x64) & (np.abs(x64) < limit)])
                    cases.append((label, fin, np.array([0.25], dtype) if one_b else
                                  np.resize(np.array(PRELU_WEIGHTS, dtype), fin.size)))
                if one_b:
                    for w in PRELU_WEIGHTS:
                        cases.append((f"w={w}", x, np.array([w], dtype)))
                else:
                    cases.append(("w=all", x, np.resize(np.array(PRELU_WEIGHTS, dtype), x.size)))
            else:
                gk = TABLE.GATED_KERNELS[[k.name for k in TABLE.GATED_KERNELS].index(
                    name.rsplit("_", 1)[0])]
                act = TABLE.ACTIVATIONS_BY_NAME.get(gk.f)
                gate = cpu_probe.sweep(dtype, act.kinks_at({}) if act else (0.0,))
                cases = [("a=specials", _specials(dtype), gate),
                         ("a=normal", np.random.default_rng(si).standard_normal(gate.size)
                          .astype(dtype) * dtype(3), gate)]
            for k, (label, a_or_x, b) in enumerate(cases):
                n = b.size if not one_b else a_or_x.size
                a = np.resize(a_or_x, n).astype(dtype)
                g = np.resize(_specials(dtype, (1.5, -0.75, 3.0e5, -1e-20)), n) if has_g else None
                if label in ("moderate", "finite") and has_g:
                    g = np.resize(np.array([1.5, -0.75, 0.0, -0.0, 1.0, -1e-20, 2.0], dtype), n)
                if k % 2:                                    # other pairings of g and a
                    g = None if g is None else g[::-1].copy()
                acc = _initial_acc(acc_kind, n, k)
                out.append(SegmentJob(si, dtype, (g, a, b), acc, label))
                if k == 0:                                   # the short lengths
                    for i, m in enumerate(SHORT):
                        o = (37 * i) % max(1, n - m)
                        bb = b if one_b else b[o:o + m]
                        out.append(SegmentJob(si, dtype, (None if g is None else g[o:o + m],
                                                          a[o:o + m], bb),
                                              _initial_acc(acc_kind, m, i), f"n={m}"))
    return out


def _initial_acc(kind, n, k):
    """An accumulator to add to: none, one value or n, starting at 0 or elsewhere."""
    if not kind:
        return None
    start = (0.0, 1.25, -0.0, -3.0e10)
    return np.array([start[k % 4]]) if kind == 1 else np.resize(np.array(start[k % 2:]), n)


def native_results(job_list, level):
    """The same jobs through fastact's compiled kernels of a level (the segment loops
    through fastact._runner.segments, one segment of the whole job)."""
    from fastact import _backend
    previous = _backend.set_simd_level(level)
    try:
        results = []
        for job in job_list:
            if isinstance(job, SegmentJob):
                results.append(_native_segment(_backend._runner, job))
                continue
            kernel, entry, dtype, params, inputs, _ = job
            outs = tuple(np.empty(inputs[0].size, dtype)
                         for _ in TABLE.ENTRY_CODE[TABLE.ENTRIES[entry]][1])
            _backend.COMPILED.launch(kernel, entry, tuple(np.ascontiguousarray(a) for a in inputs),
                                     outs, params)
            results.append(list(outs))
        return results
    finally:
        _backend.set_simd_level(previous)


def _native_segment(runner, job):
    """A SegmentJob through fastact._runner.segments: one row of n elements in one block,
    so that the segment function is called once on the whole arrays, as the driver does."""
    name = TABLE.SEGMENTS[job.seg]
    _, nout, one_b, acc_kind = segment_io(name)
    n, isz = _n(job), np.dtype(job.dtype).itemsize

    def slot(a, col=isz):
        return None if a is None else (np.ascontiguousarray(a, a.dtype), 0, col, 0, 0)
    g, a, b = job.inputs
    outs = [np.empty(n, job.dtype) for _ in range(nout)]
    acc = None if job.acc is None else np.array(job.acc, np.float64)
    o3 = outs[2] if nout == 3 else acc
    slots = (slot(g), slot(a), slot(b, 0 if one_b else isz), slot(outs[0]),
             slot(outs[1] if nout > 1 else None),
             slot(o3, 0 if acc_kind == 1 else o3.itemsize) if o3 is not None else None)
    f = ("leaky_relu" if name.startswith("prelu_") else
         next(k.f for k in TABLE.GATED_KERNELS if name.rsplit("_", 1)[0] == k.name))
    runner.segments(job.seg, int(job.dtype == np.float64), TABLE.KERNEL_INDEX[f], slots, n,
                    n, n)
    return outs + ([acc] if acc is not None else [])


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
        if len(g) != len(e) or not all(same_bits(a, b) for a, b in zip(g, e)):
            if isinstance(job, SegmentJob):
                bad.append(f"{TABLE.SEGMENTS[job.seg]}.{np.dtype(job.dtype).name}"
                           f"[{job.label}]")
                continue
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


# ---- the segment loops' vectorization (fa_gated.h) ----
# Their loops are macro-expanded from fa_gated_impl.h, so that a compiler reports every
# one of them at the line of its macro invocation. The check below preprocesses a file
# that takes the address of every segment function, puts each segment function and each
# `for` of its expansion on a line of its own, and compiles that: every report then names
# one loop of one function. Where a loop is duplicated (unswitched, an epilogue) every
# copy must vectorize: a report that a loop did not vectorize is a miss, even beside one
# that it did.
#
# prelu_s_*w (FA_PRELU_SUM_s) sum eight interleaved partial sums: the nest over i (eight
# at a time) and j (the eight lanes) must vectorize, by the loop vectorizer (GCC, over i
# with the eight lanes in vectors) or by the SLP vectorizer on the unrolled lanes (clang,
# whose loop vectorizer does not reorder the floating-point sums); the tail loop of the
# last n % 8 elements (fewer than eight iterations) need not.
SUM_NEST = re.compile(r"for \(i = 0; i < n8; i \+= 8\)$")
SUM_TAIL = re.compile(r"for \(i = n8; i < n; i\+\+\)")
_HEADER_ONLY = re.compile(r"for\s*\((?:[^()]|\([^()]*\))*\)$")


def segment_functions():
    """The C names of every segment loop, SEGMENTS x dtype."""
    return [f"fa_{name}_seg_{s}" for name in TABLE.SEGMENTS for _, _, s in TYPES]


def _split_segments(text):
    """The preprocessed text with every segment function (wrapper and body) and every
    `for` of theirs on a line of its own."""
    out = []
    for line in text.splitlines():
        if re.search(r"\bstatic void fa_\w+_seg_f(?:32|64)\(", line):
            out += [part.rstrip() for part in re.split(r"(?=\bfor\s*\()|(?=\bstatic\b)", line)
                    if part.strip()]
        else:
            out.append(line)
    return out


def _segment_report(text, clang):
    """[(line, kind)] of the compiler's vectorization reports, kind: 'vec' (a loop
    vectorized), 'miss' (a loop not), 'slp' (straight-line code vectorized), 'alias'
    (a loop versioned for a run-time alias check)."""
    found = []
    if clang:
        for m in re.finditer(r"seg\.i:(\d+):\d+: remark: (.*?) \[-R(pass|pass-missed)="
                             r"([\w-]+)\]", text):
            line, msg, kind, pass_ = int(m.group(1)), m.group(2), m.group(3), m.group(4)
            if pass_ == "slp-vectorizer" and kind == "pass":
                found.append((line, "slp"))
            elif pass_ == "loop-vectorize":
                found.append((line, "vec" if kind == "pass" else "miss"))
        return found
    for m in re.finditer(r"seg\.i:(\d+):\d+: (optimized|missed): +(.*)", text):
        line, kind, msg = int(m.group(1)), m.group(2), m.group(3)
        if kind == "optimized" and msg.startswith("loop vectorized"):
            found.append((line, "vec"))
        elif kind == "optimized" and msg.startswith("basic block part vectorized"):
            found.append((line, "slp"))
        elif kind == "optimized" and "versioned for vectorization because of possible " \
                                     "aliasing" in msg:
            found.append((line, "alias"))
        elif kind == "missed" and msg.startswith("couldn't vectorize loop"):
            found.append((line, "miss"))
    return found


def segment_vectorization(command, clang=False):
    """{segment function: [(loop, status, ok)]} of the segment loops compiled by command
    (the compiler and every flag, without -c/-o); status: 'vectorized', 'vectorized
    (SLP)', 'vectorized (alias check)', 'NOT vectorized', or the tail's 'tail: ...'.
    RuntimeError if the loops are not the ones this check knows."""
    functions = segment_functions()
    with tempfile.TemporaryDirectory() as tmp:
        src, pre = os.path.join(tmp, "seg.c"), os.path.join(tmp, "seg.i")
        with open(src, "w") as f:
            f.write('#include "fa_gated.h"\n/* every segment loop, as the kernel modules\' '
                    'segment tables take them */\nconst fa_seg_t fa_segment_check[] = {\n    '
                    + ",\n    ".join(functions) + "\n};\n")
        text = subprocess.run(command + ["-E", "-P", src], check=True, capture_output=True,
                              text=True).stdout
        lines = _split_segments(text)
        with open(pre, "w") as f:
            f.write("\n".join(lines) + "\n")
        obj = os.path.join(tmp, "seg.o")
        if clang:
            r = subprocess.run(command + ["-c", pre, "-o", obj,
                                          "-Rpass=loop-vectorize|slp-vectorizer",
                                          "-Rpass-missed=loop-vectorize"],
                               check=True, capture_output=True, text=True)
            report = r.stderr
        else:
            path = os.path.join(tmp, "vec.txt")
            # -fno-ipa-icf: identical functions keep their loops (and reports) each
            subprocess.run(command + ["-c", pre, "-o", obj, "-fno-ipa-icf",
                                      f"-fopt-info-vec-optimized-missed={path}"],
                           check=True, capture_output=True, text=True)
            report = open(path).read()
    reports = {}
    for line, kind in _segment_report(report, clang):
        reports.setdefault(line, set()).add(kind)
    # each segment function's lines: from its wrapper's line to the next one's
    starts = [(i, m.group(1)) for i, line in enumerate(lines, 1)
              if (m := re.match(r"static void (fa_\w+_seg_f(?:32|64))\(", line))]
    if sorted(name for _, name in starts) != sorted(functions):
        raise RuntimeError("the preprocessed segment file does not define each segment "
                           "function once")
    result = {}
    for k, (first, name) in enumerate(starts):
        last = starts[k + 1][0] if k + 1 < len(starts) else len(lines) + 1
        units = []                      # [[line, ...]]: a loop, or a nest of loops
        for i in range(first, last):
            text_i = lines[i - 1].strip()
            if not re.match(r"for\s*\(", text_i):
                continue
            if units and _HEADER_ONLY.match(lines[units[-1][-1] - 1].strip()) \
                    and units[-1][-1] == i - 1:
                units[-1].append(i)     # the body of the loop above: one nest
            else:
                units.append([i])
        loops = []
        for unit in units:
            header = lines[unit[0] - 1].strip()
            kinds = set().union(*(reports.get(i, set()) for i in unit))
            vec = "vec" in kinds and "miss" not in kinds
            if SUM_TAIL.match(header):
                loops.append((header[:40], "tail: " + ("vectorized" if "vec" in kinds
                                                              else "not vectorized"), True))
                continue
            slp = SUM_NEST.match(header) and "slp" in kinds
            status = ("NOT vectorized" if not (vec or slp) else
                      "vectorized (alias check)" if vec and "alias" in kinds else
                      "vectorized" if vec else "vectorized (SLP)")
            loops.append((" / ".join(lines[i - 1].strip()[:40] for i in unit), status,
                          bool(vec or slp)))
        nests = sum(bool(SUM_NEST.match(lines[u[0] - 1].strip())) for u in units)
        tails = sum(bool(SUM_TAIL.match(lines[u[0] - 1].strip())) for u in units)
        wsum = name.startswith("fa_prelu_s_") and name.split("_seg_")[0].endswith("w")
        if not units or (nests, tails) != ((1, 1) if wsum else (0, 0)):
            raise RuntimeError(f"{name}: {len(units)} loops, {nests} eight-lane sums, {tails} "
                               f"tails: not the segment loops tools/kernel_driver.py knows "
                               f"(FA_PRELU_SUM_s changed? update SUM_NEST/SUM_TAIL)")
        result[name] = loops
    return result


def segment_misses(result):
    """The segment functions with a loop that did not vectorize, as 'name (loop)'."""
    return [f"{name} ({loop})" for name, loops in result.items()
            for loop, _, ok in loops if not ok]


def segment_summary(result):
    """One line: segment functions and loops, misses, the tails, alias checks."""
    loops = [(name, l) for name, ls in result.items() for l in ls]
    tails = sorted({st for _, (loop, st, _) in loops if st.startswith("tail")})
    alias = [n[3:] for n, (loop, st, _) in loops if "alias" in st]
    missed = segment_misses(result)
    return (f"{len(result)} segment functions, {len(loops)} loops: "
            + ("every loop vectorized" if not missed else f"NOT vectorized: {', '.join(missed)}")
            + (f"; prelu tails {' / '.join(t[6:] for t in tails)}" if tails else "")
            + (f"; run-time alias checks in {', '.join(alias)}" if alias else ""))


def segments_vectorized(target):
    """segment_vectorization() of the segment loops compiled for a driver target."""
    return segment_vectorization(compile_flags(target, openmp=True))


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
        segments = segments_vectorized(target)
        print(f"{target}: {segment_summary(segments)}")
        novec = novec + segment_misses(segments)
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
