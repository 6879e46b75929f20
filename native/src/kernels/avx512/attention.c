/* The attention chunk kernel with AVX-512 F/BW/VL/DQ: 16-lane rows, f16 through vcvtph2ps. */
#define BL_ATTN_CHUNK_FN bl_attn_chunk__avx512
#include "../attention_chunk_body.h"
