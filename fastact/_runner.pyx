# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Launches fastact's compiled kernels: the per-call fast path, thread counts, CPU level.

The kernels themselves live in the per-SIMD-level modules ``_kernels_<level>``; fastact
picks one at import and hands its table of function pointers to ``use_table`` (laid out
by ``_src/fa_table.h``). ``fast`` takes the common case (ndarrays of float32/float64,
contiguous, aligned, native byte order; outputs absent or of the same layout) straight to
a kernel and returns None otherwise; fastact._arrays then prepares the arrays and calls
``launch``. Both end in ``run_kernel``. Large calls run on the thread pool of
``_src/fa_pool.h`` as chunks that any of its threads takes; OpenMP (when the build has
it) gives the default thread count.
"""
cimport numpy as cnp
from cpython.pycapsule cimport PyCapsule_GetPointer
from cpython.ref cimport Py_INCREF
from libc.string cimport memcmp, memset

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

    /* The index in fastact._build_flags.LEVELS: 0 baseline, 1 AVX2 + FMA, 2 AVX-512
     * F/DQ/BW/VL; each with the OS saving the registers (GCC's and MSVC's checks both
     * look at XCR0). */
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

    /* The calling thread's x86 status flags that a subnormal number was read (DE, 1)
     * or produced (UE, 2) since they were last cleared, then cleared; -1 where there
     * is no MXCSR. For tests/test_subnormals.py: either costs a microcode assist. */
    #if defined(__SSE2__) || defined(_M_X64)
    #include <xmmintrin.h>
    static int fa_subnormal_flags(void) {
        unsigned int c = _mm_getcsr();
        _mm_setcsr(c & ~0x3Fu);
        return (int)(((c >> 1) & 1u) | (((c >> 4) & 1u) << 1));
    }
    #else
    static int fa_subnormal_flags(void) { return -1; }
    #endif
    """
    int fa_omp_max_threads() nogil
    int fa_cpu_level()
    int fa_subnormal_flags()
    int FA_RUNNER_OPENMP

cdef extern from "fa_table.h":
    enum:
        FA_NKERNELS
        FA_NENTRIES
        FA_NPARAMS
        FA_NTYPES
    Py_ssize_t FA_SLOT(Py_ssize_t kernel, Py_ssize_t entry, int dtype) noexcept nogil
    int FA_NIN(Py_ssize_t entry) noexcept nogil
    int FA_NOUT(Py_ssize_t entry) noexcept nogil

cdef extern from "numpy/arrayobject.h":
    enum:
        NPY_HALF
        NPY_USERDEF
    object PyArray_NewLikeArray(cnp.ndarray prototype, cnp.NPY_ORDER order, void *descr,
                                int subok)
    object PyArray_NewFromDescr(void *subtype, void *descr, int nd, cnp.npy_intp *dims,
                                cnp.npy_intp *strides, void *data, int flags, void *obj)

ctypedef void (*kernel_t)(const char *a, const char *b, char *o1, char *o2, Py_ssize_t n,
                          const double *p, int stream) noexcept nogil

cdef extern from "fa_pool.h" nogil:
    ctypedef void (*fa_task_t)(void *ctx, Py_ssize_t i) noexcept nogil
    void fa_pool_run(fa_task_t fn, void *ctx, Py_ssize_t nchunks, int nthreads)
    void fa_pool_run_team(fa_task_t fn, void *ctx, Py_ssize_t nchunks, int nthreads)
    int fa_pool_get_team_here()
    void fa_pool_set_team_here(int on)
    void fa_pool_after_fork()
    long long fa_pool_stall_count()
    long long fa_pool_solo_calls()
    void fa_pool_set_solo(long long calls)

cdef enum:
    # elements from which a single-threaded call releases the GIL: below, a call takes a
    # few microseconds at most, and releasing would cost a sixth of a 16-element call
    # (NumPy's loops release it from 500 elements)
    NOGIL_MIN = 1024
    # bytes of a call's input from which its float32 / float64 loops prefetch ahead of
    # what they compute (a kernel's stream argument; _kernels.pyx.in): past the caches
    STREAM_BYTES = 8 << 20
    # rows of a softmax call whose flags (fastact._runner.softmax) go on the stack
    SMX_FEW_ROWS = 256

cdef extern from "fa_softmax_api.h":
    ctypedef struct fa_smx_stats:
        double m, hi, lo, cnt, hi2, lo2
    ctypedef struct fa_smx_consts:
        double m, k1, k2, k3, k4
    ctypedef struct fa_smx_ops:
        void (*rows)(int, int, double, const char *, const char *, char *, char *,
                     Py_ssize_t, Py_ssize_t, unsigned char *) noexcept nogil
        void (*consts)(int, int, const fa_smx_stats *, fa_smx_consts *) noexcept nogil
        double (*max)(const char *, Py_ssize_t, double) noexcept nogil
        void (*sums)(int, int, double, const char *, const char *, char *, Py_ssize_t,
                     fa_smx_stats *) noexcept nogil
        void (*write)(int, int, double, const char *, const char *, char *, char *,
                      Py_ssize_t, const fa_smx_consts *) noexcept nogil
        void (*cols)(int, int, double, const char *, const char *, char *, char *,
                     Py_ssize_t, Py_ssize_t, Py_ssize_t, unsigned char *) noexcept nogil
    void fa_smx_add(fa_smx_stats *row, const fa_smx_stats *blk) noexcept nogil
    enum:
        FA_SMX_BLOCK
        FA_SMX_TILE
        FA_SMX_BWDY
        FA_SMX_FB

