/* Memory read bandwidth: threads sum disjoint parts of a large buffer with
 * wide loads; prints the median GB/s of several passes. Built and run by
 * scripts/bench_kernels.py. Usage: membw <threads> <MiB> <passes> */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const __m256i *begin;
    size_t count; /* 32-byte vectors */
    long long sink;
} part;

/* AVX2 loads, so that it runs on every CPU the library's AVX2 kernels run on. */
static void *read_part(void *arg) {
    part *p = arg;
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    for (size_t i = 0; i + 4 <= p->count; i += 4) {
        a = _mm256_xor_si256(a, _mm256_load_si256(p->begin + i));
        b = _mm256_xor_si256(b, _mm256_load_si256(p->begin + i + 1));
        c = _mm256_xor_si256(c, _mm256_load_si256(p->begin + i + 2));
        d = _mm256_xor_si256(d, _mm256_load_si256(p->begin + i + 3));
    }
    __m256i v = _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d));
    p->sink = _mm256_extract_epi64(v, 0) + _mm256_extract_epi64(v, 3);
    return NULL;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    size_t bytes = (size_t)(argc > 2 ? atoi(argv[2]) : 1024) << 20;
    int passes = argc > 3 ? atoi(argv[3]) : 9;
    __m256i *buf = aligned_alloc(64, bytes);
    memset(buf, 1, bytes);
    size_t vectors = bytes / 32, share = vectors / threads;
    double *gbs = calloc(passes, sizeof(double));
    for (int pass = 0; pass < passes; pass++) {
        pthread_t tid[64];
        part parts[64];
        double t0 = now();
        for (int t = 0; t < threads; t++) {
            parts[t] = (part){buf + t * share, share, 0};
            pthread_create(&tid[t], NULL, read_part, &parts[t]);
        }
        for (int t = 0; t < threads; t++) pthread_join(tid[t], NULL);
        gbs[pass] = (double)(share * threads * 32) / (now() - t0) / 1e9;
    }
    qsort(gbs, passes, sizeof(double), cmp);
    printf("%.2f\n", gbs[passes / 2]);
    return 0;
}
