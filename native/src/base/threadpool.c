#define _GNU_SOURCE
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "error.h"

#define SPIN_ROUNDS 200000 /* busy-wait a little before sleeping: decode calls come fast */

struct bl_pool {
    int threads;                /* workers + the caller                         */
    int started;                /* workers running                              */
    pthread_t tids[BL_MAX_THREADS];
    pthread_mutex_t run_lock;   /* one run at a time                            */
    pthread_mutex_t wake_lock;
    pthread_cond_t wake;
    atomic_uint generation;     /* bumped once per run (and to stop)            */
    atomic_int pending;         /* workers still busy in this run               */
    atomic_int stopping;
    bl_task_fn job_fn;
    void *job_ctx;
    int job_count;
};

typedef struct worker_arg {
    bl_pool *pool;
    int index;
    unsigned seen; /* the generation before this worker's first run */
} worker_arg;

static unsigned wait_for_work(bl_pool *p, unsigned seen) {
    unsigned gen;
    int spins = 0;
    while ((gen = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen) {
        if (++spins < SPIN_ROUNDS) continue;
        pthread_mutex_lock(&p->wake_lock);
        while (atomic_load(&p->generation) == seen) pthread_cond_wait(&p->wake, &p->wake_lock);
        pthread_mutex_unlock(&p->wake_lock);
    }
    return gen;
}

static void *worker(void *arg) {
    worker_arg a = *(worker_arg *)arg;
    free(arg);
    bl_pool *p = a.pool;
    for (unsigned seen = a.seen;;) {
        seen = wait_for_work(p, seen);
        if (atomic_load(&p->stopping)) return NULL;
        if (a.index < p->job_count) p->job_fn(p->job_ctx, a.index, p->job_count);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
}

static int check_threads(int threads) {
    if (threads < 1 || threads > BL_MAX_THREADS)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "threads must be in [1, %d], got %d",
                       BL_MAX_THREADS, threads);
    return BL_OK;
}

/* Starts workers until the pool has threads in all; run_lock held or pool private. */
static int grow(bl_pool *p, int threads) {
    while (p->started < threads - 1) {
        worker_arg *arg = malloc(sizeof *arg);
        if (!arg) return bl_fail(BL_ERR_OUT_OF_MEMORY, "out of memory for a worker thread");
        *arg = (worker_arg){.pool = p, .index = p->started + 1,
                            .seen = atomic_load(&p->generation)};
        if (pthread_create(&p->tids[p->started], NULL, worker, arg) != 0) {
            free(arg);
            return bl_fail(BL_ERR_OUT_OF_MEMORY, "could not start worker thread %d",
                           p->started + 1);
        }
        p->started++;
    }
    if (threads > p->threads) p->threads = threads;
    return BL_OK;
}

int bl_pool_new(int threads, bl_pool **out) {
    *out = NULL;
    int rc = check_threads(threads);
    if (rc != BL_OK) return rc;
    bl_pool *p = calloc(1, sizeof *p);
    if (!p) return bl_fail(BL_ERR_OUT_OF_MEMORY, "out of memory for a thread pool");
    pthread_mutex_init(&p->run_lock, NULL);
    pthread_mutex_init(&p->wake_lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->threads = 1;
    if ((rc = grow(p, threads)) != BL_OK) {
        bl_pool_free(p);
        return rc;
    }
    *out = p;
    return BL_OK;
}

void bl_pool_free(bl_pool *p) {
    if (!p) return;
    atomic_store(&p->stopping, 1);
    pthread_mutex_lock(&p->wake_lock);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->wake_lock);
    for (int i = 0; i < p->started; i++) pthread_join(p->tids[i], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->wake_lock);
    pthread_mutex_destroy(&p->run_lock);
    free(p);
}

int bl_pool_threads(const bl_pool *p) { return p ? p->threads : 1; }

static bl_pool *shared_pool;
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;

int bl_pool_shared(int threads, bl_pool **out) {
    int rc = check_threads(threads);
    if (rc != BL_OK) return rc;
    pthread_mutex_lock(&shared_lock);
    if (!shared_pool) rc = bl_pool_new(threads, &shared_pool);
    if (rc == BL_OK && shared_pool->threads < threads) {
        pthread_mutex_lock(&shared_pool->run_lock);
        rc = grow(shared_pool, threads);
        pthread_mutex_unlock(&shared_pool->run_lock);
    }
    *out = shared_pool;
    pthread_mutex_unlock(&shared_lock);
    return rc;
}

/* Reads a small non-negative integer from a sysfs file; -1 when absent. */
static long read_sysfs_long(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long v = -1;
    if (fscanf(f, "%ld", &v) != 1) v = -1;
    fclose(f);
    return v;
}

/* Physical cores among the CPUs this process may run on: SMT siblings share a
 * core's vector units, so one thread per core is the fast default. Falls back
 * to the logical count where the topology is not readable. */
static int count_physical_cores(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? (int)n : 1;
    }
    long seen[CPU_SETSIZE][2];
    int cores = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &set)) continue;
        char path[96];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/topology/core_id", cpu);
        long core = read_sysfs_long(path);
        snprintf(path, sizeof path,
                 "/sys/devices/system/cpu/cpu%d/topology/physical_package_id", cpu);
        long package = read_sysfs_long(path);
        if (core < 0 || package < 0) return CPU_COUNT(&set);
        int known = 0;
        for (int i = 0; i < cores && !known; i++) known = seen[i][0] == package && seen[i][1] == core;
        if (!known) {
            seen[cores][0] = package;
            seen[cores][1] = core;
            cores++;
        }
    }
    return cores > 0 ? cores : 1;
}

static int physical_cores;
static pthread_once_t cores_once = PTHREAD_ONCE_INIT;

static void count_cores_once(void) { physical_cores = count_physical_cores(); }

/* Read once per process: every default-threaded call asks. */
int bl_cpu_count(void) {
    pthread_once(&cores_once, count_cores_once);
    return physical_cores;
}

int bl_parallel_run(bl_pool *p, int n, bl_task_fn fn, void *ctx) {
    if (!p || n <= 1) {
        fn(ctx, 0, 1);
        return BL_OK;
    }
    if (n > p->threads)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "a run of %d threads on a pool of %d", n,
                       p->threads);
    pthread_mutex_lock(&p->run_lock);
    p->job_fn = fn;
    p->job_ctx = ctx;
    p->job_count = n;
    atomic_store(&p->pending, p->started);
    pthread_mutex_lock(&p->wake_lock);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->wake_lock);
    fn(ctx, 0, n);
    while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0) sched_yield();
    pthread_mutex_unlock(&p->run_lock);
    return BL_OK;
}
