/* Exact repacks of llama.cpp's ternary block types into bitllm's ternary
 * types with a row scale: a tq2_0 row whose 256-blocks all hold the same f16
 * scale (llama.cpp's quantizer stores a BitNet tensor's one scale in every
 * block) is that scale times trits, which bt2 holds exactly with the scale as
 * its row scale; tq1_0 likewise into bt1. A row of differing scales (or,
 * tq2_0, holding code 3, which decodes as +2) has no such form. */
#ifndef BL_TQ_REPACK_H
#define BL_TQ_REPACK_H

#include <stdint.h>

#include "types.h"

/* The type a tq type repacks into (bt2 for tq2_0, bt1 for tq1_0); BL_TYPE_COUNT
 * for any other type. */
bl_type_id bl_tq_repack_target(bl_type_id type);

/* One row of cols weights (a multiple of 256) of a tq1_0/tq2_0 tensor. When it
 * is trits times one scale, writes the target's packed row (bl_row_data_bytes
 * of the target) to dst and the scale to *row_scale and returns 1; else 0.
 * values: cols bytes of scratch. */
int bl_tq_repack_row(bl_type_id type, const uint8_t *row, int64_t cols, int8_t *values,
                     uint8_t *dst, float *row_scale);

/* The same for rows [r0, r1) of a whole rows x cols tensor, in the shape of a
 * load-time repack row (model/repack.h), into dst, a whole target tensor (all
 * packed rows, then the float32 row scales: bl_tensor_size of the target),
 * returning the number of those rows that did not repack (values: cols bytes
 * of scratch). */
int64_t bl_tq_repack_rows(bl_type_id type, const uint8_t *data, int64_t rows, int64_t cols,
                          int64_t r0, int64_t r1, int8_t *values, uint8_t *dst);

#endif
