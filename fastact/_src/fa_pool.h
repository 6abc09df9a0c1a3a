/* fastact's thread pool: a call's work as numbered chunks, taken one at a time by
 * whichever thread is running (the caller and the pool's workers), so that a thread the
 * operating system has descheduled leaves its share to the others instead of holding the
 * call up, as a static split (OpenMP's parallel loop) does: the caller waits only for the
 * chunks a thread has started, never for a thread that has not turned up.
 *
 * fa_pool_run(fn, ctx, nchunks, nthreads) runs fn(ctx, i) for every i < nchunks on up to
 * nthreads threads and returns when all have finished. What a chunk computes must not
 * depend on who runs it (then the results are the same bits for any schedule). Workers
 * are started on first use; an idle worker spins for FA_POOL_SPIN_NS (catching a caller's
 * next call without a wake-up), then sleeps on a condition variable. One caller at a time
 * owns the pool; a second caller meanwhile (another Python thread) runs its chunks itself.
 * After fork(), the child calls fa_pool_after_fork(): the workers are not in the child,
 * and the next call starts new ones.
 *
 * When the cores are shared (another process wants them too), a worker can be taken off
 * its core while it holds a chunk, and the caller, which must wait for every started chunk
 * to finish before the call returns, waits a scheduler slice (milliseconds). The caller
 * times that wait. When it took longer than the chunks the others ran would have taken
 * the caller (at its own pace, plus FA_POOL_STALL_NS), the threads cost the call more than
 * they saved, and the pool backs off: the next calls run their chunks on the caller alone
 * (FA_POOL_SOLO_MIN calls, doubling up to FA_POOL_SOLO_MAX while stalls recur; back to the
 * minimum after FA_POOL_CLEAN threaded calls without one), and one call in a few hundred
 * probes the threads again. Long calls (more than FA_POOL_LONG chunks per thread: at 2
 * threads from 4M elements), which a slice costs little of, keep their threads.
 *
 * On Linux a worker that starts a job on the caller's CPU moves off it (fa_pool_leave_cpu):
 * sharing one CPU, the two would take a call in the time of one thread.
 *
 * POSIX threads, or Win32 threads and Interlocked atomics on Windows. */
#ifndef FA_POOL_H
#define FA_POOL_H

#include <stddef.h>

typedef void (*fa_task_t)(void *ctx, ptrdiff_t i);

#define FA_POOL_MAX 255                 /* workers (8 bits of the ticket) */
#define FA_POOL_SPIN_NS 20000           /* an idle worker's spin before it sleeps */
#define FA_POOL_STALL_NS 50000          /* a stall: the wait for others' chunks took this */
#define FA_POOL_SOLO_MIN 256            /* calls on the caller alone after a stall */
#define FA_POOL_SOLO_MAX 8192
#define FA_POOL_CLEAN 64                /* threaded calls without a stall: back to the min */
#define FA_POOL_LONG 32                 /* chunks per thread of a call that keeps its threads */

