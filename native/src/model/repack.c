/* The repack table (repack.h) and its one driver. Rows:
 *   i2_s (bitnet.cpp, id 36) -> bt2: n/4 bytes of 2-bit codes (0 = -1, 1 = 0,
 *   2 = +1) in one of three packings, then a 32-byte tail whose first 4 bytes
 *   are the tensor's float32 scale. bt2 stores the same codes with a scale per
 *   row: every row gets the tensor's scale, so the repack is exact.
 *   tq2_0 / tq1_0 (llama.cpp, ids 35 / 34) -> bt2 / bt1, optional: a tensor
 *   whose rows each hold one f16 scale in every 256-block (what llama.cpp's
 *   quantizer writes for BitNet's absmean weights) is trits times a row scale,
 *   exactly; bt2's kernels run it about 2x faster than tq2_0's (scripts/
 *   bench_tq.py). Any other tq tensor runs in its own type (types/tq2_0.c).
 *   bt1 -> bt2, optional, on request: where an ISA runs bt1 as bt2 (its
 *   kernel table says so), every trit and the row scales as they are; and
 *   there tq1_0 goes to bt2 directly (through bt1, row by row).
 *   ptq1_0 (PrismML's fork, id 143) -> q2_0_g128: group-128 tq1_0 digits and
 *   an f16 scale per group; q2_0_g128 (PrismML's PQ2_0) holds the same trits
 *   and scale in 34 bytes instead of 28, and every ISA has its kernels. */
#include "repack.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/threadpool.h"
#include "bitllm.h"
#include "types/tq_common.h"
#include "types/tq_repack.h"

/* ---- i2_s -------------------------------------------------------------- */

#define I2S_TAIL_BYTES 32
#define I2S_TYPE_ID 36

/* Weights per packing block (x86: 128 in 32 bytes, ARM: 64 in 16); 1x4 packs
 * whole rows in groups of 4. */
static int64_t i2s_block(int packing) { return packing == BL_I2S_ARM ? 64 : 128; }

static const char *i2s_packing_name(int packing) {
    switch (packing) {
    case BL_I2S_X86: return "x86";
    case BL_I2S_ARM: return "arm";
    case BL_I2S_X86_1X4: return "x86-1x4";
    default: return NULL;
    }
}

static int64_t i2s_source_bytes(int64_t n, int64_t cols, char *why, size_t why_size) {
    (void)cols;
    if (n % 4) {
        snprintf(why, why_size, "%lld weights do not fill whole bytes of 4", (long long)n);
        return -1;
    }
    return n / 4 + I2S_TAIL_BYTES;
}

static float i2s_scale(const bl_repack_source *src) {
    float scale;
    memcpy(&scale, src->data + src->rows * src->cols / 4, sizeof scale);
    return scale;
}

static int i2s_check(const bl_repack_source *src, char *why, size_t why_size) {
    int packing = src->options ? src->options->i2s_packing : BL_I2S_X86;
    const char *name = i2s_packing_name(packing);
    int64_t n = src->rows * src->cols;
    if (!name) {
        snprintf(why, why_size, "unknown I2_S packing %d (0: x86, 1: arm, 2: x86-1x4)", packing);
        return -1;
    }
    if (packing == BL_I2S_X86_1X4 ? src->rows % 4 != 0 : n % i2s_block(packing) != 0) {
        if (packing == BL_I2S_X86_1X4)
            snprintf(why, why_size, "%lld rows are not a multiple of 4, as the %s packing needs",
                     (long long)src->rows, name);
        else
            snprintf(why, why_size, "%lld weights are not a multiple of %lld, as the %s packing "
                     "needs", (long long)n, (long long)i2s_block(packing), name);
        return -1;
    }
    float scale = i2s_scale(src);
    if (!isfinite(scale)) {
        snprintf(why, why_size, "the scale is %g, not a finite number", (double)scale);
        return -1;
    }
    return 0;
}

