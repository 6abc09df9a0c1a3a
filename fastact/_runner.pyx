# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Launches fastact's compiled kernels: the per-call fast path, thread counts, CPU level.

The kernels themselves live in the per-SIMD-level modules ``_kernels_<level>``; fastact
picks one at import and hands its table of function pointers to ``use_table``. The fast
path takes the common case (an ndarray of float32/float64, contiguous, aligned, native
byte order; ``out`` absent or of the same layout) straight to a kernel; anything else
returns None and fastact._arrays handles it and comes back through ``launch``.
"""
cimport numpy as cnp
from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.string cimport memcmp

import numpy as np

cnp.import_array()

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int fa_omp_max_threads(void) { return omp_get_max_threads(); }
    #define FA_RUNNER_OPENMP 1
    #else
    static int fa_omp_max_threads(void) { return 1; }
    #define FA_RUNNER_OPENMP 0
    #endif
    /* Shut the calling thread's OpenMP thread pool down (OpenMP 5.0; GNU libgomp 9+,
     * LLVM libomp): called before fork, so that the child does not inherit a pool whose
     * threads it does not have (GNU libgomp then hangs). Whoever started the pool
     * (fastact, PyTorch, another library on the same runtime), it is this thread's.
     * 0 on success, -1 where the runtime cannot. */
    #if defined(_OPENMP) && ((defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 9) \
                             || defined(__clang__))
    static int fa_omp_pause(void) { return omp_pause_resource_all(omp_pause_soft); }
    #else
    static int fa_omp_pause(void) { return -1; }
    #endif

    /* 0: baseline, 1: AVX2 + FMA, 2: AVX-512 F/DQ/BW/VL; each with the OS saving the
     * registers (GCC's and MSVC's checks both look at XCR0). */
    #if defined(_MSC_VER) && defined(_M_X64)
    #include <intrin.h>
    static int fa_cpu_level(void) {
        int r[4];
        __cpuid(r, 1);
        if (!((r[2] >> 27) & 1) || !((r[2] >> 28) & 1)) return 0;
        unsigned long long xcr0 = _xgetbv(0);
        if ((xcr0 & 6) != 6) return 0;
        int fma = (r[2] >> 12) & 1;
        __cpuidex(r, 7, 0);
        int avx2 = (r[1] >> 5) & 1;
        if (((r[1] >> 16) & 1) && ((r[1] >> 17) & 1) && ((r[1] >> 30) & 1) &&
            ((r[1] >> 31) & 1) && (xcr0 & 0xe6) == 0xe6) return 2;
        return avx2 && fma;
    }
    #elif (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
    static int fa_cpu_level(void) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
            __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) return 2;
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    #else
    static int fa_cpu_level(void) { return 0; }
    #endif
    """
    int fa_omp_max_threads() nogil
    int fa_omp_pause()
    int fa_cpu_level()
    int FA_RUNNER_OPENMP

cdef extern from "numpy/arrayobject.h":
    object PyArray_NewLikeArray(cnp.ndarray prototype, cnp.NPY_ORDER order, void *descr,
                                int subok)

ctypedef void (*kernel_t)(const char *a, const char *b, char *o1, char *o2, Py_ssize_t n,
                          const double *p, int nthreads) noexcept nogil

cdef enum:
    NENTRIES = 6            # len(fastact._activations.ENTRIES)
    MAXKERNELS = 64
    NPARAMS = 5             # fastact._activations.NPARAMS

cdef kernel_t *g_table = NULL
cdef int g_threads = 0                   # 0: follow omp_get_max_threads()
cdef Py_ssize_t g_grain[MAXKERNELS]      # per kernel: below this size, one thread
cdef bint g_pool_started = False         # fastact ran a parallel loop since the last pause
cdef bint g_fork_serial = False          # a child that may hold a dead pool: one thread

OPENMP = bool(FA_RUNNER_OPENMP)
LEVELS = ("baseline", "avx2", "avx512")


def cpu_level():
    """The best kernel level this CPU runs: 'baseline', 'avx2' or 'avx512'."""
    return LEVELS[fa_cpu_level()]


def use_table(capsule, grains):
    """Install a kernel module's table and the per-kernel single-thread thresholds."""
    global g_table
    if len(grains) > MAXKERNELS:
        raise ValueError("too many kernels")
    for i, grain in enumerate(grains):
        g_grain[i] = grain
    g_table = <kernel_t *>PyCapsule_GetPointer(capsule, "fastact.kernel_table")


def set_num_threads(int n):
    """n > 0: use n threads; 0: follow OpenMP's default (OMP_NUM_THREADS, threadpoolctl)."""
    global g_threads
    if n < 0:
        raise ValueError(f"number of threads must be positive, got {n}")
    g_threads = n


