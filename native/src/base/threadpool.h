/* Thread pools for splitting work. Each model owns one, sized by its thread
 * count, so models never slow each other down and a closed model leaves no
 * threads behind; the kernel API (bl_matmul) shares one process-wide pool.
 * Idle workers spin briefly (decode steps come fast) and then sleep. */
#ifndef BL_THREADPOOL_H
#define BL_THREADPOOL_H

/* The most threads a pool runs: more is an error, not a silent cap. */
#define BL_MAX_THREADS 256

typedef struct bl_pool bl_pool;

/* A pool of threads - 1 workers (the caller of bl_parallel_run is the other
 * one); threads in [1, BL_MAX_THREADS]. */
int bl_pool_new(int threads, bl_pool **out);
/* Stops and joins the workers. The pool must be idle. */
void bl_pool_free(bl_pool *pool);
int bl_pool_threads(const bl_pool *pool);

/* The kernel API's pool, grown to at least threads (in [1, BL_MAX_THREADS]). */
int bl_pool_shared(int threads, bl_pool **out);

/* Runs fn(ctx, i, n) for every i in [0, n) on n of the pool's threads (the
 * caller is one of them; n <= bl_pool_threads) and returns when all are done.
 * Runs on one pool are serialized; a NULL pool or n <= 1 runs inline. */
typedef void (*bl_task_fn)(void *ctx, int index, int count);
int bl_parallel_run(bl_pool *pool, int n, bl_task_fn fn, void *ctx);

/* Physical cores this process may run on (at least 1). */
int bl_cpu_count(void);

#endif
