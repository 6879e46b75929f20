/* Launches for chains of dependent kernels (a decode step is ~15 per layer).
 *
 * On Hopper and later a launch may overlap its predecessor on the stream
 * (programmatic dependent launch): the next kernel's blocks are scheduled
 * while the previous kernel finishes, do whatever does not depend on it (a
 * matrix product loads its first weights), then wait. So every kernel that
 * bl_cuda_launch may overlap calls bl_wait_for_inputs() before it touches
 * memory that earlier work on the stream wrote, and bl_allow_next() to let
 * its successor be scheduled. Both are no-ops in a launch without overlap.
 * Older GPUs launch without it; BITLLM_CUDA_OVERLAP=0 turns it off (for A/B
 * timing). */
#ifndef BL_CUDA_LAUNCH_CUH
#define BL_CUDA_LAUNCH_CUH

#include <utility>

#include <cuda_runtime.h>

__device__ inline void bl_wait_for_inputs() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

__device__ inline void bl_allow_next() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

/* Whether launches may overlap: a GPU of compute capability 9.0 or later and
 * the environment's choice, read once. */
bool bl_cuda_overlap_enabled();

/* kernel<<<grid, block, 0, stream>>>(args...), overlapping its predecessor
 * when `overlap` is set and the overlap is enabled. */
template <typename... Params, typename... Args>
cudaError_t bl_cuda_launch(void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t stream,
                           bool overlap, Args &&...args) {
    cudaLaunchAttribute attribute = {};
    attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attribute.val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t config = {};
    config.gridDim = grid;
    config.blockDim = block;
    config.stream = stream;
    config.attrs = &attribute;
    config.numAttrs = overlap && bl_cuda_overlap_enabled() ? 1 : 0;
    cudaError_t err = cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
    return err == cudaSuccess ? cudaGetLastError() : err;
}

#endif