def get_num_threads():
    """Threads a large call would use now."""
    if g_fork_serial or not FA_RUNNER_OPENMP:
        return 1
    return g_threads if g_threads > 0 else fa_omp_max_threads()


def get_thread_setting():
    """The value set_num_threads last stored (0: OpenMP's default)."""
    return g_threads


def before_fork():
    """Registered with os.register_at_fork(before=...): shut down this thread's OpenMP
    pool (the runtime restarts it on the next parallel call), so that the child starts
    without one and can run threads, whoever started the pool. (LLVM's libomp refuses a
    second pause with no parallel call in between; its pool is then already down.)"""
    global g_pool_started
    if FA_RUNNER_OPENMP and fa_omp_pause() == 0:
        g_pool_started = False


def after_fork_in_child():
    """Registered with os.register_at_fork(after_in_child=...): where the pool could not
    be shut down before the fork and fastact had run one, the child stays on one thread
    (GNU OpenMP's pool does not survive fork)."""
    global g_fork_serial
    g_fork_serial = g_pool_started


cdef inline int threads_for(Py_ssize_t kernel, Py_ssize_t n) noexcept nogil:
    global g_pool_started
    cdef int nt
    if n < g_grain[kernel] or g_fork_serial:
        return 1
    nt = g_threads if g_threads > 0 else fa_omp_max_threads()
    if nt > 1:
        g_pool_started = True
    return nt


cdef inline int fast_dtype(object a) noexcept:
    """0 float32, 1 float64 for an ndarray the kernels take as it is (ndim >= 1,
    C- or F-contiguous, aligned, native byte order); -1 otherwise."""
    if type(a) is not np.ndarray:
        return -1
    cdef cnp.ndarray arr = <cnp.ndarray>a
    if cnp.PyArray_NDIM(arr) == 0 or not cnp.PyArray_ISBEHAVED_RO(arr):
        return -1
    if not (cnp.PyArray_IS_C_CONTIGUOUS(arr) or cnp.PyArray_IS_F_CONTIGUOUS(arr)):
        return -1
    cdef int t = cnp.PyArray_TYPE(arr)
    return 0 if t == cnp.NPY_FLOAT else (1 if t == cnp.NPY_DOUBLE else -1)


cdef inline bint same_layout(cnp.ndarray a, cnp.ndarray b) noexcept:
    cdef int nd = cnp.PyArray_NDIM(a)
    return (nd == cnp.PyArray_NDIM(b) and cnp.PyArray_TYPE(a) == cnp.PyArray_TYPE(b)
            and memcmp(cnp.PyArray_DIMS(a), cnp.PyArray_DIMS(b), nd * sizeof(cnp.npy_intp)) == 0
            and memcmp(cnp.PyArray_STRIDES(a), cnp.PyArray_STRIDES(b), nd * sizeof(cnp.npy_intp)) == 0)


cdef inline bint disjoint(cnp.ndarray a, cnp.ndarray b) noexcept:
    """No shared bytes, or the very same elements (in place is fine elementwise)."""
    cdef char *pa = <char *>cnp.PyArray_DATA(a)
    cdef char *pb = <char *>cnp.PyArray_DATA(b)
    return pa == pb or pa + cnp.PyArray_NBYTES(a) <= pb or pb + cnp.PyArray_NBYTES(b) <= pa


cdef inline object fast_out(object out, cnp.ndarray x):
    """A new array like x, or out when the kernel can write it directly; None if not."""
    if out is None:
        return PyArray_NewLikeArray(x, cnp.NPY_KEEPORDER, NULL, 0)
    if type(out) is not np.ndarray:
        return None
    cdef cnp.ndarray o = <cnp.ndarray>out
    if not cnp.PyArray_ISBEHAVED(o) or not same_layout(o, x):
        return None
    return o


cdef inline void load_params(tuple params, double *p) except *:
    cdef Py_ssize_t i
    for i in range(NPARAMS):
        p[i] = 0.0
    for i in range(len(params)):
        p[i] = params[i]


def call1(Py_ssize_t kernel, Py_ssize_t entry, x, out, tuple params):
    """Fast path of the one-input, one-output entries (fwd, grad); None if not taken."""
    cdef int dt = fast_dtype(x)
    if dt < 0:
        return None
    cdef cnp.ndarray xa = <cnp.ndarray>x
    o = fast_out(out, xa)
    if o is None or not disjoint(<cnp.ndarray>o, xa):
        return None
    cdef double p[NPARAMS]
    load_params(params, p)
    cdef kernel_t f = g_table[(kernel * NENTRIES + entry) * 2 + dt]
    cdef Py_ssize_t n = cnp.PyArray_SIZE(xa)
    cdef int nt = threads_for(kernel, n)
    cdef const char *a = <const char *>cnp.PyArray_DATA(xa)
    cdef char *r = <char *>cnp.PyArray_DATA(<cnp.ndarray>o)
    with nogil:
        f(a, NULL, r, NULL, n, p, nt)
    return o