/* Codes of row r into values as trits; returns the number of code-3 entries. */
static int64_t i2s_decode_row(const bl_repack_source *src, int64_t r, int8_t *values) {
    const uint8_t *data = src->data;
    int64_t cols = src->cols, invalid = 0;
    int packing = src->options ? src->options->i2s_packing : BL_I2S_X86;
    if (packing == BL_I2S_X86_1X4) {
        /* byte g*cols + c: column c of rows 4g..4g+3 in bits 7-6, 5-4, 3-2, 1-0 */
        const uint8_t *group = data + r / 4 * cols;
        int shift = 6 - 2 * (int)(r % 4);
        for (int64_t c = 0; c < cols; c++) {
            int code = (group[c] >> shift) & 3;
            invalid += code == 3;
            values[c] = (int8_t)(code - 1);
        }
        return invalid;
    }
    /* blocks of 4 * span weights in span bytes: byte j of a block holds its
     * weights j, span + j, 2 span + j, 3 span + j in bits 7-6, 5-4, 3-2, 1-0 */
    int64_t span = i2s_block(packing) / 4;
    if (cols % (4 * span) == 0) { /* rows of whole blocks: block by block */
        const uint8_t *src = data + r * cols / 4;
        for (int64_t b = 0; b < cols / (4 * span); b++, src += span, values += 4 * span)
            for (int g = 0; g < 4; g++)
                for (int64_t j = 0; j < span; j++) {
                    int code = (src[j] >> (6 - 2 * g)) & 3;
                    invalid += code == 3;
                    values[g * span + j] = (int8_t)(code - 1);
                }
        return invalid;
    }
    for (int64_t c = 0; c < cols; c++) {
        int64_t f = r * cols + c, block = f / (4 * span), within = f % (4 * span);
        int code = (data[block * span + within % span] >> (6 - 2 * (within / span))) & 3;
        invalid += code == 3;
        values[c] = (int8_t)(code - 1);
    }
    return invalid;
}

static int64_t i2s_to_bt2_rows(const bl_repack_source *src, int64_t r0, int64_t r1,
                               int8_t *values, uint8_t *dst) {
    const bl_type_traits *bt2 = &bl_type_bt2;
    int64_t row_bytes = bl_row_data_bytes(bt2, src->cols), invalid = 0;
    float scale = i2s_scale(src);
    float *scales = (float *)(dst + src->rows * row_bytes);
    for (int64_t r = r0; r < r1; r++) {
        invalid += i2s_decode_row(src, r, values);
        bt2->pack_row(values, src->cols, dst + r * row_bytes);
        scales[r] = scale;
    }
    return invalid;
}

/* ---- tq2_0 / tq1_0 ---------------------------------------------------- */

#define TQ_ROW(id, lower)                                                                       \
    static int64_t lower##_convert_rows(const bl_repack_source *src, int64_t r0, int64_t r1,    \
                                        int8_t *values, uint8_t *dst) {                         \
        return bl_tq_repack_rows(id, src->data, src->rows, src->cols, r0, r1, values, dst);     \
    }
TQ_ROW(BL_TYPE_TQ2_0, tq2_0)
TQ_ROW(BL_TYPE_TQ1_0, tq1_0)

/* ---- ptq1_0 ------------------------------------------------------------ */

#define PTQ1_0_TYPE_ID 143

static int64_t ptq1_0_source_bytes(int64_t n, int64_t cols, char *why, size_t why_size) {
    if (cols % BL_PTQ1_0_BLOCK) {
        snprintf(why, why_size, "rows of %lld weights do not fill whole blocks of %d",
                 (long long)cols, BL_PTQ1_0_BLOCK);
        return -1;
    }
    return n / BL_PTQ1_0_BLOCK * BL_PTQ1_0_BYTES;
}

/* Block by block: the same f16 scale, and each trit becomes the 2-bit code
 * of the same value ((c - 1) d in both). Every byte decodes to trits 0..2, so
 * every tensor fits (the row has no check). */
static int64_t ptq1_0_to_q2_0_g128_rows(const bl_repack_source *src, int64_t r0, int64_t r1,
                                        int8_t *values, uint8_t *dst) {
    (void)values;
    const int64_t blocks = src->cols / BL_PTQ1_0_BLOCK;
    const size_t out_bytes = bl_type_q2_0_g128.info.block_bytes;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t b = 0; b < blocks; b++) {
            const uint8_t *in = src->data + (r * blocks + b) * BL_PTQ1_0_BYTES;
            uint8_t *out = dst + (size_t)(r * blocks + b) * out_bytes;
            memcpy(out, in + BL_PTQ1_0_D, 2);
            memset(out + 2, 0, out_bytes - 2);
            for (int e = 0; e < BL_PTQ1_0_BLOCK; e++)
                out[2 + e / 4] |= (uint8_t)(bl_ptq1_0_code(in, e) << (2 * (e % 4)));
        }
    return 0;
}

