/* BitNet's activation rule on the GPU (core/activations.c), rounded exactly
 * as the CPU rounds it: s = qmax / max(max|x|, 1e-5), q = clamp(round_half_even(x * s)).
 * Shared by the quantization kernel and the row ops that quantize their output. */
#ifndef BL_CUDA_ACT_QUANT_CUH
#define BL_CUDA_ACT_QUANT_CUH

#include <stdint.h>

template <int kMax>
__device__ inline float bitnet_scale(float amax) {
    return __fdiv_rn((float)kMax, fmaxf(amax, 1e-5f));
}

template <int kMax>
__device__ inline int32_t bitnet_quantize(float v, float s) {
    /* fmaxf turns NaN into the lower bound, as the CPU does */
    return (int32_t)fminf(fmaxf(rintf(__fmul_rn(v, s)), (float)(-kMax - 1)), (float)kMax);
}

#endif
