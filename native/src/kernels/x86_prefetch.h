/* How the x86 GEMV kernels (AVX2, AVX-512) ask for the weights they read next.
 *
 * A GEMV walks a slice of rows that lie back to back, a group of rows at a
 * time, so the bytes it reads next are the same bytes of the following
 * groups. Rows are short (a 2560-column bt2 row is 640 bytes, ten lines), too
 * short for the hardware prefetchers to follow, so each kernel asks for the
 * line `bl_prefetch_ahead` bytes on beside every line it loads.
 *
 * Into L2 (T1), at least 8 KiB ahead: on Zen 4 two AVX2 threads streamed bt2
 * from memory 1.4-1.5x faster than without prefetches (78-86% of the read
 * bandwidth), and faster than 2.5 or 4 KiB ahead (16 KiB: the same) or 8 KiB
 * into L1, which holds too few lines in flight (BENCHMARKS.md, "AVX2 on
 * Zen 4"). */
#ifndef BL_X86_PREFETCH_H
#define BL_X86_PREFETCH_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

/* Whole groups of group_bytes, at least 8 KiB. */
static inline __attribute__((always_inline)) size_t bl_prefetch_ahead(size_t group_bytes) {
    size_t groups = (8192 + group_bytes - 1) / group_bytes;
    return groups * group_bytes;
}

/* Always inlined: GCC treats a call whose only effect is a prefetch as having
 * none and deletes it (a plain `static inline` wrapper vanished from the AVX2
 * bt2 GEMV, measured 1.7x slower out of cache). */
static inline __attribute__((always_inline)) void bl_prefetch(const uint8_t *p) {
    _mm_prefetch((const char *)p, _MM_HINT_T1);
}

/* Asks for a block of `bytes` at p: one request per 64 bytes, so that a walk
 * over blocks that lie back to back asks for every line it will read. One
 * request per block misses a line now and then where blocks are longer than
 * a line (a pair of q8_0 blocks, 68 bytes; tq2_0, 66), and each line missed
 * is a stall on memory: the AVX-512 q8_0 GEMV streamed 1.36x faster with one
 * thread once it asked for them all (BENCHMARKS.md, "AVX2 on Zen 4"). */
static inline __attribute__((always_inline)) void bl_prefetch_block(const uint8_t *p,
                                                                    size_t bytes) {
    for (size_t at = 0; at < bytes; at += 64) bl_prefetch(p + at);
}

#endif
