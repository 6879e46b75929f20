/* The table of all tensor types; adding a type adds a row here. */
#include <stdio.h>
#include <string.h>

#include "base/error.h"
#include "types.h"

static const bl_type_traits *const registry[BL_TYPE_COUNT] = {
    [BL_TYPE_F32] = &bl_type_f32,   [BL_TYPE_F16] = &bl_type_f16, [BL_TYPE_BF16] = &bl_type_bf16,
    [BL_TYPE_Q8_0] = &bl_type_q8_0, [BL_TYPE_Q4_0] = &bl_type_q4_0, [BL_TYPE_BT2] = &bl_type_bt2,
    [BL_TYPE_BT1] = &bl_type_bt1,   [BL_TYPE_BS1] = &bl_type_bs1, [BL_TYPE_Q4_K] = &bl_type_q4_k,
    [BL_TYPE_Q5_K] = &bl_type_q5_k, [BL_TYPE_Q6_K] = &bl_type_q6_k,
    [BL_TYPE_TQ1_0] = &bl_type_tq1_0, [BL_TYPE_TQ2_0] = &bl_type_tq2_0,
    [BL_TYPE_Q1_0] = &bl_type_q1_0, [BL_TYPE_Q2_0] = &bl_type_q2_0,
    [BL_TYPE_Q2_0_G128] = &bl_type_q2_0_g128,
};

/* GGUF ids another project gave to one of these layouts. PrismML's fork named
 * its group-128 Q2_0 packing Q2_0_G128, then PQ2_0, under its own id 142 (its
 * ggml.h; docs/INTEROP.md "Bonsai 2"): the bytes are q2_0_g128's. */
static const struct gguf_alias {
    uint32_t gguf_type;
    bl_type_id type;
} gguf_aliases[] = {
    {142, BL_TYPE_Q2_0_G128},
};

const bl_type_traits *bl_traits(bl_type_id id) { return registry[id]; }

int bl_type_layouts(uint32_t gguf_type, bl_type_id *ids, int max) {
    int n = 0;
    for (int i = 0; i < BL_TYPE_COUNT; i++) {
        if (registry[i]->info.gguf_type != gguf_type) continue;
        if (n < max) ids[n] = (bl_type_id)i;
        n++;
    }
    for (size_t i = 0; i < sizeof gguf_aliases / sizeof gguf_aliases[0]; i++) {
        if (gguf_aliases[i].gguf_type != gguf_type) continue;
        if (n < max) ids[n] = gguf_aliases[i].type;
        n++;
    }
    return n;
}

/* "f32, f16, ...": the names in the table, so an error never lists a stale set. Built on
 * every call (only error paths call it) to need no lock. */
static const char *known_names(void) {
    static _Thread_local char names[256];
    size_t used = 0;
    for (int i = 0; i < BL_TYPE_COUNT; i++) {
        int n = snprintf(names + used, sizeof names - used, "%s%s", i ? ", " : "",
                         registry[i]->info.name);
        if (n < 0 || (size_t)n >= sizeof names - used) {
            names[used] = '\0'; /* the whole names that fit */
            break;
        }
        used += (size_t)n;
    }
    return names;
}

int bl_type_find(const char *name, bl_type_id *out) {
    if (!name) return bl_fail(BL_ERR_INVALID_ARGUMENT, "type name is NULL");
    for (int i = 0; i < BL_TYPE_COUNT; i++) {
        if (strcmp(registry[i]->info.name, name) == 0) {
            *out = (bl_type_id)i;
            return BL_OK;
        }
    }
    return bl_fail(BL_ERR_UNKNOWN_TYPE, "unknown tensor type '%s' (known: %s)", name,
                   known_names());
}

int bl_type_count(void) { return BL_TYPE_COUNT; }

int bl_type_info_at(int index, bl_type_info *out) {
    if (!out) return bl_fail(BL_ERR_INVALID_ARGUMENT, "bl_type_info_at: out is NULL");
    if (index < 0 || index >= BL_TYPE_COUNT)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "type index %d out of range [0, %d)", index,
                       BL_TYPE_COUNT);
    *out = registry[index]->info;
    return BL_OK;
}

int bl_type_by_name(const char *name, bl_type_info *out) {
    bl_type_id id;
    int rc = bl_type_find(name, &id);
    if (rc != BL_OK) return rc;
    if (out) *out = registry[id]->info;
    return BL_OK;
}

int64_t bl_row_bytes(const char *type, int64_t cols) {
    bl_type_id id;
    int rc = bl_type_find(type, &id);
    if (rc != BL_OK) return rc;
    if (cols <= 0) return bl_fail(BL_ERR_INVALID_ARGUMENT, "cols must be positive, got %lld",
                                  (long long)cols);
    return bl_row_data_bytes(registry[id], cols);
}

int64_t bl_tensor_bytes(const char *type, int64_t rows, int64_t cols) {
    bl_type_id id;
    int rc = bl_type_find(type, &id);
    if (rc != BL_OK) return rc;
    if (rows <= 0 || cols <= 0)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "shape must be positive, got %lld x %lld",
                       (long long)rows, (long long)cols);
    return bl_tensor_size(registry[id], rows, cols);
}
