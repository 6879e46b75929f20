/* The attention chunk kernel with AArch64 Advanced SIMD (NEON): four 4-lane registers per
 * 16 partial sums, f16 through fcvtl. */
#define BL_ATTN_CHUNK_FN bl_attn_chunk__neon
#define BL_ATTN_NEON 1
#include "../attention_chunk_body.h"