/* ---- bt1 -> bt2 --------------------------------------------------------- */

/* Each row's trits through the types' own codecs; the float32 row scales,
 * which both keep after the rows' blocks, copied as they are. */
static int64_t bt1_to_bt2_rows(const bl_repack_source *src, int64_t r0, int64_t r1,
                               int8_t *values, uint8_t *dst) {
    const bl_type_traits *from = &bl_type_bt1, *to = &bl_type_bt2;
    const int64_t in_row = bl_row_data_bytes(from, src->cols);
    const int64_t out_row = bl_row_data_bytes(to, src->cols);
    const uint8_t *in_scales = src->data + src->rows * in_row;
    uint8_t *out_scales = dst + src->rows * out_row;
    int64_t invalid = 0;
    for (int64_t r = r0; r < r1; r++) {
        invalid += from->unpack_row(src->data + r * in_row, src->cols, values);
        to->pack_row(values, src->cols, dst + r * out_row);
        memcpy(out_scales + 4 * r, in_scales + 4 * r, 4);
    }
    return invalid;
}

/* tq1_0 -> bt2, where the ISA runs bt1 as bt2: each row through the exact
 * tq1_0 -> bt1 repack, then bt1's trits into bt2; a row without one scale
 * counts as not repacked, as in the tq1_0 -> bt1 row. */
static int64_t tq1_0_to_bt2_rows(const bl_repack_source *src, int64_t r0, int64_t r1,
                                 int8_t *values, uint8_t *dst) {
    const bl_type_traits *to = &bl_type_bt2;
    const int64_t in_row = bl_row_data_bytes(&bl_type_tq1_0, src->cols);
    const int64_t out_row = bl_row_data_bytes(to, src->cols);
    uint8_t *bt1_row = malloc((size_t)bl_row_data_bytes(&bl_type_bt1, src->cols));
    if (!bt1_row) return r1 - r0; /* no scratch: the tensor keeps its type */
    uint8_t *out_scales = dst + src->rows * out_row;
    int64_t failed = 0;
    for (int64_t r = r0; r < r1; r++) {
        float scale = 0.0f;
        if (bl_tq_repack_row(BL_TYPE_TQ1_0, src->data + r * in_row, src->cols, values, bt1_row,
                             &scale)) {
            bl_type_bt1.unpack_row(bt1_row, src->cols, values);
            to->pack_row(values, src->cols, dst + r * out_row);
        } else {
            failed++;
        }
        memcpy(out_scales + 4 * r, &scale, 4);
    }
    free(bt1_row);
    return failed;
}

/* ---- the table ------------------------------------------------------- */

static const bl_repack_row rows[] = {
    {.name = "i2_s", .gguf_type = I2S_TYPE_ID, .target = BL_TYPE_BT2,
     .source_bytes = i2s_source_bytes, .check = i2s_check, .convert_rows = i2s_to_bt2_rows},
    {.name = "ptq1_0", .gguf_type = PTQ1_0_TYPE_ID, .target = BL_TYPE_Q2_0_G128,
     .source_bytes = ptq1_0_source_bytes, .convert_rows = ptq1_0_to_q2_0_g128_rows},
    {.name = "tq2_0", .optional = 1, .own_source = BL_TYPE_TQ2_0, .target = BL_TYPE_BT2,
     .convert_rows = tq2_0_convert_rows},
    /* before the row to bt1: where bt1 runs as bt2, straight to bt2 */
    {.name = "tq1_0", .optional = 1, .on_request = 1, .own_source = BL_TYPE_TQ1_0,
     .target = BL_TYPE_BT2, .convert_rows = tq1_0_to_bt2_rows},
    {.name = "tq1_0", .optional = 1, .own_source = BL_TYPE_TQ1_0, .target = BL_TYPE_BT1,
     .convert_rows = tq1_0_convert_rows},
    {.name = "bt1", .optional = 1, .on_request = 1, .own_source = BL_TYPE_BT1,
     .target = BL_TYPE_BT2, .convert_rows = bt1_to_bt2_rows},
};

