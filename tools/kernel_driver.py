"""fastact's kernels as a plain C program, for targets the Python build cannot run here.

`render_kernels()` writes, per dtype of the kernel table (fastact._activations.C_TYPES:
float32, float64, and float16 and bfloat16 stored as 16 bits and computed in float), a C
file of every kernel x entry point loop, generated from the activation table exactly as
the Cython template generates the loops of each SIMD level (the same statements, the
same constant-parameter loops, a serial loop and an OpenMP one) and a table of them;
`render()` the main file, whose `main` reads jobs (kernel, entry, dtype, parameters,
inputs) from a file and writes the results. `build()` compiles the files side by side
with the project's flags (fastact/_build_flags.py) for a target: `native` (this x86-64
CPU at AVX2+FMA, which checks the driver itself against the Python build), `neon`
(aarch64) or `sve` (aarch64 + SVE), statically linked and run under `qemu-aarch64` for
the foreign ones. The driver also holds every segment loop of fa_gated.h (the gated
units and prelu, the header's own functions: render_segments) and the softmax family's
table FA_SMX_OPS of fa_softmax.h (render_softmax), each dtype's. `compare()` runs every
case of tests/cases.py on tests/cpu_probe.py's sweep (float16 and bfloat16: every entry
point on a sweep of their bit patterns, and HALF_ALL's forward and backward on all 65536
of them: half_jobs), every segment loop on the sweep, special values and short lengths
(segment_jobs), and the softmax family's rows (whole, and block by block as the runner's
threads take a long row) and tiles of columns (softmax_jobs) through the driver and
through fastact's compiled kernels at an FMA level (the segments through
fastact._runner.segments, the softmax family through fastact._runner.softmax), and lists
the results whose bits differ (any NaN equals any NaN; the rows and columns the softmax
kernels leave to the caller must be the same ones, their outputs are not compared). The
driver reads and writes a 16-bit dtype's arrays as their bits (np.uint16): it needs no
ml_dtypes; fastact's side makes bfloat16 arrays of them with ml_dtypes.
`segment_vectorization()` checks that every loop of every segment function vectorizes,
`softmax_vectorization()` every loop of the softmax family in each specialization (both
also used by tools/check_vectorization.py).

    python tools/kernel_driver.py --target neon sve     # cross-compile, emulate, compare
    python tools/kernel_driver.py --target sve --vl 16 32 64
    python tools/kernel_driver.py --count sigmoid gelu   # instructions per element

Needs gcc-aarch64-linux-gnu and qemu-user (Debian packages) for neon/sve.
"""
import argparse
import functools
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
# The kernel table's dtypes, in its order (fastact._activations.C_TYPES): (index, the C
# type of the math and the parameters, the functions' suffix, the C type of the arrays'
# elements). A job's dtype is its index; the driver reads and writes the arrays of a
# 16-bit dtype as their bit patterns (np.uint16), so that the driver side needs no
# ml_dtypes (fastact's side makes bfloat16 arrays of them with ml_dtypes).
TYPES = TABLE.C_TYPES
SUFFIXES = tuple(s for _, _, s, _ in TYPES)
HALF = tuple(i for i, t, _, st in TYPES if st != t)          # stored in 16 bits


def numpy_name(dt):
    """The NumPy name of a dtype (index): f32 float32, f64 float64, f16 float16, bf16
    bfloat16."""
    return SUFFIXES[dt].replace("f", "float")


def itemsize(dt):
    """The bytes of one element of a dtype (index), from its suffix's bits."""
    return int(re.sub(r"\D", "", SUFFIXES[dt])) // 8


def bits_dtype(dt):
    """The NumPy dtype the driver's arrays of dtype dt are held in: the float itself
    (stored as computed), or the unsigned integer of its bits (16-bit)."""
    return np.dtype(numpy_name(dt) if dt not in HALF else f"uint{8 * itemsize(dt)}")


def numpy_dtype(dt):
    """The NumPy dtype fastact computes for dtype dt (bfloat16: ml_dtypes')."""
    try:
        return np.dtype(numpy_name(dt))
    except TypeError:
        import ml_dtypes
        return np.dtype(getattr(ml_dtypes, numpy_name(dt)))


def dtype_index(dtype):
    """The index of a dtype on the table's axis: an index, a suffix, or a NumPy dtype or
    type (float32, float64, float16, ml_dtypes.bfloat16)."""
    if isinstance(dtype, (int, np.integer)):
        return int(dtype)
    if isinstance(dtype, str) and dtype in SUFFIXES:
        return SUFFIXES.index(dtype)
    return [numpy_name(i) for i in range(len(TYPES))].index(np.dtype(dtype).name)


def to_bits(a, dt):
    """a as the driver holds an array of dtype dt (bits_dtype; contiguous): float32 and
    float64 values cast, 16-bit arrays (their bits, or float16/bfloat16 values) viewed."""
    a = np.ascontiguousarray(a)
    if dt in HALF:
        if a.dtype.itemsize != itemsize(dt):
            raise TypeError(f"a {numpy_name(dt)} array as {a.dtype}: pass its bits")
        return a.view(bits_dtype(dt))
    return np.ascontiguousarray(a, bits_dtype(dt))


def to_numpy(a, dt):
    """The values of an array of dtype dt held as bits (to_bits) as a NumPy array of
    fastact's dtype (numpy_dtype; bfloat16 needs ml_dtypes)."""
    return to_bits(a, dt).view(numpy_dtype(dt))


def widen(a, dt):
    """The values of an array of dtype dt (to_bits' form) in float32 or float64, without
    ml_dtypes: exact (a 16-bit type widens exactly to float32)."""
    b = to_bits(a, dt)
    if dt not in HALF:
        return b
    if numpy_name(dt) == "float16":
        with np.errstate(invalid="ignore"):         # (signalling NaNs)
            return b.view(np.float16).astype(np.float32)
    return (b.astype(np.uint32) << (32 - 8 * itemsize(dt))).view(np.float32)  # bfloat16


def half_values(dt, values):
    """float64 values rounded to a 16-bit dtype dt (to nearest even, as the kernels round),
    as its bits; without ml_dtypes."""
    v = np.asarray(values, np.float64)
    if numpy_name(dt) == "float16":
        with np.errstate(over="ignore"):
            return v.astype(np.float16).view(np.uint16)
    # bfloat16: through float32, then its top half rounded to even (inputs for the jobs:
    # a value off by the double rounding is as good an input)
    u = v.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = ((u >> 16) | 0x40).astype(np.uint16)
    return np.where(np.isnan(v), nan, rounded)
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


KERNEL_T = ("typedef void (*kernel_t)(const char *a, const char *b, char *o1, char *o2, "
            "long n, const double *p, int nthreads);")