ctypedef void (*seg_t)(const char *g, const char *a, const char *b, char *o1, char *o2,
                       char *o3, Py_ssize_t n) noexcept nogil

cdef kernel_t *g_table = NULL
cdef seg_t *g_segs = NULL                # the segment loops (fa_gated.h)
cdef Py_ssize_t g_nsegs = 0
cdef const fa_smx_ops *g_smx = NULL     # the softmax family (fa_softmax.h), by dtype_code
cdef int g_threads = 0                   # 0: follow omp_get_max_threads()
cdef bint g_team = False                 # launch_at's threads: OpenMP's team, not the pool
cdef bint g_forked = False               # in a child after fork()
cdef Py_ssize_t g_grain[FA_NKERNELS]     # per kernel: below this size, one thread
# per kernel: the parameters (bit mask of positions) that must not round to 0 in float32
# (Kernel.nonzero), and the function making the error where one does
cdef unsigned int g_nonzero[FA_NKERNELS]
g_rounding_error = None

OPENMP = bool(FA_RUNNER_OPENMP)


def cpu_level():
    """The best kernel level this CPU runs, as an index in fastact._build_flags.LEVELS."""
    return fa_cpu_level()


def subnormal_flags():
    """The calling thread's x86 flags that a subnormal float was read (bit 0) or
    produced (bit 1) since the last call, then cleared; -1 off x86 (tests only)."""
    return fa_subnormal_flags()


def use_table(capsule, grains, seg_capsule, Py_ssize_t nsegs, smx_capsule):
    """Install a kernel module's tables (kernels, nsegs segment loops, the softmax
    family's) and the per-kernel single-thread thresholds."""
    global g_table, g_segs, g_nsegs, g_smx
    if len(grains) != FA_NKERNELS:
        raise ValueError(f"{len(grains)} thresholds for {FA_NKERNELS} kernels")
    for i, grain in enumerate(grains):
        g_grain[i] = grain
    g_table = <kernel_t *>PyCapsule_GetPointer(capsule, "fastact.kernel_table")
    g_segs = <seg_t *>PyCapsule_GetPointer(seg_capsule, "fastact.segment_table")
    g_nsegs = nsegs
    g_smx = <const fa_smx_ops *>PyCapsule_GetPointer(smx_capsule, "fastact.softmax_table")


def set_nonzero(masks, rounding_error):
    """Install the per-kernel masks of parameters that must not round to 0 in float32,
    and rounding_error(kernel, params, dtype_code) -> the ValueError to raise."""
    global g_rounding_error
    if len(masks) != FA_NKERNELS:
        raise ValueError(f"{len(masks)} masks for {FA_NKERNELS} kernels")
    for i, m in enumerate(masks):
        g_nonzero[i] = m
    g_rounding_error = rounding_error


def set_num_threads(int n):
    """n > 0: use n threads; 0: follow OpenMP's default (OMP_NUM_THREADS, threadpoolctl)."""
    global g_threads
    if n < 0:
        raise ValueError(f"number of threads must be positive, got {n}")
    g_threads = n


def get_num_threads():
    """Threads a large call would use now."""
    if not FA_RUNNER_OPENMP:
        return 1
    return g_threads if g_threads > 0 else fa_omp_max_threads()


def get_thread_setting():
    """The value set_num_threads last stored (0: OpenMP's default)."""
    return g_threads


def pool_backoff():
    """(stalls seen, calls left on the caller alone): the pool's back-off when the cores
    are shared (fa_pool.h); for benchmarks/stalls.py and the tests."""
    return fa_pool_stall_count(), fa_pool_solo_calls()


def set_pool_backoff(long long calls):
    """Run the next `calls` threaded calls on the caller alone, as after a stall (tests)."""
    fa_pool_set_solo(calls)


def set_openmp_team(bint on):
    """Whether launch_at (fastact.torch's calls) and the calls inside on_team run their
    threaded work on the OpenMP runtime's team (fa_pool_run_team) instead of the pool;
    on only with OpenMP, and never in a forked child. Returns the setting in force."""
    global g_team
    g_team = on and FA_RUNNER_OPENMP and not g_forked
    return g_team


def on_team(fn, *args, **kwargs):
    """fn(*args, **kwargs) with this thread's segment loops and softmax calls threaded as
    launch_at's (on OpenMP's team where set_openmp_team is on): fastact.torch's gated
    units and softmax family, which come through the array API."""
    cdef int before = fa_pool_get_team_here()
    fa_pool_set_team_here(1)
    try:
        return fn(*args, **kwargs)
    finally:
        fa_pool_set_team_here(before)


def team_here():
    """Whether the calling thread is inside on_team (tests)."""
    return bool(fa_pool_get_team_here())


cdef inline void pool_run(fa_task_t fn, void *ctx, Py_ssize_t nchunks, int nt) noexcept nogil:
    """fa_pool_run, or fa_pool_run_team inside on_team when the team is on."""
    if g_team and fa_pool_get_team_here():
        fa_pool_run_team(fn, ctx, nchunks, nt)
    else:
        fa_pool_run(fn, ctx, nchunks, nt)