const bl_repack_row *bl_repack_find(uint32_t gguf_type) {
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (!rows[i].optional && rows[i].gguf_type == gguf_type) return &rows[i];
    return NULL;
}

const bl_repack_row *bl_repack_find_faster(bl_type_id type, bl_type_id runs_as) {
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (rows[i].optional && rows[i].own_source == type &&
            (!rows[i].on_request || rows[i].target == runs_as))
            return &rows[i];
    return NULL;
}

/* ---- the driver -------------------------------------------------------- */

typedef struct job {
    const bl_repack_row *row;
    const bl_repack_source *src;
    uint8_t *dst;
    int64_t invalid[BL_MAX_THREADS];
    int out_of_memory[BL_MAX_THREADS];
} job;

static void convert_part(void *ctx, int index, int count) {
    job *j = ctx;
    int64_t rows = j->src->rows;
    int64_t r0 = rows * index / count, r1 = rows * (index + 1) / count;
    int8_t *values = malloc((size_t)j->src->cols);
    if (!values) {
        j->out_of_memory[index] = 1;
        return;
    }
    j->invalid[index] = j->row->convert_rows(j->src, r0, r1, values, j->dst);
    free(values);
}

/* The whole pages inside [data, data + nbytes) leave this process's memory; the
 * file stays mapped, so a later read would page them in again (none comes). */
static void drop_pages(const uint8_t *data, int64_t nbytes) {
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) return;
    uintptr_t start = ((uintptr_t)data + (uintptr_t)page - 1) / (uintptr_t)page * (uintptr_t)page;
    uintptr_t end = ((uintptr_t)data + (uintptr_t)nbytes) / (uintptr_t)page * (uintptr_t)page;
    if (end > start) madvise((void *)start, end - start, MADV_DONTNEED);
}

int bl_repack_tensor(const bl_repack_row *row, const bl_repack_source *src, struct bl_pool *pool,
                     uint8_t **out, char *why, size_t why_size) {
    *out = NULL;
    if (!row->optional && row->check && row->check(src, why, why_size) != 0)
        return BL_ERR_INVALID_ARGUMENT;
    const bl_type_traits *target = bl_traits(row->target);
    size_t size = (size_t)bl_tensor_size(target, src->rows, src->cols);
    uint8_t *dst = aligned_alloc(64, (size + 63) / 64 * 64);
    job *j = calloc(1, sizeof *j);
    if (!dst || !j) {
        free(dst);
        free(j);
        snprintf(why, why_size, "out of memory for %zu bytes of %s", size, target->info.name);
        return BL_ERR_OUT_OF_MEMORY;
    }
    *j = (job){.row = row, .src = src, .dst = dst};
    int parts = pool ? bl_pool_threads(pool) : 1;
    if (parts > src->rows) parts = (int)src->rows;
    if (parts < 1) parts = 1;
    int rc = bl_parallel_run(pool, parts, convert_part, j);
    if (rc != BL_OK) {
        free(dst);
        free(j);
        snprintf(why, why_size, "the thread pool did not run the repack");
        return rc;
    }
    int64_t invalid = 0;
    int out_of_memory = 0;
    for (int i = 0; i < parts; i++) {
        invalid += j->invalid[i];
        out_of_memory |= j->out_of_memory[i];
    }
    free(j);
    if (out_of_memory || invalid) {
        free(dst);
        if (!out_of_memory && row->optional) return BL_OK; /* a row does not fit: keep the type */
        if (out_of_memory)
            snprintf(why, why_size, "out of memory for a row of %lld weights",
                     (long long)src->cols);
        else
            snprintf(why, why_size, "%lld of its codes are 3, which no ternary weight has",
                     (long long)invalid);
        return out_of_memory ? BL_ERR_OUT_OF_MEMORY : BL_ERR_INVALID_ARGUMENT;
    }
    drop_pages(src->data, src->nbytes);
    *out = dst;
    return BL_OK;
}
