/* The normalized Walsh-Hadamard transform in Sylvester order, block by block:
 * the activation side of weights with a rotation folded in (PrismML's
 * prism.hadamard contract, model/rotation.c). For a block of n = 2^k values,
 * H[r][c] = (-1)^popcount(r & c) / sqrt(n); the fast transform applies it in
 * k butterfly stages of n adds each instead of n^2 multiply-adds. H is
 * symmetric and its own inverse, so one routine serves both directions.
 *
 * Each stage pairs values `half` apart. From half = 8 on the pairs' halves
 * are contiguous runs that vectorize as they are; the first three stages
 * (pairs inside each group of 8) are one pass over the groups with the
 * half a compile-time constant, which the compiler vectorizes with
 * shuffles, instead of runs of 1, 2 and 4 values. */
#include <math.h>

#include "ops.h"
#include "base/vec.h"

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* One stage on a constant half < 8: every span of 2 half values. */
ALWAYS_INLINE void small_stage(float *restrict x, size_t n, size_t half) {
    for (size_t span = 0; span < n; span += 2 * half)
        for (size_t i = 0; i < half; i++) {
            float a = x[span + i], b = x[span + i + half];
            x[span + i] = a + b;
            x[span + i + half] = a - b;
        }
}

/* One stage on half >= 8: contiguous runs of half. */
ALWAYS_INLINE void large_stage(float *restrict x, size_t n, size_t half) {
    for (size_t span = 0; span < n; span += 2 * half)
        for (size_t i = span; i < span + half; i++) {
            float a = x[i], b = x[i + half];
            x[i] = a + b;
            x[i + half] = a - b;
        }
}

BL_VECTOR_BODY void transform_block_body(float *restrict x, size_t n, float norm) {
    if (n >= 2) small_stage(x, n, 1);
    if (n >= 4) small_stage(x, n, 2);
    if (n >= 8) small_stage(x, n, 4);
    for (size_t half = 8; half < n; half *= 2) large_stage(x, n, half);
    for (size_t i = 0; i < n; i++) x[i] *= norm;
}
BL_VECTOR_VARIANTS(static, transform_block, (float *restrict x, size_t n, float norm),
                   (x, n, norm))

void bl_hadamard_rows(float *x, size_t rows, size_t cols, size_t block) {
    const float norm = (float)(1.0 / sqrt((double)block));
    for (size_t r = 0; r < rows; r++)
        for (size_t b = 0; b < cols; b += block) transform_block(x + r * cols + b, block, norm);
}