def call2(Py_ssize_t kernel, Py_ssize_t entry, g, x, out, tuple params):
    """Fast path of the two-input, one-output entries (bwd, bwdy); None if not taken."""
    cdef int dt = fast_dtype(x)
    if dt < 0 or fast_dtype(g) != dt or not same_layout(<cnp.ndarray>g, <cnp.ndarray>x):
        return None
    cdef cnp.ndarray xa = <cnp.ndarray>x, ga = <cnp.ndarray>g
    o = fast_out(out, xa)
    if o is None or not disjoint(<cnp.ndarray>o, xa) or not disjoint(<cnp.ndarray>o, ga):
        return None
    cdef double p[NPARAMS]
    load_params(params, p)
    cdef kernel_t f = g_table[(kernel * NENTRIES + entry) * 2 + dt]
    cdef Py_ssize_t n = cnp.PyArray_SIZE(xa)
    cdef int nt = threads_for(kernel, n)
    cdef const char *a = <const char *>cnp.PyArray_DATA(ga)
    cdef const char *b = <const char *>cnp.PyArray_DATA(xa)
    cdef char *r = <char *>cnp.PyArray_DATA(<cnp.ndarray>o)
    with nogil:
        f(a, b, r, NULL, n, p, nt)
    return o


def call_fb(Py_ssize_t kernel, Py_ssize_t entry, x, g, out, grad_out, tuple params):
    """Fast path of forward+backward (fb without g, fbg with g); None if not taken."""
    cdef int dt = fast_dtype(x)
    if dt < 0:
        return None
    cdef cnp.ndarray xa = <cnp.ndarray>x
    cdef cnp.ndarray ga = xa
    if g is not None:
        if fast_dtype(g) != dt or not same_layout(<cnp.ndarray>g, xa):
            return None
        ga = <cnp.ndarray>g
    o1 = fast_out(out, xa)
    o2 = fast_out(grad_out, xa)
    if o1 is None or o2 is None:
        return None
    cdef cnp.ndarray oa = <cnp.ndarray>o1, ob = <cnp.ndarray>o2
    if (not disjoint(oa, xa) or not disjoint(ob, xa) or not disjoint(oa, ga)
            or not disjoint(ob, ga) or cnp.PyArray_DATA(oa) == cnp.PyArray_DATA(ob)
            or not disjoint(oa, ob)):
        return None
    cdef double p[NPARAMS]
    load_params(params, p)
    cdef kernel_t f = g_table[(kernel * NENTRIES + entry) * 2 + dt]
    cdef Py_ssize_t n = cnp.PyArray_SIZE(xa)
    cdef int nt = threads_for(kernel, n)
    cdef const char *a = <const char *>cnp.PyArray_DATA(ga)
    cdef const char *b = <const char *>cnp.PyArray_DATA(xa)
    cdef char *r1 = <char *>cnp.PyArray_DATA(oa)
    cdef char *r2 = <char *>cnp.PyArray_DATA(ob)
    with nogil:
        if g is None:
            f(b, NULL, r1, r2, n, p, nt)
        else:
            f(a, b, r1, r2, n, p, nt)
    return o1, o2


def launch(Py_ssize_t kernel, Py_ssize_t entry, tuple inputs, tuple outputs, tuple params):
    """Run a kernel on arrays fastact._arrays prepared: 1-D, contiguous, aligned, native,
    one dtype (float32 or float64), equal sizes; outputs writable and not overlapping."""
    cdef cnp.ndarray first = <cnp.ndarray>inputs[0]
    cdef int dt = 0 if cnp.PyArray_TYPE(first) == cnp.NPY_FLOAT else 1
    cdef kernel_t f = g_table[(kernel * NENTRIES + entry) * 2 + dt]
    cdef Py_ssize_t n = cnp.PyArray_SIZE(first)
    cdef double p[NPARAMS]
    load_params(params, p)
    cdef const char *a = <const char *>cnp.PyArray_DATA(first)
    cdef const char *b = NULL
    cdef char *r1 = <char *>cnp.PyArray_DATA(<cnp.ndarray>outputs[0])
    cdef char *r2 = NULL
    if len(inputs) > 1:
        b = <const char *>cnp.PyArray_DATA(<cnp.ndarray>inputs[1])
    if len(outputs) > 1:
        r2 = <char *>cnp.PyArray_DATA(<cnp.ndarray>outputs[1])
    cdef int nt = threads_for(kernel, n)
    with nogil:
        f(a, b, r1, r2, n, p, nt)
