/* A small persistent pool of worker threads for splitting rows. */
#ifndef BL_THREADPOOL_H
#define BL_THREADPOOL_H

/* Runs fn(ctx, i, n) for every i in [0, n) on n threads (the caller is one of
 * them) and returns when all are done. Calls are serialized. */
typedef void (*bl_task_fn)(void *ctx, int index, int count);
int bl_parallel_run(int n, bl_task_fn fn, void *ctx);

/* Physical cores this process may run on (at least 1). */
int bl_cpu_count(void);

#endif