def after_fork_in_child():
    """Registered with os.register_at_fork(after_in_child=...): the pool's workers are not
    in the child (the next large call starts new ones), nor is OpenMP's team."""
    global g_team, g_forked
    fa_pool_after_fork()
    g_team, g_forked = False, True


cdef inline int threads_for(Py_ssize_t kernel, Py_ssize_t n) noexcept nogil:
    if n < g_grain[kernel] or not FA_RUNNER_OPENMP:
        return 1
    return g_threads if g_threads > 0 else fa_omp_max_threads()


cdef inline Py_ssize_t chunk_size(Py_ssize_t kernel, Py_ssize_t n, int nt) noexcept nogil:
    """Elements per chunk of a threaded call of n elements: about 8 chunks per thread (a
    descheduled thread's are left to the others), at most 64K elements (so is what one
    holds up), at least a quarter of the kernel's thread threshold (taking a chunk costs
    ~0.1 us), in whole KiB-element steps."""
    cdef Py_ssize_t c = min((n + 8 * nt - 1) // (8 * nt), <Py_ssize_t>65536)
    c = max(c, g_grain[kernel] // 4)
    return (c + 1023) // 1024 * 1024


cdef int g_bf16_num = -1                 # ml_dtypes.bfloat16's type number, once seen


cdef inline int dtype_code(cnp.ndarray arr) noexcept:
    """The kernel table's dtype: 0 float32, 1 float64, 2 float16, 3 bfloat16; -1 other."""
    global g_bf16_num
    cdef int t = cnp.PyArray_TYPE(arr)
    if t == cnp.NPY_FLOAT:
        return 0
    if t == cnp.NPY_DOUBLE:
        return 1
    if t == NPY_HALF:
        return 2
    if t == g_bf16_num:
        return 3
    if g_bf16_num < 0 and t >= NPY_USERDEF:
        try:
            from fastact._arrays import is_bfloat16      # once: the number is kept
            if is_bfloat16(arr.dtype):
                g_bf16_num = t
                return 3
        except Exception:
            pass
    return -1


def view_at(size_t address, shape, strides, dtype, base):
    """A writable ndarray of dtype (an np.dtype) at address, of shape and strides (in
    elements), keeping base alive: fastact.torch's view of a tensor's memory (its
    caller's guarantee that the memory is there; np.asarray of an __array_interface__,
    the other way, costs about ten times more)."""
    cdef cnp.npy_intp dims[64]
    cdef cnp.npy_intp st[64]
    cdef int k, nd = len(shape)
    cdef cnp.dtype d = <cnp.dtype?>dtype
    if nd > 64 or len(strides) != nd:
        raise ValueError(f"view_at: shape {shape}, strides {strides}")
    for k in range(nd):
        dims[k] = shape[k]
        st[k] = strides[k] * d.itemsize
    Py_INCREF(d)                    # PyArray_NewFromDescr takes a reference to d
    arr = PyArray_NewFromDescr(<void *>np.ndarray, <void *>d, nd, dims, st,
                               <void *>address, cnp.NPY_ARRAY_WRITEABLE, NULL)
    cnp.set_array_base(<cnp.ndarray>arr, base)
    return arr


def dtype_index(a):
    """dtype_code of an ndarray: its index on the kernel tables' dtype axis, or -1."""
    return dtype_code(<cnp.ndarray?>a)


cdef inline int fast_dtype(object a) noexcept:
    """The dtype code (dtype_code) of an ndarray the kernels take as it is (ndim >= 1,
    C- or F-contiguous, aligned, native byte order); -1 otherwise."""
    if type(a) is not cnp.ndarray:          # the C type: no lookup of np.ndarray
        return -1
    cdef cnp.ndarray arr = <cnp.ndarray>a
    if cnp.PyArray_NDIM(arr) == 0 or not cnp.PyArray_ISBEHAVED_RO(arr):
        return -1
    if not (cnp.PyArray_IS_C_CONTIGUOUS(arr) or cnp.PyArray_IS_F_CONTIGUOUS(arr)):
        return -1
    return dtype_code(arr)


cdef inline bint same_layout(cnp.ndarray a, cnp.ndarray b) noexcept:
    cdef int nd = cnp.PyArray_NDIM(a)
    return (nd == cnp.PyArray_NDIM(b) and cnp.PyArray_TYPE(a) == cnp.PyArray_TYPE(b)
            and memcmp(cnp.PyArray_DIMS(a), cnp.PyArray_DIMS(b), nd * sizeof(cnp.npy_intp)) == 0
            and memcmp(cnp.PyArray_STRIDES(a), cnp.PyArray_STRIDES(b), nd * sizeof(cnp.npy_intp)) == 0)


cdef inline char *data(object a) noexcept:
    return <char *>cnp.PyArray_DATA(<cnp.ndarray>a)


cdef inline bint apart(object a, object b) noexcept:
    """No shared bytes (a and b ndarrays)."""
    cdef char *pa = data(a)
    cdef char *pb = data(b)
    return (pa + cnp.PyArray_NBYTES(<cnp.ndarray>a) <= pb
            or pb + cnp.PyArray_NBYTES(<cnp.ndarray>b) <= pa)


cdef inline bint disjoint(object a, object b) noexcept:
    """No shared bytes, or the very same elements (in place is fine elementwise)."""
    return data(a) == data(b) or apart(a, b)


cdef inline object fast_out(object out, cnp.ndarray x):
    """A new array like x, or out when the kernel can write it directly; None if not."""
    if out is None:
        return PyArray_NewLikeArray(x, cnp.NPY_KEEPORDER, NULL, 0)
    if type(out) is not cnp.ndarray:
        return None
    cdef cnp.ndarray o = <cnp.ndarray>out
    if not cnp.PyArray_ISBEHAVED(o) or not same_layout(o, x):
        return None
    return o


cdef inline const char *at(const char *p, Py_ssize_t off) noexcept nogil:
    """p + off, or NULL for NULL (an argument the call does not have)."""
    if p == NULL:
        return NULL
    return p + off


cdef struct elem_job:
    kernel_t f
    const char *a
    const char *b
    char *o1
    char *o2
    const double *p
    Py_ssize_t n, chunk, isz
    int stream


cdef void elem_chunk(void *ctx, Py_ssize_t c) noexcept nogil:
    """Chunk c of an elementwise call (fa_pool_run's task)."""
    cdef elem_job *j = <elem_job *>ctx
    cdef Py_ssize_t start = c * j.chunk
    cdef Py_ssize_t off = start * j.isz
    j.f(j.a + off, at(j.b, off), j.o1 + off, <char *>at(j.o2, off),
        min(j.chunk, j.n - start), j.p, j.stream)


cdef int run_kernel(Py_ssize_t kernel, Py_ssize_t entry, int dt, Py_ssize_t n,
                    const char *a, const char *b, char *o1, char *o2,
                    tuple params, bint team=False) except -1:
    """The one launch: look kernel x entry x dtype up in the table and run it on n
    elements (inputs a, b; outputs o1, o2; NULL where the entry has fewer); threaded on
    the pool, or with team on OpenMP's team."""
    cdef Py_ssize_t i, np_ = len(params)
    cdef double p[FA_NPARAMS]
    if not (0 <= kernel < FA_NKERNELS and 0 <= entry < FA_NENTRIES) or g_table == NULL \
            or np_ > FA_NPARAMS:
        raise ValueError(f"no kernel {kernel}, entry {entry} with {np_} parameters")
    cdef kernel_t f = g_table[FA_SLOT(kernel, entry, dt)]
    if f == NULL:
        raise ValueError(f"kernel {kernel} has no entry {entry}")
    for i in range(FA_NPARAMS):
        p[i] = <double>params[i] if i < np_ else 0.0
    if dt != 1 and g_nonzero[kernel]:            # computed in float32
        for i in range(np_):
            if (g_nonzero[kernel] >> i) & 1 and p[i] != 0 and <float>p[i] == 0:
                raise g_rounding_error(kernel, params, dt)
    cdef int nt = threads_for(kernel, n)
    cdef elem_job j
    j.isz = 4 if dt == 0 else 8 if dt == 1 else 2
    j.stream = n * j.isz >= STREAM_BYTES
    if nt == 1:
        if n < NOGIL_MIN:
            f(a, b, o1, o2, n, p, 0)
        else:
            with nogil:
                f(a, b, o1, o2, n, p, j.stream)
        return 0
    j.f, j.a, j.b, j.o1, j.o2, j.p, j.n = f, a, b, o1, o2, p, n
    j.chunk = chunk_size(kernel, n, nt)
    with nogil:
        if team:
            fa_pool_run_team(elem_chunk, &j, (n + j.chunk - 1) // j.chunk, nt)
        else:
            pool_run(elem_chunk, &j, (n + j.chunk - 1) // j.chunk, nt)
    return 0


def fast(Py_ssize_t kernel, Py_ssize_t entry, a, b, o1, o2, tuple params):
    """entry of kernel on the kernel's own slots, inputs a, b and outputs o1, o2 (None:
    allocated; a slot the entry does not have is ignored), when they are the common case:
    ndarrays of float32, float64, float16 or bfloat16, ndim >= 1, C- or F-contiguous, aligned, native byte
    order, the inputs of one layout and dtype, the outputs writable, of that layout too,
    and overlapping no input (except as the very same elements: in place) nor each other.
    The result (a tuple for two outputs), or None for fastact._arrays to take the call."""
    if not 0 <= entry < FA_NENTRIES:
        return None
    cdef bint two_in = FA_NIN(entry) == 2, two_out = FA_NOUT(entry) == 2
    x = b if two_in else a                  # the last input: the layout of all
    cdef int dt = fast_dtype(x)
    if dt < 0:
        return None
    cdef cnp.ndarray xa = <cnp.ndarray>x
    if two_in and (fast_dtype(a) != dt or not same_layout(<cnp.ndarray>a, xa)):
        return None
    r1 = fast_out(o1, xa)
    if r1 is None or not disjoint(r1, xa) or not disjoint(r1, a):
        return None
    r2 = None
    if two_out:
        r2 = fast_out(o2, xa)
        if r2 is None or not disjoint(r2, xa) or not disjoint(r2, a) or not apart(r1, r2):
            return None
    run_kernel(kernel, entry, dt, cnp.PyArray_SIZE(xa), data(a), data(x) if two_in else NULL,
               data(r1), data(r2) if two_out else NULL, params)
    return (r1, r2) if two_out else r1


def launch(Py_ssize_t kernel, Py_ssize_t entry, tuple inputs, tuple outputs, tuple params):
    """entry of kernel on arrays fastact._arrays prepared: 1-D, contiguous, aligned,
    native, one dtype (float32, float64, float16, bfloat16), equal sizes; outputs writable and not
    overlapping."""
    cdef cnp.ndarray first = <cnp.ndarray?>inputs[0]
    cdef int t = dtype_code(first)
    if t < 0:
        raise TypeError(f"launch takes float32, float64, float16 or bfloat16 arrays, "
                        f"got {first.dtype}")
    run_kernel(kernel, entry, t, cnp.PyArray_SIZE(first), data(first),
               data(<cnp.ndarray?>inputs[1]) if len(inputs) > 1 else NULL,
               data(<cnp.ndarray?>outputs[0]),
               data(<cnp.ndarray?>outputs[1]) if len(outputs) > 1 else NULL, params)


def launch_at(Py_ssize_t kernel, Py_ssize_t entry, int dt, Py_ssize_t n, size_t a, size_t b,
              size_t o1, size_t o2, tuple params):
    """entry of kernel on n elements of dtype code dt (dtype_code's) at the addresses a, b
    (inputs) and o1, o2 (outputs; 0 where the entry has no such slot): fastact.torch's
    launch on the memory of dense CPU tensors of one dtype and layout (the caller's
    guarantee: nothing here can check an address), without NumPy views of them, whose
    cost was most of a small call's; threaded on OpenMP's team where set_openmp_team
    says so."""
    if not (0 <= dt <= 3 and n >= 0):
        raise ValueError(f"launch_at: dtype code {dt}, {n} elements")
    run_kernel(kernel, entry, dt, n, <const char *>a, <const char *>b, <char *>o1,
               <char *>o2, params, g_team)


# ---- segment loops: the gated units and prelu (fastact/_src/fa_gated.h) ----

cdef struct slot_t:
    # where a call's array k is for element (row r, column j) of block b:
    # base + b * blk + (r % mod if mod else r) * row + j * col (bytes); NULL: unused
    char *base
    Py_ssize_t row, col, blk, mod


cdef void walk(seg_t f, const slot_t *s, Py_ssize_t m, Py_ssize_t start, Py_ssize_t end,
               Py_ssize_t b) noexcept nogil:
    """Elements start..end of a call (row-major over rows of m), in runs within a row."""
    cdef Py_ssize_t r = start // m, j = start - r * m, stop, k, rr
    cdef char *p[6]
    while start < end:
        stop = m if m - j < end - start else j + (end - start)
        for k in range(6):
            if s[k].base == NULL:
                p[k] = NULL
            else:
                rr = r % s[k].mod if s[k].mod > 0 else r
                p[k] = s[k].base + b * s[k].blk + rr * s[k].row + j * s[k].col
        f(p[0], p[1], p[2], p[3], p[4], p[5], stop - j)
        start += stop - j
        j = 0
        r += 1


cdef struct seg_job:
    seg_t f
    const slot_t *s
    Py_ssize_t m, block, total


cdef void seg_chunk(void *ctx, Py_ssize_t b) noexcept nogil:
    """Block b of a segment loop's call (fa_pool_run's task)."""
    cdef seg_job *j = <seg_job *>ctx
    walk(j.f, j.s, j.m, b * j.block, min(j.total, (b + 1) * j.block), b)


cdef void run_segments(seg_t f, const slot_t *s, Py_ssize_t m, Py_ssize_t total,
                       Py_ssize_t block, Py_ssize_t kernel, int nt) noexcept nogil:
    """A segment loop's call of total > 0 elements on nt threads, in blocks of block
    elements (0: the pool's chunks, for loops whose elements are independent)."""
    cdef seg_job j
    if block == 0:
        block = chunk_size(kernel, total, nt) if nt > 1 else total
    j.f, j.s, j.m, j.block, j.total = f, s, m, block, total
    pool_run(seg_chunk, &j, (total + block - 1) // block, nt)


def segments(Py_ssize_t seg, int dt, Py_ssize_t kernel, tuple slots, Py_ssize_t total,
             Py_ssize_t m, Py_ssize_t block):
    """Run segment loop seg (fastact._activations.SEGMENTS) for dtype dt (dtype_code's:
    0 float32, 1 float64, 2 float16, 3 bfloat16) over total elements in rows of m, as fixed blocks of block elements
    (threads take whole blocks: what each block computes does not depend on the thread
    count), or with block 0 in chunks of the pool's size (loops whose elements are
    independent). slots: six (ndarray, row, col, blk, mod) or None, for g, a, b, o1, o2, o3;
    the thread threshold is the elementwise kernel's."""
    cdef slot_t s[6]
    cdef Py_ssize_t k
    if g_segs == NULL or not 0 <= seg < g_nsegs or len(slots) != 6 or m <= 0 or block < 0:
        raise ValueError(f"no segment loop {seg} for these arguments")
    for k in range(6):
        if slots[k] is None:
            s[k].base = NULL
            s[k].row = s[k].col = s[k].blk = s[k].mod = 0
        else:
            arr, s[k].row, s[k].col, s[k].blk, s[k].mod = slots[k]
            s[k].base = data(<cnp.ndarray?>arr)
    if not 0 <= dt < FA_NTYPES:
        raise ValueError(f"no dtype {dt}")
    cdef seg_t f = g_segs[FA_NTYPES * seg + dt]
    cdef int nt = threads_for(kernel, total)
    if total == 0:
        return
    if total < NOGIL_MIN and nt == 1:
        run_segments(f, s, m, total, block, kernel, 1)
        return
    with nogil:
        run_segments(f, s, m, total, block, kernel, nt)


cdef inline void view_slot(slot_t *s, object v) noexcept:
    """A 2-D view (rows, m) with contiguous rows (or None) as a slot."""
    cdef cnp.ndarray arr
    if v is None:
        s.base = NULL
        s.row = s.col = s.blk = s.mod = 0
        return
    arr = <cnp.ndarray>v
    s.base = <char *>cnp.PyArray_DATA(arr)
    s.row = cnp.PyArray_STRIDES(arr)[0]
    s.col = cnp.PyArray_ITEMSIZE(arr)
    s.blk = s.mod = 0


def gated(Py_ssize_t seg, Py_ssize_t kernel, g, a, b, o1, o2, o3):
    """segments() for the gated units: 2-D views (rows, m) of one dtype with contiguous
    rows (fastact._gated makes them), None where unused; in chunks of the pool's size."""
    cdef slot_t s[6]
    cdef Py_ssize_t rows, m, k, total
    views = (g, a, b, o1, o2, o3)
    for k in range(6):
        v = views[k]
        if v is not None and (type(v) is not np.ndarray or cnp.PyArray_NDIM(<cnp.ndarray>v) != 2
                              or cnp.PyArray_TYPE(<cnp.ndarray>v) != cnp.PyArray_TYPE(<cnp.ndarray?>a)
                              or cnp.PyArray_DIMS(<cnp.ndarray>v)[0] != cnp.PyArray_DIMS(<cnp.ndarray>a)[0]
                              or cnp.PyArray_DIMS(<cnp.ndarray>v)[1] != cnp.PyArray_DIMS(<cnp.ndarray>a)[1]
                              or (cnp.PyArray_DIMS(<cnp.ndarray>v)[1] > 1 and
                                  cnp.PyArray_STRIDES(<cnp.ndarray>v)[1] != cnp.PyArray_ITEMSIZE(<cnp.ndarray>v))):
            raise ValueError("gated: views of one shape and dtype with contiguous rows")
        view_slot(&s[k], v)
    rows, m = cnp.PyArray_DIMS(<cnp.ndarray>a)[0], cnp.PyArray_DIMS(<cnp.ndarray>a)[1]
    total = rows * m
    if total == 0:
        return
    cdef int t = dtype_code(<cnp.ndarray>a)
    if g_segs == NULL or not 0 <= seg < g_nsegs or t < 0:
        raise ValueError(f"no segment loop {seg} for these arguments")
    cdef seg_t f = g_segs[FA_NTYPES * seg + t]
    cdef int nt = threads_for(kernel, total)
    if total < NOGIL_MIN and nt == 1:
        walk(f, s, m, 0, total, 0)
        return
    with nogil:
        run_segments(f, s, m, total, 0, kernel, nt)


# ---- the softmax family (fastact/_src/fa_softmax_api.h) ----

cdef double max_nan(double a, double b) noexcept nogil:
    """max with NaN sticky"""
    return b if (b > a or b != b) else a


cdef struct smx_job:
    # one softmax call's arguments, for the tasks below (fa_pool_run's)
    const fa_smx_ops *ops
    int log, op
    double sign, m
    const char *x
    const char *g
    char *o1
    char *o2
    Py_ssize_t n, isz, count, per_chunk, per, w, inner
    double *maxes
    fa_smx_stats *st
    const fa_smx_consts *c
    unsigned char *flags


cdef void smx_max(void *ctx, Py_ssize_t b) noexcept nogil:
    """Block b of a long row: its max."""
    cdef smx_job *j = <smx_job *>ctx
    cdef Py_ssize_t off = b * FA_SMX_BLOCK
    j.maxes[b] = j.ops.max(j.x + off * j.isz, min(j.n - off, <Py_ssize_t>FA_SMX_BLOCK), j.sign)


cdef void smx_sums(void *ctx, Py_ssize_t b) noexcept nogil:
    """Block b of a long row: its sums, about the row's max."""
    cdef smx_job *j = <smx_job *>ctx
    cdef Py_ssize_t off = b * FA_SMX_BLOCK
    j.st[b].m = j.m
    j.ops.sums(j.log, j.op, j.sign, j.x + off * j.isz, at(j.g, off * j.isz),
               j.o1 + off * j.isz, min(j.n - off, <Py_ssize_t>FA_SMX_BLOCK), &j.st[b])


cdef void smx_write(void *ctx, Py_ssize_t b) noexcept nogil:
    """Block b of a long row: its outputs."""
    cdef smx_job *j = <smx_job *>ctx
    cdef Py_ssize_t off = b * FA_SMX_BLOCK
    j.ops.write(j.log, j.op, j.sign, j.x + off * j.isz, at(j.g, off * j.isz),
                j.o1 + off * j.isz, <char *>at(j.o2, off * j.isz),
                min(j.n - off, <Py_ssize_t>FA_SMX_BLOCK), j.c)


cdef void smx_rows(void *ctx, Py_ssize_t c) noexcept nogil:
    """Rows c * per_chunk onwards (of count), each whole."""
    cdef smx_job *j = <smx_job *>ctx
    cdef Py_ssize_t r = c * j.per_chunk, off = r * j.n * j.isz
    j.ops.rows(j.log, j.op, j.sign, j.x + off, at(j.g, off), j.o1 + off,
               <char *>at(j.o2, off), j.n, min(j.count - r, j.per_chunk), j.flags + r)


cdef void smx_tiles(void *ctx, Py_ssize_t c) noexcept nogil:
    """Tiles c * per_chunk onwards (of count): w columns of one outer index each."""
    cdef smx_job *j = <smx_job *>ctx
    cdef Py_ssize_t tt, o, j0, off
    for tt in range(c * j.per_chunk, min(j.count, (c + 1) * j.per_chunk)):
        o = tt // j.per
        j0 = (tt % j.per) * j.w
        off = (o * j.n * j.inner + j0) * j.isz
        j.ops.cols(j.log, j.op, j.sign, j.x + off, at(j.g, off), j.o1 + off,
                   <char *>at(j.o2, off), j.n, min(j.w, j.inner - j0), j.inner,
                   j.flags + o * j.inner + j0)


cdef int long_row(smx_job *j, int nt) noexcept nogil:
    """One row (j.x, j.n) with the threads within it: each pass over fixed blocks
    (FA_SMX_BLOCK), combined in order, as ops.row does on one thread (the same bits).
    1 if special."""
    cdef Py_ssize_t b, nb = (j.n + FA_SMX_BLOCK - 1) // FA_SMX_BLOCK
    cdef fa_smx_stats total
    cdef fa_smx_consts c
    j.m = 0
    if j.op != FA_SMX_BWDY:
        pool_run(smx_max, j, nb, nt)
        j.m = j.maxes[0]
        for b in range(1, nb):
            j.m = max_nan(j.m, j.maxes[b])
        if not (j.m - j.m == 0):        # NaN or +-inf
            return 1
    pool_run(smx_sums, j, nb, nt)
    total.m = j.m
    total.hi = total.lo = total.cnt = total.hi2 = total.lo2 = 0
    for b in range(nb):
        fa_smx_add(&total, &j.st[b])
    j.ops.consts(j.log, j.op, &total, &c)
    j.c = &c
    pool_run(smx_write, j, nb, nt)
    return 0


cdef inline char *data_or_null(object a) noexcept:
    return NULL if a is None else data(a)


def softmax(bint log, double sign, int op, Py_ssize_t kernel, x, g, o1, o2):
    """op (fa_softmax_api.h: fwd, bwdy, bwdx, fb) of softmax (log_softmax if log) of
    sign * x along axis 1 of 3-D C-contiguous views (outer, n, inner) of one dtype
    (x is y for bwdy; g grad_output or None; o2 None but for fb). Threads as the
    elementwise kernel's threshold says: over rows, within a few long rows, or over
    tiles of columns. Returns the flat indices (o * inner + i) of the rows it left
    unwritten (a NaN, or a max of +-inf: fastact._softmax applies the rules), or None."""
    cdef cnp.ndarray xa = <cnp.ndarray?>x
    cdef int t = dtype_code(xa)
    if g_smx == NULL or cnp.PyArray_NDIM(xa) != 3 or not cnp.PyArray_IS_C_CONTIGUOUS(xa) \
            or t < 0:
        raise ValueError("softmax: 3-D C-contiguous float32/float64/float16/bfloat16 views")
    for v in (g, o1, o2):
        if v is not None and (type(v) is not np.ndarray or not same_layout(<cnp.ndarray>v, xa)):
            raise ValueError("softmax: the views must share x's shape, dtype and layout")
    return smx_compute(t, log, sign, op, kernel, data(x), data_or_null(g), data(o1),
                       data_or_null(o2), cnp.PyArray_DIMS(xa)[0], cnp.PyArray_DIMS(xa)[1],
                       cnp.PyArray_DIMS(xa)[2])


def softmax_fast(bint log, double sign, int op, Py_ssize_t kernel, x, g, o1, o2, axis):
    """fastact._softmax.run's common case straight to the kernels (as ``fast`` for the
    elementwise): x (and g) ndarrays of one dtype the kernels take (fast_dtype),
    C-contiguous, of one shape, not empty; axis an int in range or None (the flat array);
    o1 (and o2 for fb) None (allocated) or writable ndarrays of x's layout, sharing no
    byte with an input or each other; g given for fb. Returns (r1, r2, special): the
    results (r2 None but for fb) and softmax's special rows of the 3-D view; None for the
    general path."""
    cdef int t = fast_dtype(x)
    if t < 0 or g_smx == NULL or (op == FA_SMX_FB and g is None):
        return None
    cdef cnp.ndarray xa = <cnp.ndarray>x
    if not cnp.PyArray_IS_C_CONTIGUOUS(xa) or cnp.PyArray_SIZE(xa) == 0:
        return None
    if g is not None and (fast_dtype(g) != t or not same_layout(<cnp.ndarray>g, xa)):
        return None
    cdef int nd = cnp.PyArray_NDIM(xa), ax, k
    cdef Py_ssize_t outer = 1, n = cnp.PyArray_SIZE(xa), inner = 1
    if axis is not None:
        if type(axis) is not int or not -nd <= axis < nd:
            return None
        ax = axis % nd
        n = cnp.PyArray_DIMS(xa)[ax]
        for k in range(ax):
            outer *= cnp.PyArray_DIMS(xa)[k]
        for k in range(ax + 1, nd):
            inner *= cnp.PyArray_DIMS(xa)[k]
    r1 = fast_out(o1, xa)
    if r1 is None or not apart(r1, xa) or (g is not None and not apart(r1, g)):
        return None
    r2 = None
    if op == FA_SMX_FB:
        r2 = fast_out(o2, xa)
        if r2 is None or not apart(r2, xa) or not apart(r2, g) or not apart(r1, r2):
            return None
    special = smx_compute(t, log, sign, op, kernel, data(xa), data_or_null(g), data(r1),
                          data_or_null(r2), outer, n, inner)
    return r1, r2, special


def softmax_at(bint log, double sign, int op, Py_ssize_t kernel, int t, size_t x, size_t g,
               size_t o1, size_t o2, Py_ssize_t outer, Py_ssize_t n, Py_ssize_t inner):
    """softmax on raw memory (fastact.torch's dense tensors, as launch_at): C-contiguous
    (outer, n, inner) data of dtype code t at these addresses (g, o2: 0 where absent)."""
    if g_smx == NULL or not 0 <= t < 4 or outer < 0 or n < 0 or inner < 0:
        raise ValueError("softmax_at: a dtype code of the kernels and sizes >= 0")
    return smx_compute(t, log, sign, op, kernel, <const char *>x, <const char *>g,
                       <char *>o1, <char *>o2, outer, n, inner)


cdef object smx_compute(int t, bint log, double sign, int op, Py_ssize_t kernel,
                        const char *x, const char *g, char *o1, char *o2, Py_ssize_t outer,
                        Py_ssize_t n, Py_ssize_t inner):
    """softmax's work on (outer, n, inner) C-contiguous data of dtype code t: the rows it
    left, as softmax returns them."""
    cdef Py_ssize_t isz = 4 if t == 0 else 8 if t == 1 else 2
    cdef Py_ssize_t total = outer * n * inner, r, w, chunk, nb
    cdef const char *x0
    cdef const char *g0
    cdef char *p10
    cdef char *p20
    if total == 0:
        return None
    cdef smx_job j
    j.ops, j.log, j.op, j.sign, j.n, j.isz, j.inner = &g_smx[t], log, op, sign, n, isz, inner
    j.x, j.g, j.o1, j.o2 = x, g, o1, o2
    cdef unsigned char few[SMX_FEW_ROWS]        # the rows' flags, on the stack when few
    cdef Py_ssize_t nrows = outer * inner
    flags_arr = None
    if nrows <= SMX_FEW_ROWS:
        memset(few, 0, nrows)
        j.flags = few
    else:
        flags_arr = np.zeros(nrows, np.uint8)
        j.flags = <unsigned char *>cnp.PyArray_DATA(<cnp.ndarray>flags_arr)
    cdef int nt = threads_for(kernel, total)
    chunk = chunk_size(kernel, total, nt) if nt > 1 else total
    if inner == 1 and nt > 1 and outer < 2 * nt and n >= 2 * FA_SMX_BLOCK:
        nb = (n + FA_SMX_BLOCK - 1) // FA_SMX_BLOCK
        maxes_arr = np.empty(nb)
        st_arr = np.empty((nb, 6))
        j.maxes = <double *>cnp.PyArray_DATA(<cnp.ndarray>maxes_arr)
        j.st = <fa_smx_stats *>cnp.PyArray_DATA(<cnp.ndarray>st_arr)
        x0, g0, p10, p20 = j.x, j.g, j.o1, j.o2
        with nogil:
            for r in range(outer):
                j.x, j.g = x0 + r * n * isz, at(g0, r * n * isz)
                j.o1, j.o2 = p10 + r * n * isz, <char *>at(p20, r * n * isz)
                j.flags[r] = long_row(&j, nt)
    elif inner == 1:
        j.count, j.per_chunk = outer, max(1, chunk // n)
        with nogil:
            pool_run(smx_rows, &j, (outer + j.per_chunk - 1) // j.per_chunk, nt)
    else:
        # tiles of w columns (as wide as the tile allows: rows of 4 KiB stream well;
        # 16 KiB-strided rows of 64 bytes did not), enough of them for the threads
        w = min(<Py_ssize_t>FA_SMX_TILE, inner)
        if outer * ((inner + w - 1) // w) < nt:
            w = min(inner, max(4, ((inner + nt - 1) // nt + 3) // 4 * 4))
        j.w, j.per = w, (inner + w - 1) // w
        j.count, j.per_chunk = outer * j.per, max(1, chunk // (w * n))
        with nogil:
            pool_run(smx_tiles, &j, (j.count + j.per_chunk - 1) // j.per_chunk, nt)
    if flags_arr is not None:
        special = np.flatnonzero(flags_arr)
        return special if special.size else None
    special = [r for r in range(nrows) if j.flags[r]]
    return np.array(special, np.intp) if special else None
