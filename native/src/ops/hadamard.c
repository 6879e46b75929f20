/* The normalized Walsh-Hadamard transform in Sylvester order, block by block:
 * the activation side of weights with a rotation folded in (PrismML's
 * prism.hadamard contract, model/rotation.c). For a block of n = 2^k values,
 * H[r][c] = (-1)^popcount(r & c) / sqrt(n); the fast transform applies it in
 * k butterfly stages of n adds each instead of n^2 multiply-adds. H is
 * symmetric and its own inverse, so one routine serves both directions. */
#include <math.h>

#include "ops.h"
#include "base/vec.h"

/* One stage: each pair (i, i + half) of every span of 2 half becomes (a + b, a - b). */
BL_VECTOR_CLONES
static void butterflies(float *restrict x, size_t n, size_t half) {
    for (size_t span = 0; span < n; span += 2 * half)
        for (size_t i = span; i < span + half; i++) {
            float a = x[i], b = x[i + half];
            x[i] = a + b;
            x[i + half] = a - b;
        }
}

void bl_hadamard_rows(float *x, size_t rows, size_t cols, size_t block) {
    const float norm = (float)(1.0 / sqrt((double)block));
    for (size_t r = 0; r < rows; r++) {
        float *row = x + r * cols;
        for (size_t b = 0; b < cols; b += block)
            for (size_t half = 1; half < block; half *= 2) butterflies(row + b, block, half);
        for (size_t c = 0; c < cols; c++) row[c] *= norm;
    }
}