#ifdef _WIN32
#include <windows.h>
typedef volatile LONG64 fa_atomic;
#define FA_LOAD(p) InterlockedCompareExchange64((p), 0, 0)
#define FA_STORE(p, v) ((void)InterlockedExchange64((p), (v)))
#define FA_ADD(p, v) InterlockedExchangeAdd64((p), (v))
#define FA_CAS(p, old, new_) (InterlockedCompareExchange64((p), (new_), (old)) == (old))
#define FA_PAUSE() YieldProcessor()
typedef HANDLE fa_thread_t;
static SRWLOCK fa_pool_lock = SRWLOCK_INIT;
static CONDITION_VARIABLE fa_pool_cond = CONDITION_VARIABLE_INIT;
#define FA_LOCK() AcquireSRWLockExclusive(&fa_pool_lock)
#define FA_UNLOCK() ReleaseSRWLockExclusive(&fa_pool_lock)
#define FA_WAIT() SleepConditionVariableSRW(&fa_pool_cond, &fa_pool_lock, INFINITE, 0)
#define FA_WAKE_ALL() WakeAllConditionVariable(&fa_pool_cond)
static long long fa_pool_now_ns(void) {
    LARGE_INTEGER t, f;
    QueryPerformanceCounter(&t);
    QueryPerformanceFrequency(&f);
    return (long long)((double)t.QuadPart * 1e9 / (double)f.QuadPart);
}
#else
#include <pthread.h>
#include <time.h>
typedef long long fa_atomic;
#define FA_LOAD(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define FA_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define FA_ADD(p, v) __atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST)
static inline int fa_cas(fa_atomic *p, long long old, long long new_) {
    return __atomic_compare_exchange_n(p, &old, new_, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
#define FA_CAS(p, old, new_) fa_cas((p), (old), (new_))
#if defined(__x86_64__) || defined(__i386__)
#define FA_PAUSE() __builtin_ia32_pause()
#elif defined(__aarch64__) || defined(__arm__)
#define FA_PAUSE() __asm__ __volatile__("yield")
#else
#define FA_PAUSE() ((void)0)
#endif
typedef pthread_t fa_thread_t;
#if defined(__linux__) && defined(_GNU_SOURCE)    /* (Python.h defines it) */
#include <sched.h>
/* Off the caller's CPU: a woken worker can be put on its waker's CPU (the caller's, seen
 * on a 2-vCPU VM after idle gaps of 10 ms or more: the two then share that CPU and a call
 * takes the time of one thread, for many calls); the worker moves itself away by its
 * affinity without that CPU, then takes its own affinity back (it stays where it went).
 * Where a move leaves the CPU number unchanged (a sandbox that reports one CPU number, or
 * that ignores affinity), the workers stop trying: the syscalls would buy nothing. */
#define FA_CPU() sched_getcpu()
static fa_atomic fa_pool_moves_work = 1;
static void fa_pool_leave_cpu(int cpu) {
    cpu_set_t own, other;
    pthread_t self = pthread_self();
    if (cpu < 0 || cpu >= CPU_SETSIZE || pthread_getaffinity_np(self, sizeof own, &own) != 0)
        return;
    other = own;
    CPU_CLR(cpu, &other);
    if (CPU_COUNT(&other) > 0 && pthread_setaffinity_np(self, sizeof other, &other) == 0) {
        if (FA_CPU() == cpu)
            FA_STORE(&fa_pool_moves_work, 0);
        pthread_setaffinity_np(self, sizeof own, &own);
    }
}
#endif
static pthread_mutex_t fa_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fa_pool_cond = PTHREAD_COND_INITIALIZER;
#define FA_LOCK() pthread_mutex_lock(&fa_pool_lock)
#define FA_UNLOCK() pthread_mutex_unlock(&fa_pool_lock)
#define FA_WAIT() pthread_cond_wait(&fa_pool_cond, &fa_pool_lock)
#define FA_WAKE_ALL() pthread_cond_broadcast(&fa_pool_cond)
static long long fa_pool_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}
#endif

/* The ticket: the job's number (bits 40-63), how many workers take part (32-39) and how
 * many chunks nobody has taken yet (0-31). A thread takes a chunk by counting the last
 * down with a compare-and-swap on the job's number, so that a worker that arrives late
 * cannot take a chunk of a later job; the job's fields are read only after that (the job
 * cannot end, nor the next one be written, while a taken chunk is unfinished). */
#define FA_GEN(t) ((t) >> 40)
#define FA_NWORKERS(t) (((t) >> 32) & 0xff)
#define FA_LEFT(t) ((t) & 0xffffffffLL)

static struct {
    fa_task_t fn;
    void *ctx;
    long long nchunks;
} fa_pool_job;
static fa_atomic fa_pool_ticket = 0;
static fa_atomic fa_pool_done = 0;      /* chunks of the job finished */
static fa_atomic fa_pool_busy = 0;      /* a caller owns the pool */
static fa_atomic fa_pool_sleepers = 0;  /* workers asleep (or about to be) */
static int fa_pool_size = 0;            /* workers started */
static fa_thread_t fa_pool_threads[FA_POOL_MAX];
/* the back-off (the owner's): calls left on the caller alone, the next such period's
 * length, threaded calls since the last stall; and the stalls seen (for benchmarks) */
static long long fa_pool_solo_left = 0, fa_pool_solo_len = FA_POOL_SOLO_MIN, fa_pool_clean = 0;
static fa_atomic fa_pool_stalls = 0;
#ifdef FA_CPU
static fa_atomic fa_pool_caller_cpu = -1;   /* the CPU the caller started the job on */
#endif

/* Take and run chunks of job gen until none is left; how many this thread ran. */
static long long fa_pool_take(long long gen) {
    long long ran = 0;
    for (;;) {
        long long t = FA_LOAD(&fa_pool_ticket);
        if (FA_GEN(t) != gen || FA_LEFT(t) == 0)
            return ran;
        if (!FA_CAS(&fa_pool_ticket, t, t - 1))
            continue;
        fa_pool_job.fn(fa_pool_job.ctx, (ptrdiff_t)(fa_pool_job.nchunks - FA_LEFT(t)));
        FA_ADD(&fa_pool_done, 1);
        ran++;
    }
}

/* A worker: its index in the low 8 bits of arg, the job number it has seen above. */
#ifdef _WIN32
static DWORD WINAPI fa_pool_worker(LPVOID arg)
#else
static void *fa_pool_worker(void *arg)
#endif
{
    long long me = (long long)((size_t)arg & 0xff), seen = (long long)((size_t)arg >> 8);
    for (;;) {
        long long t = FA_LOAD(&fa_pool_ticket), until = fa_pool_now_ns() + FA_POOL_SPIN_NS;
        unsigned k;
        for (k = 1; FA_GEN(t) == seen; k++) {
            FA_PAUSE();
            if ((k & 63) == 0 && fa_pool_now_ns() > until) {
                FA_LOCK();
                FA_ADD(&fa_pool_sleepers, 1);
                while (FA_GEN(t = FA_LOAD(&fa_pool_ticket)) == seen)
                    FA_WAIT();
                FA_ADD(&fa_pool_sleepers, -1);
                FA_UNLOCK();
                break;
            }
            t = FA_LOAD(&fa_pool_ticket);
        }
        seen = FA_GEN(t);
        if (me < FA_NWORKERS(t)) {
#ifdef FA_CPU
            int cpu = (int)FA_LOAD(&fa_pool_caller_cpu);
            if (cpu >= 0 && FA_LOAD(&fa_pool_moves_work) && FA_CPU() == cpu)
                fa_pool_leave_cpu(cpu);
#endif
            fa_pool_take(seen);
        }
    }
    return 0;                           /* not reached: workers live as long as the process */
}

/* Start workers up to n (the caller owns the pool); how many there are. */
static int fa_pool_grow(int n, long long gen) {
    while (fa_pool_size < n) {
        void *arg = (void *)(size_t)((gen << 8) | fa_pool_size);
#ifdef _WIN32
        HANDLE h = CreateThread(NULL, 0, fa_pool_worker, arg, 0, NULL);
        if (h == NULL)
            break;
        fa_pool_threads[fa_pool_size] = h;
#else
        if (pthread_create(&fa_pool_threads[fa_pool_size], NULL, fa_pool_worker, arg) != 0)
            break;
#endif
        fa_pool_size++;
    }
    return fa_pool_size < n ? fa_pool_size : n;
}

/* fn(ctx, i) for i < nchunks on up to nthreads threads (the caller's one of them). */
static void fa_pool_run(fa_task_t fn, void *ctx, ptrdiff_t nchunks, int nthreads) {
    static long long gen = 0;           /* the last job's number (the owner's) */
    ptrdiff_t i;
    int nw = nthreads - 1;
    if (nw > FA_POOL_MAX)
        nw = FA_POOL_MAX;
    if ((ptrdiff_t)nw > nchunks - 1)
        nw = (int)(nchunks - 1);
    int owner = nw >= 1 && nchunks <= 0xffffffffLL && FA_CAS(&fa_pool_busy, 0, 1);
    if (owner && fa_pool_solo_left > 0 && nchunks <= (ptrdiff_t)FA_POOL_LONG * nthreads) {
        fa_pool_solo_left--;            /* backing off after a stall */
        FA_STORE(&fa_pool_busy, 0);
        owner = 0;
    }
    if (!owner) {                       /* on this thread alone */
        for (i = 0; i < nchunks; i++)
            fn(ctx, i);
        return;
    }
    nw = fa_pool_grow(nw, gen);
    fa_pool_job.fn = fn;
    fa_pool_job.ctx = ctx;
    fa_pool_job.nchunks = nchunks;
    FA_STORE(&fa_pool_done, 0);
#ifdef FA_CPU
    FA_STORE(&fa_pool_caller_cpu, FA_CPU());
#endif
    gen = (gen + 1) & 0xffffff;
    FA_STORE(&fa_pool_ticket, (gen << 40) | ((long long)nw << 32) | (long long)nchunks);
    if (FA_LOAD(&fa_pool_sleepers) > 0) {
        FA_LOCK();
        FA_WAKE_ALL();
        FA_UNLOCK();
    }
    long long t0 = fa_pool_now_ns(), mine = fa_pool_take(gen), t1 = fa_pool_now_ns();
    /* only the chunks others have started are left (each about as long as one of ours) */
    while (FA_LOAD(&fa_pool_done) < nchunks)
        FA_PAUSE();
    if (mine > 0) {                     /* (with none of its own, the caller cannot judge) */
        long long waited = fa_pool_now_ns() - t1;
        /* the others' chunks at the caller's pace: (t1 - t0) / mine each */
        if (waited > FA_POOL_STALL_NS + (t1 - t0) * (nchunks - mine) / mine) {
            FA_ADD(&fa_pool_stalls, 1);
            fa_pool_solo_left = fa_pool_solo_len;
            fa_pool_solo_len = fa_pool_solo_len < FA_POOL_SOLO_MAX / 2 ? 2 * fa_pool_solo_len
                                                                      : FA_POOL_SOLO_MAX;
            fa_pool_clean = 0;
        } else if (++fa_pool_clean >= FA_POOL_CLEAN) {
            fa_pool_solo_len = FA_POOL_SOLO_MIN;
            fa_pool_clean = 0;
        }
    }
    FA_STORE(&fa_pool_busy, 0);
}

/* The back-off's state: stalls seen so far, and calls left on the caller alone; and a
 * setter of the latter (for tests). */
static long long fa_pool_stall_count(void) { return FA_LOAD(&fa_pool_stalls); }
static long long fa_pool_solo_calls(void) { return fa_pool_solo_left; }
static void fa_pool_set_solo(long long calls) { fa_pool_solo_left = calls; }

/* fa_pool_run's work in an OpenMP parallel region of up to nthreads: the OpenMP runtime's
 * threads take the chunks, one at a time as the pool's do. For fastact.torch's calls in a
 * process whose one OpenMP runtime is PyTorch's: its threads spin for milliseconds after
 * each PyTorch op, on the cores the pool's workers would need, and take the chunks
 * instead. The region's end waits for every thread of the team, even one that took no
 * chunk (as PyTorch's own ops do); GNU OpenMP's team does not survive fork(), so a child
 * runs fa_pool_run. Without OpenMP, fa_pool_run itself. */
#ifdef _OPENMP
static void fa_pool_run_team(fa_task_t fn, void *ctx, ptrdiff_t nchunks, int nthreads) {
    fa_atomic next = 0;
    if ((ptrdiff_t)nthreads > nchunks)
        nthreads = (int)nchunks;
#pragma omp parallel num_threads(nthreads)
    {
        ptrdiff_t i;
        while ((i = (ptrdiff_t)FA_ADD(&next, 1)) < nchunks)
            fn(ctx, i);
    }
}
#else
#define fa_pool_run_team fa_pool_run
#endif

/* Whether the calling thread's threaded calls go to fa_pool_run_team (where the runner's
 * team setting is on): set around fastact.torch's calls of the gated units and the
 * softmax family, which reach the runner through the array API; per thread, so that a
 * NumPy call of another Python thread meanwhile keeps the pool. */
#if defined(_MSC_VER)
static __declspec(thread) int fa_pool_team_here;
#else
static _Thread_local int fa_pool_team_here;
#endif
static int fa_pool_get_team_here(void) { return fa_pool_team_here; }
static void fa_pool_set_team_here(int on) { fa_pool_team_here = on; }

/* In a child after fork(): the workers are not there; forget them (and a caller's hold,
 * if another thread of the parent was in a call). */
static void fa_pool_after_fork(void) {
#ifdef _WIN32
    InitializeSRWLock(&fa_pool_lock);
    InitializeConditionVariable(&fa_pool_cond);
#else
    pthread_mutex_init(&fa_pool_lock, NULL);
    pthread_cond_init(&fa_pool_cond, NULL);
#endif
    fa_pool_size = 0;
    fa_pool_solo_left = 0;
    fa_pool_solo_len = FA_POOL_SOLO_MIN;
    fa_pool_clean = 0;
    FA_STORE(&fa_pool_sleepers, 0);
    FA_STORE(&fa_pool_busy, 0);
}

#endif
