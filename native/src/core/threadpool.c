#define _GNU_SOURCE
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
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
