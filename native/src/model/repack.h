/* Foreign tensor types the loader turns into one of bitllm's own when a model
 * opens: a table of rows, each a source GGUF type, the bitllm type it becomes,
 * a check that this tensor fits the target exactly, and the converter. The
 * repacked weights are the model's own memory; the file's pages they came from
 * are dropped (madvise), so the two do not both stay resident. Optional rows
 * do the same for types bitllm runs itself when the target runs them faster. Facts on the
 * source layouts: docs/INTEROP.md; what each row accepts: docs/GGUF.md. */
#ifndef BL_REPACK_H
#define BL_REPACK_H

#include <stddef.h>
#include <stdint.h>

#include "types/types.h"

struct bl_pool;

/* Load options of the rows; zero is every default. */
typedef struct bl_repack_options {
    int i2s_packing; /* bl_i2s_packing (bitllm.h) */
} bl_repack_options;

/* One tensor of a source type, as the file holds it. */
typedef struct bl_repack_source {
    const uint8_t *data;
    int64_t nbytes; /* what source_bytes said, checked against the file when it opened */
    int64_t rows, cols;
    const bl_repack_options *options;
} bl_repack_source;

typedef struct bl_repack_row {
    const char *name;  /* the source type's name, as its own project spells it */
    /* 0: a type bitllm does not run, known by its GGUF id; every tensor must
     * repack. 1: one of bitllm's own types (own_source; it runs as it is), and
     * the repack only makes it faster. It has no check and no source_bytes (the
     * traits size it): the converter's count of rows that do not fit decides, and
     * a tensor with any keeps its type (no separate pass over its bytes). */
    int optional;
    /* 1: an optional row that runs only where the ISA's kernel table asks for
     * it (runs_as, kernels/kernels.h); 0: wherever its source loads. */
    int on_request;
    uint32_t gguf_type;
    bl_type_id own_source;
    bl_type_id target;
    /* Bytes of a tensor of n weights in rows of cols; -1 when no tensor of this
     * type has that shape (the reason in why). */
    int64_t (*source_bytes)(int64_t n, int64_t cols, char *why, size_t why_size);
    /* 0 when the target holds this tensor exactly, else -1 and the reason in why;
     * NULL when every tensor of the right size fits. */
    int (*check)(const bl_repack_source *src, char *why, size_t why_size);
    /* Rows [r0, r1) into dst, a whole target tensor (bl_tensor_size bytes), with
     * values (cols of scratch); returns the number of codes the target cannot
     * hold (0 for a good tensor). */
    int64_t (*convert_rows)(const bl_repack_source *src, int64_t r0, int64_t r1, int8_t *values,
                            uint8_t *dst);
} bl_repack_row;

/* The row for a foreign GGUF type id, or NULL. */
const bl_repack_row *bl_repack_find(uint32_t gguf_type);
/* The optional row that speeds up one of bitllm's own types, or NULL;
 * runs_as: the type the ISA runs it as (BL_TYPE_COUNT: none asked for). A row
 * on request comes before a row of the same source without. */
const bl_repack_row *bl_repack_find_faster(bl_type_id type, bl_type_id runs_as);

/* Checks and converts src into a new 64-byte aligned buffer of row->target
 * (*out, freed with free()), its rows split over pool, then drops the source's
 * pages from memory. An optional row with a row that does not fit returns BL_OK
 * with *out NULL: the tensor stays as the file holds it. On an error, the status
 * and a one-line reason in why. */
int bl_repack_tensor(const bl_repack_row *row, const bl_repack_source *src, struct bl_pool *pool,
                     uint8_t **out, char *why, size_t why_size);

#endif
