/* The attention chunk kernel for any CPU (baseline flags; NEON on aarch64). */
#define BL_ATTN_CHUNK_FN bl_attn_chunk__scalar
#include "../attention_chunk_body.h"
