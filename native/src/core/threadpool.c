#define _GNU_SOURCE
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#include "error.h"

#define MAX_THREADS 256
#define SPIN_ROUNDS 200000 /* busy-wait a little before sleeping: decode calls come fast */

static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;  /* one run at a time */
static pthread_mutex_t wake_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static int started;                 /* workers created so far */
static atomic_uint generation;      /* bumped once per run */
static atomic_int pending;          /* workers still busy in this run */
static bl_task_fn job_fn;
static void *job_ctx;
static int job_count;
static unsigned start_generation[MAX_THREADS]; /* what each worker has already seen */

static void *worker(void *arg) {
    int index = (int)(long)arg;
    unsigned seen = start_generation[index];
    for (;;) {
        unsigned gen;
        int spins = 0;
        while ((gen = atomic_load_explicit(&generation, memory_order_acquire)) == seen) {
            if (++spins < SPIN_ROUNDS) continue;
            pthread_mutex_lock(&wake_lock);
            while (atomic_load(&generation) == seen) pthread_cond_wait(&wake, &wake_lock);
            pthread_mutex_unlock(&wake_lock);
        }
        seen = gen;
        if (index < job_count) job_fn(job_ctx, index, job_count);
        atomic_fetch_sub_explicit(&pending, 1, memory_order_release);
    }
    return NULL;
}

int bl_cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int bl_parallel_run(int n, bl_task_fn fn, void *ctx) {
    if (n <= 1) {
        fn(ctx, 0, 1);
        return BL_OK;
    }
    if (n > MAX_THREADS) n = MAX_THREADS;
    pthread_mutex_lock(&run_lock);
    while (started < n - 1) {
        pthread_t tid;
        start_generation[started + 1] = atomic_load(&generation);
        if (pthread_create(&tid, NULL, worker, (void *)(long)(started + 1)) != 0) {
            pthread_mutex_unlock(&run_lock);
            return bl_fail(BL_ERR_OUT_OF_MEMORY, "could not start worker thread %d", started + 1);
        }
        pthread_detach(tid);
        started++;
    }
    job_fn = fn;
    job_ctx = ctx;
    job_count = n;
    atomic_store(&pending, started);
    pthread_mutex_lock(&wake_lock);
    atomic_fetch_add_explicit(&generation, 1, memory_order_release);
    pthread_cond_broadcast(&wake);
    pthread_mutex_unlock(&wake_lock);
    fn(ctx, 0, n);
    while (atomic_load_explicit(&pending, memory_order_acquire) > 0) sched_yield();
    pthread_mutex_unlock(&run_lock);
    return BL_OK;
}
