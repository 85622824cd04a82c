/* A small thread pool with one primitive, a parallel for over chunks.
 *
 * Work is cut into chunks whose bounds depend only on the problem, never on
 * the number of threads; whichever thread runs a chunk computes the same
 * bits. Kernels that reduce combine per-chunk partial results in chunk
 * order afterwards, so every result is identical for any thread count
 * (DESIGN principle 6). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define MAX_THREADS 256
/* Polls of a flag before sleeping on a condition variable (some tens of
 * microseconds): waking a sleeping thread costs about as much, and the
 * kernels issue jobs back to back (im2col, GEMM, col2im per conv tile). */
#define SPIN 20000

typedef struct {
    nd_chunk_fn fn;
    void *ctx;
    int64_t nchunks;
    atomic_llong next;   /* next chunk to take */
    atomic_int pending;  /* workers still inside this job */
} job;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake, idle;
    pthread_t tid[MAX_THREADS];
    int nworkers;        /* threads besides the caller */
    unsigned generation; /* bumped for every job */
    atomic_uint published; /* generation, readable without the lock */
    unsigned start_generation; /* the generation new workers start from */
    bool stopping;
    job *current;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER,
          .idle = PTHREAD_COND_INITIALIZER};

static int configured; /* 0: not yet decided */
static _Thread_local bool inside_job;
static _Thread_local int worker_index; /* 0: the calling thread */
static bool registered;

static void run_chunks(job *j) {
    inside_job = true;
    for (;;) {
        int64_t c = atomic_fetch_add(&j->next, 1);
        if (c >= j->nchunks) break;
        j->fn(j->ctx, c, worker_index);
    }
    inside_job = false;
}

static void *worker(void *arg) {
    worker_index = (int)(intptr_t)arg;
    pthread_mutex_lock(&pool.lock);
    /* Only jobs published after this worker started are its business. */
    unsigned seen = pool.start_generation;
    for (;;) {
        if (pool.generation == seen && !pool.stopping) {
            pthread_mutex_unlock(&pool.lock);
            for (int i = 0; i < SPIN && atomic_load(&pool.published) == seen; i++) {
            }
            pthread_mutex_lock(&pool.lock);
        }
        while (pool.generation == seen && !pool.stopping)
            pthread_cond_wait(&pool.wake, &pool.lock);
        if (pool.stopping) break;
        seen = pool.generation;
        job *j = pool.current;
        pthread_mutex_unlock(&pool.lock);
        run_chunks(j);
        pthread_mutex_lock(&pool.lock);
        if (atomic_fetch_sub(&j->pending, 1) == 1) pthread_cond_signal(&pool.idle);
    }
    pthread_mutex_unlock(&pool.lock);
    return NULL;
}

static void stop_workers(void) {
    pthread_mutex_lock(&pool.lock);
    pool.stopping = true;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    for (int i = 0; i < pool.nworkers; i++) pthread_join(pool.tid[i], NULL);
    pool.nworkers = 0;
    pool.stopping = false;
}

#ifndef _WIN32
/* A forked child inherits the pool's memory but not its threads. */
static void after_fork_in_child(void) {
    pthread_mutex_init(&pool.lock, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pthread_cond_init(&pool.idle, NULL);
    pool.nworkers = 0;
    pool.stopping = false;
}
#endif

static int default_threads(void) {
    const char *env = getenv("ND_THREADS");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end == '\0' && v >= 1 && v <= MAX_THREADS) return (int)v;
    }
    long n = nd__os_cpu_count();
    n = n > MAX_THREADS ? MAX_THREADS : n;
    if (env && *env)
        fprintf(stderr, "nanodiff: ND_THREADS='%s' is not a whole number in 1..%d; "
                "using %ld\n", env, MAX_THREADS, n);
    return (int)n;
}

int nd_get_num_threads(void) {
    if (!configured) configured = default_threads();
    return configured;
}

void nd_set_num_threads(int n) {
    if (n < 1 || n > MAX_THREADS)
        nd_fatal("set_num_threads", "%d threads requested; 1..%d are supported", n,
                 MAX_THREADS);
    if (inside_job) nd_fatal("set_num_threads", "called from inside a parallel loop");
    if (pool.nworkers > 0 && pool.nworkers != n - 1) stop_workers();
    configured = n;
}

static void start_workers(int n) {
    if (!registered) {
        atexit(stop_workers);
#ifndef _WIN32
        pthread_atfork(NULL, NULL, after_fork_in_child);
#endif
        registered = true;
    }
    pthread_mutex_lock(&pool.lock);
    pool.start_generation = pool.generation;
    pthread_mutex_unlock(&pool.lock);
    for (int i = 0; i < n; i++) {
        if (pthread_create(&pool.tid[i], NULL, worker, (void *)(intptr_t)(i + 1)) != 0)
            break;
        pool.nworkers++;
    }
}

void nd__parallel_for(int64_t nchunks, nd_chunk_fn fn, void *ctx) {
    if (nchunks <= 0) return;
    int threads = nd_get_num_threads();
    if (threads == 1 || nchunks == 1 || inside_job) {
        bool was = inside_job;
        inside_job = true;
        for (int64_t c = 0; c < nchunks; c++) fn(ctx, c, worker_index);
        inside_job = was;
        return;
    }
    if (pool.nworkers == 0) start_workers(threads - 1);
    job j = {.fn = fn, .ctx = ctx, .nchunks = nchunks};
    atomic_init(&j.next, 0);
    atomic_init(&j.pending, pool.nworkers);
    pthread_mutex_lock(&pool.lock);
    pool.current = &j;
    pool.generation++;
    atomic_store(&pool.published, pool.generation);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    run_chunks(&j);
    for (int i = 0; i < SPIN && atomic_load(&j.pending) > 0; i++) {
    }
    pthread_mutex_lock(&pool.lock);
    while (atomic_load(&j.pending) > 0) pthread_cond_wait(&pool.idle, &pool.lock);
    pool.current = NULL;
    pthread_mutex_unlock(&pool.lock);
}

bool nd__in_parallel(void) { return inside_job; }

void nd_parallel_for(int64_t nchunks, nd_chunk_fn fn, void *ctx) {
    if (nchunks < 0 || (nchunks > 0 && !fn))
        nd_fatal("parallel_for", "bad arguments (nchunks %lld, fn %s)",
                 (long long)nchunks, fn ? "set" : "NULL");
    nd__parallel_for(nchunks, fn, ctx);
}
