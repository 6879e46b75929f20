/* The attention chunk kernel with AVX2, FMA and F16C. */
#define BL_ATTN_CHUNK_FN bl_attn_chunk__avx2
#include "../attention_chunk_body.h"