def render_kernels(dtype):
    """(C source, [(first line, function name)]) of the driver's kernel loops of one dtype
    (a suffix of TYPES): every kernel x entry point, and their table by (kernel, entry),
    fastact_driver_<suffix>.c, a file of its own so that the dtypes compile side by side.
    The 16-bit loops are the template's element by element ones (fa_activations.h's _f16
    and _bf16 entry points), those of the x86-64 baseline and aarch64; the x86 SIMD levels
    run them in blocks through float buffers, the same bits (their loops are
    tools/check_vectorization.py's)."""
    ti, t, s, st = TYPES[SUFFIXES.index(dtype)]
    lines = ['#include <stddef.h>', '#include "fa_activations.h"']
    lines += [f"#define {k} {v}" for k, v in TABLE.C_MACROS.items()]
    lines += ['#include "fa_table.h"', '', KERNEL_T, '']
    funcs = []
    names = []
    for ki, k in enumerate(TABLE.KERNELS):
        for ei, e in enumerate(TABLE.ENTRIES):
            if not TABLE.has_entry(k, e):
                continue
            ins, outs, _ = TABLE.ENTRY_CODE[e]
            fname = f"{k.name}_{e}_{s}"
            names.append(f"[{ki} * FA_NENTRIES + {ei}] = {fname}")
            loops = []
            if k.common:
                loops.append((f"{k.common[0]} == {k.common[1]!r}",
                              TABLE.entry_statement(k, e, s, constant=True)))
            loops.append((None, TABLE.entry_statement(k, e, s)))
            # the OpenMP loop in a function of its own, so that the vectorizer's report
            # of each loop names its function (identical loops in one function get one
            # report)
            for suffix, pragma in (("_omp", True), ("", False)):
                funcs.append((len(lines) + 1, fname + suffix))
                lines.append(f"static void {fname}{suffix}(const char *in1, const char *in2, "
                             f"char *out1, char *out2, long n, const double *p, "
                             f"int nthreads) {{")
                lines += [f"    const {st} *{v} = (const {st} *){ptr};"
                          for v, ptr in zip(ins, ("in1", "in2"))]
                lines += [f"    {st} *{v} = ({st} *){ptr};"
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
                    lines.append(f"{ind}for (i = 0; i < n; i++) {{ {stmt}; }}")
                    if cond:
                        lines += ["        return;", "    }"]
                lines += ["}", ""]
    lines += [f"const kernel_t DRIVER_KERNELS_{s}[FA_NKERNELS * FA_NENTRIES] = "
              f"{{{', '.join(names)}}};"]
    return "\n".join(lines) + "\n", funcs


def render_segments():
    """C source of the driver's segment loops: fa_gated.h's own functions (as the kernel
    modules take them), in a table at FA_NTYPES * index + dtype (a file of its own)."""
    lines = ['#include "fa_activations.h"']
    lines += [f"#define {k} {v}" for k, v in TABLE.C_MACROS.items()]
    lines += ['#include "fa_table.h"', '#include "fa_gated.h"',
              f"const fa_seg_t DRIVER_SEGS[FA_NTYPES * {len(TABLE.SEGMENTS)}] = {{"
              + ", ".join(segment_functions()) + "};"]
    return "\n".join(lines) + "\n"


def render():
    """C source of the driver's main file: the kernel table (FA_SLOT) of the dtypes'
    tables (render_kernels), the segment loops' (render_segments) with what each reads
    and writes, and main (the softmax jobs: render_softmax)."""
    lines = ['#include <stdio.h>', '#include <stdlib.h>', '#include <stdint.h>',
             '#include <stddef.h>', '#include "fa_activations.h"']
    lines += [f"#define {k} {v}" for k, v in TABLE.C_MACROS.items()]
    lines += ['#include "fa_table.h"', '', KERNEL_T]
    lines += [f"extern const kernel_t DRIVER_KERNELS_{s}[FA_NKERNELS * FA_NENTRIES];"
              for s in SUFFIXES]
    lines += ["static kernel_t TABLE[FA_TABLE_SIZE];",
              "static void fill_table(void) {",
              "    int k, e;",
              "    for (k = 0; k < FA_NKERNELS; k++)",
              "        for (e = 0; e < FA_NENTRIES; e++) {"]
    lines += [f"            TABLE[FA_SLOT(k, e, {ti})] = DRIVER_KERNELS_{s}[k * FA_NENTRIES + e];"
              for ti, _, s, _ in TYPES]
    lines += ["        }", "}"]
    nin = [len(TABLE.ENTRY_CODE[e][0]) for e in TABLE.ENTRIES]
    nout = [len(TABLE.ENTRY_CODE[e][1]) for e in TABLE.ENTRIES]
    lines += [f"static const int NIN[] = {{{', '.join(map(str, nin))}}};",
              f"static const int NOUT[] = {{{', '.join(map(str, nout))}}};", ""]
    # the segment loops, at FA_NTYPES * index + dtype, with what each reads and writes
    io = [segment_io(name) for name in TABLE.SEGMENTS]
    lines += ["typedef void (*fa_seg_t)(const char *g, const char *a, const char *b, "
              "char *o1, char *o2, char *o3, ptrdiff_t n);",
              f"#define NSEG {len(TABLE.SEGMENTS)}",
              "extern const fa_seg_t DRIVER_SEGS[FA_NTYPES * NSEG];",
              "#define SEGS DRIVER_SEGS"]
    lines += [f"static const int {array}[NSEG] = {{{', '.join(str(v[k]) for v in io)}}};"
              for k, array in enumerate(("SEG_G", "SEG_NOUT", "SEG_ONE_B", "SEG_ACC"))]
    # the softmax jobs run in a file of their own (render_softmax), compiled beside
    lines += ["", header_c(), "int run_softmax(const struct header *h, FILE *in, FILE *out);",
              MAIN]
    return "\n".join(lines) + "\n"


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
# A softmax job has entry -2, kernel = 4 * log + op (fa_softmax_api.h's FA_SMX_FWD...),
# p = (sign, how, outer, inner, w) and n the length of the reduction: x (and g but for
# the forward) of outer * n * inner elements, (outer, n, inner) in memory as
# fastact._runner.softmax takes them. how: 0 all rows by ops.rows, 1 each row in blocks
# of FA_SMX_BLOCK as the runner's threads do it (ops.max per block, ops.sums per block
# added in order, ops.consts, ops.write per block), 2 tiles of w columns by ops.cols.
# Results: o1 (and o2 for fb), then the flags (uint8) of the rows (outer) or columns
# (outer * inner) that ops left to the caller (a NaN, a max of +-inf).
SOFTMAX_JOB = -2
SMX_OPS = ("fwd", "bwdy", "bwdx", "fb")            # fa_softmax_api.h's FA_SMX_FWD, ...
HEADER_C = r"""struct header { int32_t kernel, entry, dtype, repeat; double p[5]; int64_t n; };

/* the bytes of an element of each dtype (the table's order: fastact._activations.C_TYPES) */
static const size_t DT_SIZE[] = {%s};
#define NTYPES_ ((int)(sizeof DT_SIZE / sizeof DT_SIZE[0]))
typedef char fa_driver_check_ntypes[NTYPES_ == FA_NTYPES ? 1 : -1];

static char *read_array(FILE *in, size_t size) {
    char *p = malloc(size ? size : 1);
    if (p && fread(p, 1, size, in) != size) { free(p); p = NULL; }
    return p;
}
"""


def header_c():
    """HEADER_C with the element sizes of TYPES."""
    return HEADER_C % ", ".join(f"sizeof({st})" for _, _, _, st in TYPES)


SOFTMAX_MAIN = r"""
/* one softmax job (entry -2): 0, or 1 on a short read or a bad job */
int run_softmax(const struct header *h, FILE *in, FILE *out) {
    const fa_smx_ops *ops = &FA_SMX_OPS[h->dtype];
    int lg = h->kernel / 4, op = h->kernel % 4, how = (int)h->p[1], ok;
    double sign = h->p[0];
    ptrdiff_t outer = (ptrdiff_t)h->p[2], inner = (ptrdiff_t)h->p[3], w = (ptrdiff_t)h->p[4];
    ptrdiff_t n = (ptrdiff_t)h->n, t = (ptrdiff_t)DT_SIZE[h->dtype], total = outer * n * inner;
    ptrdiff_t r, b, j0, nf = how == 2 ? outer * inner : outer;
    char *x, *g = NULL, *o1, *o2 = NULL;
    unsigned char *flags = calloc(nf ? (size_t)nf : 1, 1);
    x = read_array(in, (size_t)(total * t));
    if (op != FA_SMX_FWD) g = read_array(in, (size_t)(total * t));
    o1 = calloc(total ? (size_t)total : 1, (size_t)t);
    if (op == FA_SMX_FB) o2 = calloc(total ? (size_t)total : 1, (size_t)t);
    ok = x && o1 && flags && (op == FA_SMX_FWD || g) && (op != FA_SMX_FB || o2)
         && (how == 2 ? w >= 1 && w <= FA_SMX_TILE : inner == 1);
    if (ok && how == 0) ops->rows(lg, op, sign, x, g, o1, o2, n, outer, flags);
    for (r = 0; ok && r < outer && how == 1; r++) {
        ptrdiff_t off = r * n * t;
        const char *gr = g ? g + off : NULL;
        char *p2 = o2 ? o2 + off : NULL;
        {   /* fastact._runner's long_row, one block after the other */
            fa_smx_stats total_st = {0, 0, 0, 0, 0, 0}, st;
            fa_smx_consts c;
            double m = 0, mb;
            if (op != FA_SMX_BWDY) {
                for (b = 0; b < n; b += FA_SMX_BLOCK) {
                    mb = ops->max(x + off + b * t, n - b < FA_SMX_BLOCK ? n - b : FA_SMX_BLOCK,
                                  sign);
                    m = b == 0 ? mb : (mb > m || mb != mb) ? mb : m;
                }
                if (!(m - m == 0)) { flags[r] = 1; continue; }
            }
            total_st.m = m;
            for (b = 0; b < n; b += FA_SMX_BLOCK) {
                st.m = m;
                ops->sums(lg, op, sign, x + off + b * t, gr ? gr + b * t : NULL, o1 + off + b * t,
                          n - b < FA_SMX_BLOCK ? n - b : FA_SMX_BLOCK, &st);
                fa_smx_add(&total_st, &st);
            }
            ops->consts(lg, op, &total_st, &c);
            for (b = 0; b < n; b += FA_SMX_BLOCK)
                ops->write(lg, op, sign, x + off + b * t, gr ? gr + b * t : NULL, o1 + off + b * t,
                           p2 ? p2 + b * t : NULL, n - b < FA_SMX_BLOCK ? n - b : FA_SMX_BLOCK, &c);
        }
    }
    for (r = 0; ok && r < outer && how == 2; r++)
        for (j0 = 0; j0 < inner; j0 += w) {
            ptrdiff_t off = (r * n * inner + j0) * t;
            ops->cols(lg, op, sign, x + off, g ? g + off : NULL, o1 + off, o2 ? o2 + off : NULL,
                      n, inner - j0 < w ? inner - j0 : w, inner, flags + r * inner + j0);
        }
    if (ok) {
        fwrite(o1, (size_t)t, (size_t)total, out);
        if (o2) fwrite(o2, (size_t)t, (size_t)total, out);
        fwrite(flags, 1, (size_t)nf, out);
    }
    free(x); free(g); free(o1); free(o2); free(flags);
    return !ok;
}
"""
MAIN = r"""
/* one segment job (entry -1): 0, or 1 on a short read */
static int run_segment(const struct header *h, FILE *in, FILE *out) {
    int s = h->kernel, j, r;
    size_t t = DT_SIZE[h->dtype], n = (size_t)h->n;
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
            SEGS[FA_NTYPES * s + h->dtype](g, a, b, o[0], o[1], o[2], (ptrdiff_t)n);
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
    fill_table();
    while (fread(&h, sizeof h, 1, in) == 1) {
        size_t size;
        char *buf[4] = {0, 0, 0, 0};
        int j, r;
        kernel_t f;
        if (h.dtype < 0 || h.dtype >= FA_NTYPES) { fprintf(stderr, "no such dtype\n"); return 1; }
        size = (size_t)h.n * DT_SIZE[h.dtype];
        if (h.entry == -2) {
            if (run_softmax(&h, in, out)) { fprintf(stderr, "bad softmax job\n"); return 1; }
            continue;
        }
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


def render_softmax():
    """C source of the driver's softmax jobs: fa_softmax.h's table FA_SMX_OPS, as the
    kernel modules export it to fastact._runner, and run_softmax (a file of its own, so
    that the two compile side by side and the loop check of render's kernels does not
    compile the softmax family again)."""
    lines = ['#include <stdio.h>', '#include <stdlib.h>', '#include <stdint.h>',
             '#include "fa_activations.h"']
    lines += [f"#define {k} {v}" for k, v in TABLE.C_MACROS.items()]
    lines += ['#include "fa_table.h"', '#include "fa_softmax.h"', "", header_c(), SOFTMAX_MAIN]
    return "\n".join(lines) + "\n"


def write_source(directory):
    """Write the driver's C files; {path: its kernel functions, [(first line, name)]
    (render_kernels; none in the other files)}."""
    sources = {f"fastact_driver_{s}.c": render_kernels(s) for s in SUFFIXES}
    sources.update({"fastact_driver_seg.c": (render_segments(), []),
                    "fastact_driver_softmax.c": (render_softmax(), []),
                    "fastact_driver.c": (render(), [])})
    files = {}
    for name, (source, funcs) in sources.items():
        files[os.path.join(directory, name)] = funcs
        with open(os.path.join(directory, name), "w") as f:
            f.write(source)
    return files


def _compile_all(commands):
    """Run compile commands side by side; CalledProcessError (with the output) if one
    fails."""
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for c in commands]
    for proc in procs:
        out = proc.communicate()[0]
        if proc.returncode:
            raise subprocess.CalledProcessError(proc.returncode, proc.args, out)


def compile_flags(target, openmp=False):
    cc, (machine, level), _ = TARGETS[target]
    return ([cc] + FLAGS.compile_flags(level, machine) + ["-I", SRC]
            + (["-fopenmp"] if openmp else []))


def build(target, directory):
    """Compile the driver for a target (no OpenMP: the serial loops), its files side by
    side; its path."""
    exe = os.path.join(directory, f"driver_{target}")
    objs = [c[:-2] + f"_{target}.o" for c in write_source(directory)]
    _compile_all([compile_flags(target) + ["-c", c[:-len(f"_{target}.o")] + ".c", "-o", c]
                  for c in objs])
    cmd = compile_flags(target) + objs + ["-o", exe, "-lm"] + \
        (["-static"] if target != "native" else [])
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return exe


class SegmentJob(typing.NamedTuple):
    """A segment loop's job: SEGMENTS[seg] for dtype (an index of TYPES, or what
    dtype_index takes) on inputs (g or None, a, b: values, or a 16-bit dtype's bits) with
    the initial accumulator acc (float64; None where the segment has none); label: what
    the case is (for the report)."""
    seg: int
    dtype: typing.Any
    inputs: tuple
    acc: typing.Optional[np.ndarray]
    label: str = ""
    repeat: int = 1


class SoftmaxJob(typing.NamedTuple):
    """A softmax job: SOFTMAX_OPS[op] of log_softmax (log) or softmax of sign * x along
    axis 1 of x, (outer, n, inner) (x is y for bwdy; g: grad_output, None for fwd),
    computed `how`: 'row' (ops.rows), 'blocks' (each pass over the row's blocks, as
    fastact._runner's threads do it) or 'cols' (ops.cols on tiles of w columns). dtype:
    an index of TYPES (x and g a 16-bit dtype's bits), or None: x's dtype."""
    log: int
    op: int
    sign: float
    how: str
    x: np.ndarray
    g: typing.Optional[np.ndarray]
    w: int = 0
    label: str = ""
    dtype: typing.Any = None


SOFTMAX_HOW = ("row", "blocks", "cols")


def job_dtype(job):
    """The dtype (index of TYPES) of a job."""
    if isinstance(job, SoftmaxJob):
        return dtype_index(job.x.dtype if job.dtype is None else job.dtype)
    return dtype_index(job.dtype if isinstance(job, SegmentJob) else job[2])


def _n(job):
    if isinstance(job, SoftmaxJob):
        return job.x.size
    return job.inputs[1].size if isinstance(job, SegmentJob) else job[4][0].size


def _write_job(f, job):
    dt = job_dtype(job)
    if isinstance(job, SoftmaxJob):
        outer, n, inner = job.x.shape
        f.write(HEADER.pack(4 * job.log + job.op, SOFTMAX_JOB, dt, 1, job.sign,
                            SOFTMAX_HOW.index(job.how), outer, inner, job.w, n))
        for a in (job.x, job.g):
            if a is not None:
                f.write(to_bits(a, dt).tobytes())
        return
    if isinstance(job, SegmentJob):
        f.write(HEADER.pack(job.seg, SEGMENT_JOB, dt, job.repeat,
                            *(0.0,) * TABLE.NPARAMS, _n(job)))
        for a in job.inputs:
            if a is not None:
                f.write(to_bits(a, dt).tobytes())
        if job.acc is not None:
            f.write(np.ascontiguousarray(job.acc, np.float64).tobytes())
        return
    kernel, entry, _, params, inputs, repeat = job
    p = tuple(params) + (0.0,) * (TABLE.NPARAMS - len(params))
    f.write(HEADER.pack(kernel, entry, dt, repeat, *p, inputs[0].size))
    for a in inputs:
        f.write(to_bits(a, dt).tobytes())


def _result_layout(job):
    """[(NumPy dtype, elements)] of a job's results, in the driver's order (arrays of a
    16-bit dtype as their bits)."""
    n, dt = _n(job), bits_dtype(job_dtype(job))
    if isinstance(job, SoftmaxJob):
        outer, _, inner = job.x.shape
        return [(dt, n)] * (2 if job.op == SMX_OPS.index("fb") else 1) + \
            [(np.uint8, outer * inner if job.how == "cols" else outer)]
    if isinstance(job, SegmentJob):
        _, nout, _, acc = segment_io(TABLE.SEGMENTS[job.seg])
        return [(dt, n)] * nout + ([(np.float64, job.acc.size)] if acc else [])
    return [(dt, n)] * len(TABLE.ENTRY_CODE[TABLE.ENTRIES[job[1]]][1])


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


def jobs(dtypes=None, half_all=True):
    """Every case of tests/cases.py x entry x dtype (float32, float64) on
    tests/cpu_probe.py's sweep, as (kernel, entry, dtype, params, inputs, repeat) with the
    kernel parameters the API would pass; then half_jobs(half_all), segment_jobs() and
    softmax_jobs(); those of dtypes (dtype_index's; None: all)."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import cpu_probe
    from cases import CASES, kinks

    want = {dtype_index(d) for d in (SUFFIXES if dtypes is None else dtypes)}
    out = []
    for dt in (i for i, *_ in TYPES if i not in HALF and i in want):
        dtype = bits_dtype(dt)
        for name, params in CASES:
            x = cpu_probe.sweep(dtype, kinks(name, params))
            g = np.resize(np.array([1.5, -0.75, 0.0, -0.0, 3.0e5], dtype), x.size)
            out += _entry_jobs(name, params, dt, x, g)
    if want & set(HALF):
        out += half_jobs(half_all)
    return [j for j in out + segment_jobs() + softmax_jobs() if job_dtype(j) in want]


def _entry_jobs(name, params, dt, x, g, entries=None):
    """The jobs of a case (activation name, params) for dtype dt on x (g: grad_output),
    every entry point of its kernel (or those of `entries`)."""
    import fastact._api as api
    act = TABLE.ACTIVATIONS_BY_NAME[name]
    kernel, kparams = api._PREPARE[name](*(params.get(p, d) for p, d in act.params))
    return [(kernel, ei, dt, kparams, (x,) if len(TABLE.ENTRY_CODE[e][0]) == 1 else (g, x), 1)
            for ei, e in enumerate(TABLE.ENTRIES)
            if TABLE.has_entry(TABLE.KERNELS[kernel], e) and (entries is None or e in entries)]


# ---- float16 and bfloat16 (inputs and results as their bits: to_bits) ----
# the activations whose forward and backward run on every one of the 65536 bit patterns of
# each 16-bit type (every other case: every entry point on half_sweep)
HALF_ALL = ("gelu", "silu", "sigmoid", "tanh", "elu", "softplus", "relu")
HALF_ALL_ENTRIES = ("fwd", "bwd")
# the segment loops that run on every bit pattern as the gate (gated) or x (prelu)
HALF_ALL_SEGMENTS = ("swiglu_fbg", "prelu_s_fbgw")
HALF_STRIDE = 257           # half_sweep: every 257th bit pattern (every binade, both
                            # signs, each time other mantissa bits)


def _cast(dt, values):
    """float64 values as the driver's array of dtype dt (a 16-bit type's bits)."""
    return half_values(dt, values) if dt in HALF else np.asarray(values, bits_dtype(dt))


def _half_limits(dt):
    """(smallest subnormal, smallest normal, largest finite) of a 16-bit dtype, as bits
    (from its infinity's: the exponent's bits all set, the mantissa's below them)."""
    inf = int(half_values(dt, [np.inf])[0])
    return 1, inf & -inf, inf - 1


def all_patterns(dt):
    """Every bit pattern of a 16-bit dtype, in order."""
    return np.arange(1 << (8 * itemsize(dt)), dtype=np.uint32).astype(bits_dtype(dt))


def half_sweep(dt, points=()):
    """A 16-bit dtype's inputs (bits): +-0, +-inf, NaN, the smallest subnormals, the
    normal edge, the largest finite, every HALF_STRIDE-th bit pattern, and each kink
    (rounded to the type) with its neighbours."""
    sub, tiny, big = _half_limits(dt)
    sign = 1 << (8 * itemsize(dt) - 1)
    edge = np.array([sub, 3 * sub, tiny - 1, tiny, tiny + 1, big - 1, big], np.int64)
    near = half_values(dt, points).astype(np.int64)
    near = np.concatenate([near, near - 1, near + 1]) % (2 * sign)
    bits = np.concatenate([half_values(dt, [0.0, np.inf, np.nan]).astype(np.int64), edge,
                           np.arange(0, sign, HALF_STRIDE)])
    return np.concatenate([bits, bits | sign, near]).astype(bits_dtype(dt))


def half_jobs(half_all=True):
    """The 16-bit entry points: HALF_ALL's forward and backward on every bit pattern of
    each 16-bit dtype (grad_output cycling through ordinary values, zeros, a huge and a
    tiny one; not if half_all is false), and every case of tests/cases.py x entry point
    on half_sweep."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from cases import CASES, kinks

    out = []
    for dt in HALF:
        gv = [1.5, -0.75, 0.0, -0.0, 3.0e4, 1e-3, -2.0]
        x = all_patterns(dt)
        for name in HALF_ALL if half_all else ():
            out += _entry_jobs(name, {}, dt, x, np.resize(_cast(dt, gv), x.size),
                               HALF_ALL_ENTRIES)
        for name, params in CASES:
            x = half_sweep(dt, kinks(name, params))
            out += _entry_jobs(name, params, dt, x, np.resize(_cast(dt, gv), x.size))
    return out


def _specials(dt, extra=()):
    """0, -0, +-inf, NaN, subnormal, tiny, huge and ordinary values of a dtype (index;
    a 16-bit one's bits)."""
    if dt in HALF:
        sub, tiny, big = _half_limits(dt)
        sign = 1 << (8 * itemsize(dt) - 1)
        return np.concatenate([
            _cast(dt, [1.0, -2.5, 0.0, -0.0, np.inf, -np.inf, np.nan]),
            np.array([sub, tiny | sign, big], bits_dtype(dt)),
            _cast(dt, [-widen(np.array([big], bits_dtype(dt)), dt)[0] / 3, 1e-30, 3e30, 0.5,
                       -7.0] + list(extra))])
    dtype = bits_dtype(dt)
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
    tests/cpu_probe.py's sweep (16-bit: half_sweep; and for HALF_ALL_SEGMENTS every bit
    pattern), a (gated) and grad_output over special values, prelu's weights of several
    signs and magnitudes (one per segment: each of PRELU_WEIGHTS; one per element: all of
    them, interleaved), accumulators starting at 0 and elsewhere; and every segment on
    short lengths (SHORT)."""
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import cpu_probe

    out = []
    for dt, *_ in TYPES:
        half = dt in HALF

        def sweep(points):
            return half_sweep(dt, points) if half else cpu_probe.sweep(bits_dtype(dt), points)
        for si, name in enumerate(TABLE.SEGMENTS):
            has_g, _, one_b, acc_kind = segment_io(name)
            if name.startswith("prelu_"):
                x = sweep((0.0,))
                # first, finite x and g, shuffled (x of moderate size, then of every
                # magnitude with the products within float64): the weight's gradient is
                # then a sum whose order shows, not inf or NaN
                with np.errstate(invalid="ignore"):         # (signalling NaNs)
                    x64 = widen(x, dt).astype(np.float64)
                rng = np.random.default_rng(si)
                cases = []
                for label, limit in (("moderate", 1e4), ("finite", 1e300)):
                    fin = rng.permutation(x[np.isfinite(x64) & (np.abs(x64) < limit)])
                    cases.append((label, fin, _cast(dt, [0.25]) if one_b else
                                  np.resize(_cast(dt, PRELU_WEIGHTS), fin.size)))
                if one_b:
                    for w in PRELU_WEIGHTS:
                        cases.append((f"w={w}", x, _cast(dt, [w])))
                else:
                    cases.append(("w=all", x, np.resize(_cast(dt, PRELU_WEIGHTS), x.size)))
                if half and name in HALF_ALL_SEGMENTS:
                    cases.append(("x=all", all_patterns(dt), _cast(dt, [0.25]) if one_b else
                                  np.resize(_cast(dt, PRELU_WEIGHTS), 1 << 16)))
            else:
                gk = TABLE.GATED_KERNELS[[k.name for k in TABLE.GATED_KERNELS].index(
                    name.rsplit("_", 1)[0])]
                act = TABLE.ACTIVATIONS_BY_NAME.get(gk.f)
                gate = sweep(act.kinks_at({}) if act else (0.0,))
                cases = [("a=specials", _specials(dt), gate),
                         ("a=normal", _cast(dt, np.random.default_rng(si).standard_normal(
                             gate.size).astype(np.float32 if half else bits_dtype(dt)) * 3),
                          gate)]
                if half and name in HALF_ALL_SEGMENTS:
                    cases.append(("gate=all", cases[1][1], all_patterns(dt)))
            for k, (label, a_or_x, b) in enumerate(cases):
                n = b.size if not one_b else a_or_x.size
                a = np.resize(a_or_x, n)
                g = np.resize(_specials(dt, (1.5, -0.75, 3.0e5, -1e-20)), n) if has_g else None
                if label in ("moderate", "finite") and has_g:
                    g = np.resize(_cast(dt, [1.5, -0.75, 0.0, -0.0, 1.0, -1e-20, 2.0]), n)
                if k % 2:                                    # other pairings of g and a
                    g = None if g is None else g[::-1].copy()
                acc = _initial_acc(acc_kind, n, k)
                out.append(SegmentJob(si, dt, (g, a, b), acc, label))
                if k == 0:                                   # the short lengths
                    for i, m in enumerate(SHORT):
                        o = (37 * i) % max(1, n - m)
                        bb = b if one_b else b[o:o + m]
                        out.append(SegmentJob(si, dt, (None if g is None else g[o:o + m],
                                                       a[o:o + m], bb),
                                              _initial_acc(acc_kind, m, i), f"n={m}"))
    return out


def smx_constant(name):
    """A number #defined in fa_softmax_api.h (FA_SMX_BLOCK, FA_SMX_LANES, FA_SMX_TILE)."""
    text = open(os.path.join(SRC, "fa_softmax_api.h")).read()
    return int(re.search(r"#define %s\s+(\d+)" % name, text).group(1))


# the lengths of the short rows: the tails of the 16 lanes, of every vector length
SMX_SHORT = (1, 2, 3, 15, 16, 17, 31, 33, 100, 1023)
# the column tiles: (outer, n, inner) in memory and the driver's tile width (the
# runner's is its own: a column's bits must not depend on the tile)
SMX_COLS = ((2, 37, 45, 16), (1, 300, 19, 19), (3, 1, 20, 7))


def _smx_data(dtype, shape, rng, op, log):
    """x (y for bwdy) of shape (rows, n): row 0 ordinary, 1 with -inf entries and a tie at
    the max, 2 of every magnitude (differences beyond 2^14, subnormals, +-0), 3 within a
    few ulps of each other, 4 with a NaN, 5 with +inf (n even) or all -inf (n odd); the
    rows after 5 ordinary with -inf entries. 4 and 5 are the rows the kernels leave to
    the caller (but from y, which has no max)."""
    rows, n = shape
    info = np.finfo(dtype)
    x = rng.standard_normal(shape) * 4
    if op == SMX_OPS.index("bwdy"):          # y: a softmax's (0..1), a log_softmax's (<= 0)
        x = -np.abs(x) if log else rng.uniform(0, 1, shape)
    x = x.astype(dtype)
    k = np.arange(n)
    if rows > 1:
        x[1, k % 3 == 1] = -np.inf
        x[1, n // 2] = x[1, np.argmax(x[1])]
    if rows > 2:
        mags = np.ldexp(rng.uniform(1, 2, n), rng.integers(info.minexp - 20, info.maxexp - 1, n))
        x[2] = (mags * rng.choice([-1.0, 1.0], n)).astype(dtype)
        x[2, ::7] = np.array([0.0, -0.0, info.smallest_subnormal, info.max],
                             dtype)[np.arange(len(x[2, ::7])) % 4]
    if rows > 3:
        x[3] = np.array(1000.0, dtype) + (k % 5).astype(dtype) * np.spacing(dtype(1000.0))
    if rows > 4:
        x[4, n // 3] = np.nan
    if rows > 5:
        if n % 2:
            x[5] = -np.inf
        else:
            x[5, n // 2] = np.inf
    if rows > 6:
        x[6:, k % 11 == 5] = -np.inf
    return x


def _smx_grad(dtype, shape, rng):
    """grad_output: ordinary values, zeros of both signs, tiny and large ones."""
    g = (rng.standard_normal(shape) * 2).astype(dtype)
    flat = g.reshape(-1)
    flat[::13] = np.array([0.0, -0.0, 1e-30, 3e5, -7.0], dtype)[np.arange(len(flat[::13])) % 5]
    return g


def _smx_half(dt, shape, rng, op, log):
    """_smx_data's rows for a 16-bit dtype, as its bits: float16's own, bfloat16's from
    float32's (the same range) rounded, row 3 then five neighbouring bit patterns."""
    f16 = numpy_name(dt) == "float16"
    x = _smx_data(np.float16 if f16 else np.float32, shape, rng, op, log)
    bits = x.view(np.uint16) if f16 else half_values(dt, x)
    if shape[0] > 3 and not f16:
        bits[3] = half_values(dt, [1000.0])[0] + np.arange(shape[1]) % 5
    return bits


def _smx_grad_half(dt, shape, rng):
    """_smx_grad's grad_output for a 16-bit dtype (bits), within its range."""
    g = rng.standard_normal(shape) * 2
    flat = g.reshape(-1)
    flat[::13] = np.array([0.0, -0.0, 1e-6, 300.0, -7.0])[np.arange(len(flat[::13])) % 5]
    return half_values(dt, g)


def softmax_jobs():
    """SoftmaxJobs of the family (fastact._activations.SOFTMAX_TABLE: softmax, log_softmax,
    softmin) x op x dtype: rows of every length in SMX_SHORT (_smx_data's rows: -inf
    entries, ties, every magnitude, and the rows left to the caller), each by ops.rows and
    in blocks as the runner's threads do it; tiles of columns (SMX_COLS) with special
    columns; and for each (log, op) (softmin is softmax's kernel) one row of two blocks of
    FA_SMX_BLOCK and 41 elements with -inf entries, in one dtype, by ops.rows or in
    blocks (each dtype gets both; the long rows are most of the emulated time); the same
    for float16 and bfloat16 (their bits: _smx_half) but for the long rows: one per op
    (log_softmax's for bwdx and fb), by ops.rows or in blocks, in float16 or bfloat16
    (each gets both). Rows of up to FA_SMX_SHORT elements (16-bit: FA_SMX_HSHORT, or
    FA_SMX_HODD but for a multiple of 16) are computed as the columns of a tile (but for
    the backward from y), whose sums are not the blocks': by ops.rows only (the runner
    splits only rows of two blocks or more)."""
    block, short = smx_constant("FA_SMX_BLOCK"), smx_constant("FA_SMX_SHORT")
    hshort, hodd = smx_constant("FA_SMX_HSHORT"), smx_constant("FA_SMX_HODD")
    lanes = smx_constant("FA_SMX_LANES")
    out, long_done = [], set()
    for fi, spec in enumerate(TABLE.SOFTMAX_TABLE):
        log, sign = int(spec.log), float(spec.sign)
        for op in range(len(SMX_OPS)):
            for dt, *_ in TYPES:
                half = dt in HALF
                di = (HALF.index(dt) if half else dt) % 2
                rng = np.random.default_rng(1000 * fi + 10 * op + dt)

                def data(shape):
                    return (_smx_half(dt, shape, rng, op, log) if half else
                            _smx_data(bits_dtype(dt).type, shape, rng, op, log))

                def grad(shape):
                    return None if op == 0 else _smx_grad_half(dt, shape, rng) if half else \
                        _smx_grad(bits_dtype(dt).type, shape, rng)
                for n in SMX_SHORT:
                    x = data((6, n)).reshape(6, n, 1)
                    g = grad(x.shape)
                    most = (hodd if n % lanes else hshort) if half else short
                    tiled = n <= most and op != SMX_OPS.index("bwdy")
                    out += [SoftmaxJob(log, op, sign, how, x, g, 0, f"n={n}", dt)
                            for how in (("row",) if tiled else ("row", "blocks"))]
                if (log, op, half) not in long_done and di == (op + log) % 2 \
                        and (not half or log == op // 2):
                    long_done.add((log, op, half))
                    n = 2 * block + 41
                    x = data((7, n))[6:].reshape(1, n, 1)
                    out.append(SoftmaxJob(log, op, sign, ("row", "blocks")[op % 2], x,
                                          grad(x.shape), 0, f"n={n}", dt))
                for outer, n, inner, w in SMX_COLS:
                    x = data((inner, outer * n))
                    x = np.ascontiguousarray(x.reshape(inner, outer, n).transpose(1, 2, 0))
                    out.append(SoftmaxJob(log, op, sign, "cols", x, grad(x.shape), w,
                                          f"{outer}x{n}x{inner} w={w}", dt))
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
            if isinstance(job, SoftmaxJob):
                results.append(_native_softmax(_backend._runner, job))
                continue
            kernel, entry, _, params, inputs, _ = job
            dt = job_dtype(job)
            outs = tuple(np.empty(inputs[0].size, numpy_dtype(dt))
                         for _ in TABLE.ENTRY_CODE[TABLE.ENTRIES[entry]][1])
            _backend.COMPILED.launch(kernel, entry, tuple(to_numpy(a, dt) for a in inputs),
                                     outs, params)
            results.append([to_bits(o, dt) for o in outs])
        return results
    finally:
        _backend.set_simd_level(previous)


def _native_segment(runner, job):
    """A SegmentJob through fastact._runner.segments: one row of n elements in one block,
    so that the segment function is called once on the whole arrays, as the driver does."""
    name = TABLE.SEGMENTS[job.seg]
    _, nout, one_b, acc_kind = segment_io(name)
    dt = job_dtype(job)
    n, isz = _n(job), itemsize(dt)

    def slot(a, col=isz):
        return None if a is None else (np.ascontiguousarray(a, a.dtype), 0, col, 0, 0)
    g, a, b = (None if v is None else to_numpy(v, dt) for v in job.inputs)
    outs = [np.empty(n, numpy_dtype(dt)) for _ in range(nout)]
    acc = None if job.acc is None else np.array(job.acc, np.float64)
    o3 = outs[2] if nout == 3 else acc
    slots = (slot(g), slot(a), slot(b, 0 if one_b else isz), slot(outs[0]),
             slot(outs[1] if nout > 1 else None),
             slot(o3, 0 if acc_kind == 1 else o3.itemsize) if o3 is not None else None)
    f = ("leaky_relu" if name.startswith("prelu_") else
         next(k.f for k in TABLE.GATED_KERNELS if name.rsplit("_", 1)[0] == k.name))
    runner.segments(job.seg, dt, TABLE.KERNEL_INDEX[f], slots, n, n, n)
    return [to_bits(o, dt) for o in outs] + ([acc] if acc is not None else [])


def _native_softmax(runner, job):
    """A SoftmaxJob through fastact._runner.softmax (the views fastact._softmax passes):
    a row job on one thread (ops.rows), a blocks job on two or more (a long row's blocks
    spread over them), a column job in the runner's own tiles (their width is not the
    job's: the bits must not depend on it). Outputs start at 0, as the driver's."""
    import fastact
    from fastact._softmax import _GRAIN_KERNEL
    # fresh C-contiguous arrays (a view's strides of the axes of length 1 may differ)
    dt = job_dtype(job)
    x, g = (None if a is None else np.array(to_numpy(a, dt).reshape(a.shape), order="C")
            for a in (job.x, job.g))
    outs = [np.zeros(x.shape, x.dtype) for _ in range(2 if job.op == SMX_OPS.index("fb") else 1)]
    with fastact.threads(1 if job.how == "row" else max(2, os.cpu_count() or 1)):
        special = runner.softmax(bool(job.log), job.sign, job.op, _GRAIN_KERNEL, x, g,
                                 *outs, *(None,) * (2 - len(outs)))
    outer, _, inner = job.x.shape
    flags = np.zeros(outer * inner, np.uint8)
    if special is not None:
        flags[special] = 1
    return [to_bits(o.ravel(), dt) for o in outs] + [flags]


def _softmax_same(job, got, expected):
    """Whether a softmax job's results agree: the same flags, and the same bits (any NaN
    equal to any NaN) where no flag is set (the outputs of a row or column left to the
    caller are unspecified)."""
    outer, n, inner = job.x.shape
    flags_got, flags_exp = got[-1], expected[-1]
    if len(got) != len(expected) or not np.array_equal(flags_got, flags_exp):
        return False
    per = (outer, 1, inner) if job.how == "cols" else (outer, 1, 1)    # columns, rows
    keep = np.broadcast_to((flags_exp == 0).reshape(per), (outer, n, inner)).ravel()
    return all(same_bits(a[keep], b[keep], job_dtype(job))
               for a, b in zip(got[:-1], expected[:-1]))


def same_bits(a, b, dt=None):
    """Bit for bit, any NaN equal to any NaN (the sign of a NaN is unspecified): arrays of
    dtype dt (an index of TYPES; None: a's dtype), as values or (16-bit) their bits."""
    dt = dtype_index(a.dtype) if dt is None else dt
    a, b = to_bits(a, dt), to_bits(b, dt)
    bits = np.dtype(f"uint{8 * itemsize(dt)}")
    nan_a, nan_b = np.isnan(widen(a, dt)), np.isnan(widen(b, dt))
    return np.array_equal(nan_a, nan_b) and np.array_equal(
        np.where(nan_a, 0, a.view(bits)), np.where(nan_b, 0, b.view(bits)))


def fma_level():
    """The FMA level fastact runs here (the reference bits), or None."""
    from fastact import _backend
    levels = [lv for lv in _backend.supported_levels() if lv != "baseline"]
    return levels[-1] if levels else None


def compare(target, directory, cpu=None, exe=None, dtypes=None, half_all=True):
    """(number of jobs, descriptions of those whose driver results differ from fastact's
    FMA level) of jobs(dtypes, half_all); exe: a driver already built for the target."""
    job_list = jobs(dtypes, half_all)
    exe = exe or build(target, directory)
    got = run(target, exe, job_list, directory, cpu)
    expected = native_results(job_list, fma_level())
    bad = []
    for job, g, e in zip(job_list, got, expected):
        dt = job_dtype(job)
        if isinstance(job, SoftmaxJob):
            if not _softmax_same(job, g, e):
                bad.append(f"{'log_softmax' if job.log else 'softmax'}"
                           f"{'(-x)' if job.sign < 0 else ''}.{SMX_OPS[job.op]}."
                           f"{numpy_name(dt)}[{job.how} {job.label}]")
            continue
        # (a segment's float64 accumulator after its outputs)
        if len(g) != len(e) or not all(
                same_bits(a, b, dt if a.dtype == bits_dtype(dt) else None)
                for a, b in zip(g, e)):
            if isinstance(job, SegmentJob):
                bad.append(f"{TABLE.SEGMENTS[job.seg]}.{numpy_name(dt)}[{job.label}]")
                continue
            kernel, entry, _, params = job[:4]
            bad.append(f"{TABLE.KERNELS[kernel].name}.{TABLE.ENTRIES[entry]}."
                       f"{numpy_name(dt)}{params}")
    return len(job_list), bad


def vectorized(target, compiler_report=None):
    """{function: number of vectorized loops} of the driver's kernel functions (every
    dtype's file, compiled side by side) compiled for a target with OpenMP (GCC's
    -fopt-info-vec-optimized)."""
    import bisect
    counts = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = {src: funcs for src, funcs in write_source(tmp).items() if funcs}
        # -fno-ipa-icf: identical functions (relu's bwd and bwdy) are not folded into one
        _compile_all([compile_flags(target, openmp=True) + [
            "-fno-ipa-icf", "-c", src, "-o", src[:-2] + ".o",
            f"-fopt-info-vec-optimized={src[:-2]}.vec"] for src in files])
        for src, funcs in files.items():
            starts = [line for line, _ in funcs]
            counts.update({name: 0 for _, name in funcs})
            for line in open(src[:-2] + ".vec").read().splitlines():
                m = re.search(r"\.c:(\d+):\d+: optimized: loop vectorized", line)
                if m:
                    i = bisect.bisect(starts, int(m.group(1))) - 1
                    if i >= 0:
                        counts[funcs[i][1]] += 1
    return counts


def expected_loops(function):
    """Loops in a driver function (kernel_entry_suffix, maybe _omp): one, two where the
    kernel has a constant variant."""
    kernels = "|".join(sorted((re.escape(k.name) for k in TABLE.KERNELS), key=len, reverse=True))
    m = re.fullmatch(r"(%s)_(%s)_(%s)(?:_omp)?" % (kernels, "|".join(TABLE.ENTRIES),
                                                   "|".join(SUFFIXES)), function)
    if not m:
        raise ValueError(f"{function!r} is no kernel x entry x dtype function")
    return 2 if TABLE.KERNELS[[k.name for k in TABLE.KERNELS].index(m.group(1))].common else 1


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
    return [f"fa_{name}_seg_{s}" for name in TABLE.SEGMENTS for _, _, s, _ in TYPES]


def _split_segments(text):
    """The preprocessed text with every segment function (wrapper and body) and every
    `for` of theirs on a line of its own."""
    out = []
    for line in text.splitlines():
        if re.search(r"\bstatic void fa_\w+_seg_(?:%s)\(" % "|".join(SUFFIXES), line):
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
              if (m := re.match(r"static void (fa_\w+_seg_(?:%s))\(" % "|".join(SUFFIXES),
                                line))]
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


# ---- the softmax family's loops' vectorization (fa_softmax.h) ----
# fa_softmax_impl.h is written once per type, and each (log, op) pair is a constant of
# the inlined bodies (FA_SMX_SWITCH): the same source loop is compiled 16 times, and an
# inlined loop called from two places (the rows' sums call the tile sums for the tile of
# 16 lanes and for the tail) twice more; a compiler reports all of them at one line. The
# check writes a copy of fa_softmax_impl.h per dtype x (log, op) x pass (the rows' sums,
# the rows' write, the column tiles; the rows' max once per dtype): its functions
# renamed, the pass's entry (the function fa_smx_ops holds) always-inline and called
# with constant (log, op) from a function of its own, as a case of the switch is; and
# every inlined function that holds a loop defined once per call path, each in a file
# of its own (`COPY@211.189`: called at line 211, then 189) at its own lines of
# fa_softmax_impl.h, so that each report names one loop of one instance of one
# specialization. Every loop instance must vectorize: a perfect nest (a `for` whose body
# is a `for`) by its innermost loop, or by the outer one where the compiler unrolled
# the inner one away (a report that the outer loop did not vectorize beside a
# vectorized inner one is the compiler's outer-loop attempt; GCC's unroll and jam moves
# that report to the inner loop's line); a report that a copy of a loop (unswitched,
# jammed) did not vectorize is a miss beside one that did. A loop with no report in an
# instance is not there: dead for the op (the max of the backward from y) or unrolled
# completely before the vectorizer (a constant trip count: the 16 lanes' initial
# values); counted apart, not a miss, but each pass must vectorize some loop. Loops that
# may stay scalar, by function and text, are SMX_EXEMPT's.
SMX_PASSES = {"sums": "smx_sums", "write": "smx_write", "cols": "smx_cols", "max": "smx_max"}
SMX_EXEMPT = (
    # the pairwise combination of the 16 lanes' sums (8 + 4 + 2 + 1 two-sums per sum, in
    # a fixed order: it is what makes a row's bits independent of the vector length)
    ("smx_sums_body", re.compile(r"for \(h = "), "pairwise lane combination"),
    # the constants of each column of a tile (smx_consts: a division and a log per
    # column, w <= 256 of them, against n * w elements in each pass)
    ("smx_cols_consts", re.compile(r"\bSM?\(smx_consts\w*\)\s*\("), "per-column constants"),
)
# Misses known and accepted for now (each a loop instance the compilers leave scalar,
# listed so that any other miss still fails): (compiler 'gcc'/'clang'/None, level
# 'baseline' (x86-64 SSE2) or None, dtypes (suffixes: each listed by name, so that a new
# dtype's misses are never accepted unseen), pass-label regex, function, call-path regex,
# why). Each is a cost in speed, not in results; docs/softmax.md lists them as work left.
F32_F64 = ("f32", "f64")
SMX_KNOWN = (
    # float64's 16 lanes' maxima combined into one (a scalar reduction of 16, like the
    # sums'; float's max is two integer reductions)
    (None, None, ("f64",), r"rows max", "smx_max", r"direct", "the 16 lanes' maxima combined"),
    # a tile's per-column flags (NaN, infinite max): w <= 1024 of them per tile
    (None, None, F32_F64, r"column tiles", "smx_cols_flag", r"via line \d+>\d+$",
     "per-column flags (SSE2: no double-to-byte compare)"),
    # float64 at SSE2 (2 lanes): the sums with their int32 counts are left scalar by GCC
    ("gcc", "baseline", ("f64",), r".", "smx_tile_sums", r".", "float64 sums at SSE2"),
    # the n % 16 tail of a row's sums (clang: "not identified as a reduction")
    ("clang", None, F32_F64, r"rows sums", "smx_tile_sums", r"via line [\d>]+>{tail}$",
     "the tail of a row (clang)"),
    # the backward from y's sums: clang will not reorder them
    ("clang", None, F32_F64, r"bwdy rows sums", "smx_tile_sums", r".", "bwdy sums (clang)"),
    # float64 log_softmax's backward from y in a row (a tile) holding a y past 709, at
    # SSE2: the select of the split exponential (clang's cost model)
    ("clang", "baseline", ("f64",), r"log_softmax\.bwdy rows write", "smx_write_body", r".",
     "float64 log_softmax bwdy's select at SSE2 (clang)"),
    ("clang", "baseline", ("f64",), r"log_softmax\.bwdy column tiles", "smx_cols_body", r".",
     "float64 log_softmax bwdy's select at SSE2 (clang)"),
    # float32 log_softmax's backward from y in a tile whose columns mix the two writes
    # (a sum of g outside [2^-100, 2^100] beside one inside), at SSE2: clang's cost model
    ("clang", "baseline", ("f32",), r"log_softmax\.bwdy column tiles", "smx_cols_body", r".",
     "a tile mixing log_softmax bwdy's writes at SSE2 (clang's cost model)"),
    # the max's two selects at SSE2: clang's cost model finds them not worth it
    ("clang", "baseline", F32_F64, r"rows max|column tiles", "smx_tile_max", r".",
     "the max at SSE2 (clang's cost model)"),
)
# the dtypes fa_softmax_impl.h is compiled for (float16 and bfloat16 run float32's passes
# over widened pieces: fa_softmax.h, left out of the check by FA_SMX_CHECK)
SMX_DTYPES = F32_F64
# instances left out: float's passes for 16-bit rows (FA_SMX_H16, inside fa_softmax.h's
# #ifndef FA_SMX_CHECK; their loops were read in GCC's report by hand: docs/softmax.md)
SMX_UNCHECKED = ("h32",)
SMX_SPECS = [("max", None, None)] + [(p, lg, op) for op in range(len(SMX_OPS)) for lg in (0, 1)
                                     for p in ("sums", "write", "cols")]


def _strip_comments(text):
    """text with its comments blanked (newlines kept: offsets and lines unchanged)."""
    return re.sub(r"/\*.*?\*/|//[^\n]*",
                  lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)


def _match(text, i, open_, close):
    """The index after the bracket that closes text[i] (an opening one)."""
    depth = 0
    for j in range(i, len(text)):
        depth += (text[j] == open_) - (text[j] == close)
        if depth == 0:
            return j + 1
    raise RuntimeError("unbalanced brackets in fa_softmax_impl.h")


def _statement_end(text, i):
    """The index after the C statement that starts at or after text[i]."""
    while text[i].isspace():
        i += 1
    if text[i] == "{":
        return _match(text, i, "{", "}")
    m = re.match(r"(for|while|if|switch)\b\s*", text[i:])
    if m:
        end = _statement_end(text, _match(text, i + m.end(), "(", ")"))
        e = re.match(r"\s*else\b", text[end:])
        return _statement_end(text, end + e.end()) if m.group(1) == "if" and e else end
    depth = 0
    for j in range(i, len(text)):
        depth += (text[j] in "({") - (text[j] in ")}")
        if text[j] == ";" and depth == 0:
            return j + 1
    raise RuntimeError("a statement without its ';' in fa_softmax_impl.h")


class _Func(typing.NamedTuple):
    name: str
    start: int                  # offset of its definition
    end: int                    # offset after its closing brace
    body: int                   # offset of its opening brace
    inlined: bool               # not noinline/noipa: one copy per call path
    calls: list                 # [(callee, offset of its S(callee), line)]
    loops: list                 # [(for-lines outer to inner, text, holds other loops, last line)]


def _parse_impl(text):
    """{name: _Func} of the S(name) functions of fa_softmax_impl.h, in order."""
    code = _strip_comments(text)
    line = lambda i: code.count("\n", 0, i) + 1  # noqa: E731
    funcs = {}
    # (SM(name) names the file's functions, S(name) those of T's math; either is read)
    for m in re.finditer(r"^(?:FA_INLINE|static)\b[^;{=]*?\bSM?\((\w+)\)\s*\(", code, re.M):
        body = code.index("{", _match(code, m.end() - 1, "(", ")"))
        # what stands between the previous definition and this one (attributes)
        prefix = code[max(code.rfind("}", 0, m.start()), code.rfind(";", 0, m.start())) + 1:
                      m.start()]
        funcs[m.group(1)] = _Func(m.group(1), m.start(), _match(code, body, "{", "}"), body,
                                  not re.search(r"\bnoinline\b|\bnoipa\b", prefix), [], [])
    for f in funcs.values():
        for m in re.finditer(r"\bSM?\((\w+)\)\s*\(", code[f.body:f.end]):
            if m.group(1) in funcs:
                f.calls.append((m.group(1), f.body + m.start(), line(f.body + m.start())))
        heads = {}                  # for-offset -> offset after its header
        for m in re.finditer(r"\bfor\s*\(", code[f.body:f.end]):
            s = f.body + m.start()
            heads[s] = _match(code, code.index("(", s), "(", ")")
        # a loop whose body is a for statement: a perfect nest with it
        inner = {s: h + len(code[h:]) - len(code[h:].lstrip())
                 for s, h in heads.items() if re.match(r"\s*for\s*\(", code[h:])}
        nested = set(inner.values())
        for s in heads:
            if s in nested:
                continue
            chain = [s]
            while chain[-1] in inner:
                chain.append(inner[chain[-1]])
            stop = _statement_end(code, heads[chain[-1]])
            holds = bool(re.search(r"\bfor\s*\(", code[heads[chain[-1]]:stop]))
            f.loops.append(([line(c) for c in chain], code[s:stop], holds, line(stop)))
    return funcs


def _smx_loop_units(funcs):
    """{function: [(for-lines, exempt reason or None, last line, holds other loops)]}."""
    units = {}
    for name, f in funcs.items():
        for lines, text, holds, last in f.loops:
            why = next((r for fn, pattern, r in SMX_EXEMPT
                        if fn == name and pattern.search(text)), None)
            units.setdefault(name, []).append((lines, why, last, holds))
    for fn, _, why in SMX_EXEMPT:
        if not any(w == why for w in (u[1] for u in units.get(fn, []))):
            raise RuntimeError(f"fa_softmax_impl.h: no loop of {fn} is the {why} loop "
                               f"that SMX_EXEMPT names: update tools/kernel_driver.py")
    return units


def _smx_nodes(funcs, entry):
    """The instances of the loop functions a pass reaches from its entry: [(function,
    path)] (path: the lines of the calls from the entry; () for the entry and for a
    function that is not inlined, which is one instance), and {(caller instance, offset
    of the call): callee instance}."""
    bearing = {}

    def has_loops(name, seen=()):
        if name not in bearing:
            f = funcs[name]
            bearing[name] = bool(f.loops) or any(has_loops(c, seen + (name,))
                                                 for c, _, _ in f.calls if c not in seen)
        return bearing[name]
    nodes, edges, todo = [], {}, [(entry, ())]
    while todo:
        node = todo.pop(0)
        if node in nodes:
            continue
        nodes.append(node)
        for callee, offset, line in funcs[node[0]].calls:
            if has_loops(callee):
                child = (callee, node[1] + (line,) if funcs[callee].inlined else ())
                edges[(node, offset)] = child
                todo.append(child)
    return nodes, edges


def _smx_copy(text, funcs, entry, tag, copy):
    """The files of one pass (entry) of one specialization (tag): {name: text}, the copy
    of fa_softmax_impl.h (`copy`: the functions renamed with the tag, the entry
    always-inline, the calls to loop functions to their instances, whose prototypes
    precede line 1's text) and one file per instance of an inlined loop function
    (`copy@path`: its definition alone, at its lines of fa_softmax_impl.h), which the
    copy includes at its end; and the instances, [(function, path)]."""
    nodes, edges = _smx_nodes(funcs, entry)
    code = _strip_comments(text)
    rename = lambda path: f"@@{'_'.join(map(str, path))}" if path else ""  # noqa: E731

    def body(name, path):
        """the function's text, its name and its calls to loop functions renamed to
        their instances"""
        f = funcs[name]
        out, pos = [], f.start
        for callee, offset, _ in f.calls:
            child = edges.get(((name, path), offset))
            if child and child[1]:
                m = re.compile(r"(SM?)\(\w+\)").match(text, offset)
                out += [text[pos:offset], f"{m.group(1)}({callee}{rename(child[1])})"]
                pos = m.end()
        out.append(text[pos:f.end])
        src = re.sub(r"\b(SM?)\(" + name + r"\)",
                     lambda m: f"{m.group(1)}({name}{rename(path)})", "".join(out), count=1)
        if name == entry and "FA_SMX_SWITCH(" in src:
            src = re.sub(r"^static\b", "FA_INLINE", src)
        return src

    files, protos, pieces, pos = {}, [], [], 0
    for name, f in funcs.items():
        if (name, ()) in nodes:
            pieces += [text[pos:f.start], body(name, ())]
            pos = f.end
        for _, path in (n for n in nodes if n[0] == name and n[1]):
            files[f"{copy}@{'.'.join(map(str, path))}"] = (
                "\n" * code.count("\n", 0, f.start) + body(name, path) + "\n")
            head = re.sub(r"\b(SM?)\(" + name + r"\)",
                          lambda m: f"{m.group(1)}({name}{rename(path)})",
                          code[f.start:f.body], count=1)
            protos.append(" ".join(head.split()) + ";")
    pieces += [text[pos:], "\n"] + [f'#include "{name}"\n' for name in files]
    names = "|".join(funcs)
    files[copy] = " ".join(protos) + " " + "".join(pieces)
    for name in files:
        files[name] = re.sub(
            r"\b(SM?)\((" + names + r")(?:@@([\d_]+))?\)",
            lambda m: (f"{m.group(1)}({m.group(2)}_{tag}"
                       + (f"__{m.group(3)})" if m.group(3) else ")")),
            files[name])
    return files, nodes


def _smx_wrapper(funcs, text, entry, tag, dtype, lg, op):
    """A function of its own that calls the copy's entry, (log, op) constants."""
    f = funcs[entry]
    head = _strip_comments(text)[f.start:f.body]
    m = re.search(r"\b(void|int|double)\s+SM?\(\w+\)\s*\((.*)\)\s*$", head, re.S)
    params = [p.strip() for p in m.group(2).split(",")]
    names = [re.search(r"(\w+)\s*$", p).group(1) for p in params]
    fixed = {"lg": str(lg), "op": str(op)}
    if "FA_SMX_SWITCH(" in text[f.body:f.end] and not set(fixed) <= set(names):
        raise RuntimeError(f"S({entry}) of fa_softmax_impl.h takes no lg and op: update "
                           f"_smx_wrapper of tools/kernel_driver.py")
    args = [fixed.get(n, n) for n in names]
    keep = [p for p, n in zip(params, names) if n not in fixed]
    call = f"fa_{entry}_{tag}_{dtype}({', '.join(args)})"
    return (f"{m.group(1)} fa_smx_check_{tag}_{dtype}({', '.join(keep)}) "
            f"{{ {'return ' if m.group(1) != 'void' else ''}{call}; }}")


def _smx_suffix(text):
    """The suffix the functions of fa_softmax_impl.h get where it is included at the end
    of text (fa_softmax.h's): SM(name)'s, as the #define/#undef lines of S and SM leave
    them (SM(name) may be S(name))."""
    macros = {}
    for m in re.finditer(r"^#\s*(define|undef)\s+(SM?)\b(?:\(name\)\s+(.*))?$", text, re.M):
        macros[m.group(2)] = m.group(3).strip() if m.group(1) == "define" else None
    body = macros.get("SM") or ""
    if re.fullmatch(r"S\(name\)", body):
        body = macros.get("S") or ""
    m = re.fullmatch(r"fa_##name##_(\w+)", body)
    if not m:
        raise RuntimeError(f"fa_softmax.h: SM(name) is {body!r} where it includes "
                           f"fa_softmax_impl.h: update tools/kernel_driver.py")
    return m.group(1)


def _smx_sources(directory):
    """Write the check's C file and copies; (path, {copy file: (dtype, label, nodes)},
    {function: loop units})."""
    text = open(os.path.join(SRC, "fa_softmax_impl.h")).read()
    head = open(os.path.join(SRC, "fa_softmax.h")).read()
    funcs = _parse_impl(text)
    units = _smx_loop_units(funcs)
    for entry in SMX_PASSES.values():
        if entry not in funcs:
            raise RuntimeError(f"fa_softmax_impl.h defines no S({entry}): update "
                               f"SMX_PASSES of tools/kernel_driver.py")
    parts = re.split(r'^#include "fa_softmax_impl.h"\n', head, flags=re.M)
    dtypes = [_smx_suffix("".join(parts[:k + 1])) for k in range(len(parts) - 1)]
    if sorted(d for d in dtypes if d not in SMX_UNCHECKED) != sorted(SMX_DTYPES):
        raise RuntimeError(f"fa_softmax.h includes fa_softmax_impl.h for {dtypes}, not once "
                           f"per dtype of {SMX_DTYPES}: update tools/kernel_driver.py")
    copies, wrappers, out = {}, [], [parts[0]]
    for k, rest in enumerate(parts[1:]):
        dtype = dtypes[k]
        if dtype in SMX_UNCHECKED:        # (inside #ifndef FA_SMX_CHECK: compiled out)
            out += ['#include "fa_softmax_impl.h"\n', rest]
            continue
        for pass_, lg, op in SMX_SPECS:
            label = (f"{'log_softmax' if lg else 'softmax'}.{SMX_OPS[op]} "
                     f"{'column tiles' if pass_ == 'cols' else 'rows ' + pass_}"
                     if lg is not None else "rows max")
            tag = f"{pass_}" if lg is None else f"lg{lg}_{SMX_OPS[op]}_{pass_}"
            copy = f"smx.{dtype}.{tag}.h"
            files, nodes = _smx_copy(text, funcs, SMX_PASSES[pass_], tag, copy)
            for name, src in files.items():
                with open(os.path.join(directory, name), "w") as f:
                    f.write(src)
            out.append(f'#include "{copy}"\n')
            wrappers.append(_smx_wrapper(funcs, text, SMX_PASSES[pass_], tag, dtype,
                                         lg or 0, op or 0))
            copies[copy] = (dtype, label, nodes)
        out.append(rest)
    # fa_softmax.h's own tables (FA_SMX_OPS) are left out, and what calls the passes by
    # their own names (FA_SMX_CHECK): only the copies are compiled
    src = "#define FA_SMX_CHECK 1\n" + re.sub(r"static const fa_smx_ops FA_SMX_OPS\[\w+\] = \{.*?\n\};\n", "",
                 "".join(out), flags=re.S)
    path = os.path.join(directory, "smx_check.c")
    with open(path, "w") as f:
        f.write(src + "\n/* the passes, (log, op) constant */\n" + "\n".join(wrappers) + "\n")
    return path, copies, units


def _where(where):
    """'file:line' of a report's location, the copies' as fa_softmax_impl.h's lines."""
    file, line = where
    return f"{'fa_softmax_impl.h' if file.startswith('smx.') else os.path.basename(file)}:{line}"


def _smx_reports(text, clang):
    """{(file name, line): [(kind, reason)]} of a compiler's report; kind: vec, miss, slp,
    alias, jam (GCC's unroll and jam), unrolled (completely); a miss's reason: the
    compiler's (clang's analysis remark before it, GCC's first message after it), with
    its location."""
    found, reason = {}, None
    for raw in text.splitlines():
        if clang:
            m = re.match(r"(.+?):(\d+):\d+: remark: (.*?) "
                         r"\[-R(pass|pass-missed|pass-analysis)=([\w-]+)\]$", raw)
            if not m:
                continue
            where = (os.path.basename(m.group(1)), int(m.group(2)))
            msg, kind, pass_ = m.group(3, 4, 5)
            if kind == "pass-analysis":
                if msg.startswith("loop not vectorized"):
                    reason = f"{msg.split('; allow reordering')[0]} ({_where(where)})"
                continue
            # (an "interleaved loop" without vectors is no vectorized loop)
            k = ("vec" if pass_ == "loop-vectorize" and msg.startswith("vectorized loop") else
                 None if pass_ == "loop-vectorize" and kind == "pass" else
                 "miss" if pass_ == "loop-vectorize" else
                 "slp" if pass_ == "slp-vectorizer" else
                 "unrolled" if "completely unrolled" in msg else None)
            if k == "miss" and msg != "loop not vectorized":
                reason = f"{msg} ({_where(where)})"     # the cost model's, say
            if k:
                found.setdefault(where, []).append([k, reason if k == "miss" else None])
            if k in ("vec", "miss"):
                reason = None
            continue
        m = re.match(r"(.+?):(\d+):\d+: (optimized|missed): +(.*)$", raw)
        if not m:
            continue
        where = (os.path.basename(m.group(1)), int(m.group(2)))
        kind, msg = m.group(3, 4)
        if kind == "missed" and msg.startswith("couldn't vectorize loop"):
            found.setdefault(where, []).append(["miss", None])
            reason = found[where][-1]
            continue
        if kind == "missed" and reason is not None and reason[1] is None \
                and not msg.startswith("statement clobbers"):
            reason[1] = f"{re.sub(r'^not vectorized: ', '', msg).rstrip('.')} ({_where(where)})"
            continue
        k = ("vec" if msg.startswith("loop vectorized") else
             "slp" if msg.startswith("basic block part vectorized") else
             "alias" if "because of possible aliasing" in msg else
             "jam" if msg.startswith("applying unroll and jam") else
             "unrolled" if "completely unrolled" in msg else None)
        if k:
            found.setdefault(where, []).append([k, None])
            reason = None if k == "vec" else reason
    return {w: [tuple(r) for r in rs] for w, rs in found.items()}


def _smx_status(reports, pseudo, lines, last, clang):
    """(status, ok) of one loop (a perfect nest: its for-lines) in one instance."""
    at = lambda ls: [r for l in ls for r in reports.get((pseudo, l), [])]  # noqa: E731
    inner, outer = at(lines[-1:]), at(lines[:-1])
    kinds = lambda rs: [k for k, _ in rs]  # noqa: E731
    miss = [r for k, r in inner + outer if k == "miss"]
    alias = " (alias check)" if "alias" in kinds(inner + outer) else ""
    if "vec" in kinds(inner):
        # misses beside: the outer loop's attempt (at the inner line after unroll and
        # jam), or a copy of the inner loop not vectorized
        if "miss" not in kinds(inner) or (not clang and "jam" in kinds(outer + inner)):
            return "vectorized" + alias, True
        return f"NOT vectorized (a copy of the loop: {miss[0] or 'no reason given'})", False
    if "vec" in kinds(outer) and not miss:
        return "vectorized (outer loop)" + alias, True
    if miss:
        return f"NOT vectorized: {miss[0] or 'no reason given'}", False
    if "slp" in kinds(at(range(lines[0], last + 1))):
        return "not there: unrolled, SLP-vectorized", True
    return ("not there: unrolled" if "unrolled" in kinds(inner + outer) else
            "not there (dead for the op)"), True


@functools.lru_cache(maxsize=None)
def _smx_call_lines():
    """{'main': line, 'tail': line} of smx_sums_body's two calls of smx_tile_sums in
    fa_softmax_impl.h (the 16-lane rows, the n % 16 tail): SMX_KNOWN's {main}, {tail}."""
    funcs = _parse_impl(open(os.path.join(SRC, "fa_softmax_impl.h")).read())
    lines = [line for callee, _, line in funcs["smx_sums_body"].calls
             if callee == "smx_tile_sums"]
    if len(lines) != 2:
        raise RuntimeError("smx_sums_body does not call smx_tile_sums twice (rows, tail): "
                           "update SMX_KNOWN of tools/kernel_driver.py")
    return {"main": str(lines[0]), "tail": str(lines[1])}


def _smx_known(command, clang, dtype, label, fn, where):
    """The reason an SMX_KNOWN entry gives for this miss, or None."""
    level = ("avx512" if "-mavx512f" in command else "avx2" if "-mavx2" in command else
             "baseline" if any("x86-64" in c for c in command) or not any(
                 "arm" in c or "aarch64" in c or "sve" in c for c in command) else "arm")
    for comp, lvl, dts, lab, f, wh, why in SMX_KNOWN:
        if (comp in (None, "clang" if clang else "gcc") and lvl in (None, level)
                and dtype in dts and re.search(lab, label) and f == fn
                and re.search(wh.format(**_smx_call_lines()) if "{" in wh else wh, where)):
            return why
    return None


def softmax_vectorization(command, clang=False):
    """{(dtype, pass): [(function, loop, instance, status, ok)]} of the softmax family's
    loops compiled by command (the compiler and every flag, without -c/-o; clang's
    remarks if clang, else GCC's -fopt-info): every loop of every function a pass reaches,
    per call path, in each (log, op) specialization (the rows' max: per dtype); see the
    comment above SMX_PASSES. A pass that vectorized no loop at all gets a failing row
    (function '-')."""
    with tempfile.TemporaryDirectory() as tmp:
        src, copies, units = _smx_sources(tmp)
        obj = os.path.join(tmp, "smx.o")
        if clang:
            r = subprocess.run(command + ["-c", os.path.basename(src), "-o", obj,
                                          "-fno-caret-diagnostics",
                                          "-Rpass=loop-vectorize|slp-vectorizer|loop-unroll",
                                          "-Rpass-missed=loop-vectorize",
                                          "-Rpass-analysis=loop-vectorize"],
                               cwd=tmp, check=True, capture_output=True, text=True)
            report = r.stderr
        else:
            path = os.path.join(tmp, "vec.txt")
            subprocess.run(command + ["-c", os.path.basename(src), "-o", obj, "-fno-ipa-icf",
                                      f"-fopt-info-vec-loop-optimized-missed={path}"],
                           cwd=tmp, check=True, capture_output=True, text=True)
            report = open(path).read()
    reports = _smx_reports(report, clang)
    result = {}
    for copy, (dtype, label, nodes) in copies.items():
        rows = []
        for name, path in nodes:
            file = copy + ("@" + ".".join(map(str, path)) if path else "")
            where = "via line " + ">".join(map(str, path)) if path else "direct"
            for lines, why, last, holds in units.get(name, []):
                loop = f"line {lines[0]}" + (f"-{lines[-1]}" if len(lines) > 1 else "")
                if why:
                    rows.append((name, loop, where, f"exempt ({why})", True))
                elif not holds:     # (a loop that holds others: they are loops of their own)
                    st, ok = _smx_status(reports, file, lines, last, clang)
                    known = None if ok else _smx_known(command, clang, dtype, label, name,
                                                       where)
                    if known:
                        st, ok = f"known miss ({known}): {st}", True
                    rows.append((name, loop, where, st, ok))
        if not any(st.startswith(("vectorized", "known miss")) for *_, st, _ in rows):
            rows.append(("-", "-", "-", "no loop of this pass vectorized", False))
        result[(dtype, label)] = rows
    return result


def softmax_misses(result):
    """The softmax loops that did not vectorize: 'dtype pass: function line(s) (call
    path): status, the compiler's reason'."""
    return [f"{dtype} {label}: {fn} {loop} ({where}): {st}"
            for (dtype, label), rows in result.items()
            for fn, loop, where, st, ok in rows if not ok]


def softmax_summary(result):
    """One line: passes and loop instances, how many vectorized, not, exempt, not there
    (and SLP-vectorized after unrolling); the loops with run-time alias checks."""
    rows = [r for rs in result.values() for r in rs if r[0] != "-"]
    count = lambda prefix: sum(st.startswith(prefix) for *_, st, _ in rows)  # noqa: E731
    exempt = sorted({st[8:-1] for *_, st, _ in rows if st.startswith("exempt")})
    alias = sorted({f"{fn} {loop}" for fn, loop, _, st, _ in rows if "alias" in st})
    missed = softmax_misses(result)
    return (f"softmax: {len(result)} passes, {len(rows)} loop instances: "
            + (f"{len(missed)} NOT vectorized" if missed else "no miss beyond SMX_KNOWN"
               if count("known miss") else "every loop vectorized")
            + f" ({count('vectorized')} vectorized, {count('known miss')} known misses "
            + "(SMX_KNOWN), "
            + f"{count('exempt')} exempt: "
            + f"{', '.join(exempt)}; {count('not there')} not there (dead for the op or "
            + f"unrolled, {count('not there: unrolled, SLP')} of them SLP-vectorized))"
            + (f"; run-time alias checks in {', '.join(alias)}" if alias else ""))


def instructions_per_element(target, exe, kernel, entry, suffix, cpu=None, n=4096):
    """Instructions qemu executes per element in one kernel loop of a built driver (qemu
    -singlestep -d exec logs one line per instruction; the driver's own work cancels
    out between running the loop once and three times)."""
    ki = [k.name for k in TABLE.KERNELS].index(kernel)
    ei = TABLE.ENTRIES.index(entry)
    dt = dtype_index(suffix)
    x = _cast(dt, np.linspace(-20, 20, n))
    inputs = (x,) if len(TABLE.ENTRY_CODE[entry][0]) == 1 else (_cast(dt, np.ones(n)), x)
    runner = list(TARGETS[target][2])
    if cpu:
        runner[2] = cpu
    counts = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in (1, 3):
            jobs_path, log = os.path.join(tmp, "jobs.bin"), os.path.join(tmp, "exec.log")
            with open(jobs_path, "wb") as f:
                f.write(HEADER.pack(ki, ei, dt, repeat, *(1.0,) * TABLE.NPARAMS, n))
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
        softmax = softmax_vectorization(compile_flags(target, openmp=True))
        print(f"{target}: {softmax_summary(softmax)}")
        for miss in softmax_misses(softmax):
            print(f"    NOT vectorized for {target}: {miss}")
        novec = novec + segment_misses(segments) + softmax_misses(softmax)
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
