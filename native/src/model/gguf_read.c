/* Reading an open GGUF (parsed and validated by gguf.c): lookups, the typed
 * getters the model loader uses, and the public value and tensor accessors
 * of bitllm.h. Everything read here was bounds-checked when the file opened. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "gguf.h"
#include "repack.h"

/* A malformed file. */
#define fail(g, ...) bl_gguf_fail(g, BL_ERR_INVALID_ARGUMENT, __VA_ARGS__)

size_t bl_gguf_scalar_bytes(bl_gguf_value_type type) {
    switch (type) {
    case BL_GGUF_U8: case BL_GGUF_I8: case BL_GGUF_BOOL: return 1;
    case BL_GGUF_U16: case BL_GGUF_I16: return 2;
    case BL_GGUF_U32: case BL_GGUF_I32: case BL_GGUF_F32: return 4;
    case BL_GGUF_U64: case BL_GGUF_I64: case BL_GGUF_F64: return 8;
    default: return 0;
    }
}

static uint64_t read_u64_at(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

size_t bl_gguf_value_bytes(bl_gguf_value_type type, const uint8_t *p) {
    if (type == BL_GGUF_STRING) return 8 + (size_t)read_u64_at(p);
    if (type != BL_GGUF_ARRAY) return bl_gguf_scalar_bytes(type);
    uint32_t item_type;
    memcpy(&item_type, p, 4);
    uint64_t count = read_u64_at(p + 4);
    size_t item = bl_gguf_scalar_bytes((bl_gguf_value_type)item_type), bytes = 12;
    if (item) return bytes + (size_t)count * item;
    for (uint64_t i = 0; i < count; i++)
        bytes += bl_gguf_value_bytes((bl_gguf_value_type)item_type, p + bytes);
    return bytes;
}

/* The value of type whose encoding starts at p. */
static bl_gguf_value value_at(bl_gguf_value_type type, const uint8_t *p) {
    bl_gguf_value v = {.type = type, .item_type = -1, .count = 1, .data = p};
    if (type == BL_GGUF_STRING) {
        v.count = read_u64_at(p);
        v.data = p + 8;
    } else if (type == BL_GGUF_ARRAY) {
        uint32_t item_type;
        memcpy(&item_type, p, 4);
        v.item_type = (int)item_type;
        v.count = read_u64_at(p + 4);
        v.data = p + 12;
    }
    return v;
}

static int compare_key(const void *key, const void *kv) {
    return strcmp((const char *)key, (*(const bl_gguf_kv *const *)kv)->key);
}
static int compare_name(const void *name, const void *t) {
    return strcmp((const char *)name, (*(bl_gguf_tensor *const *)t)->name);
}

const bl_gguf_kv *bl_gguf_find(const bl_gguf *g, const char *key) {
    const bl_gguf_kv *const *found =
        bsearch(key, g->kv_by_key, (size_t)g->n_kv, sizeof *g->kv_by_key, compare_key);
    return found ? *found : NULL;
}

const bl_gguf_tensor *bl_gguf_tensor_find(const bl_gguf *g, const char *name) {
    bl_gguf_tensor *const *found = bsearch(name, g->tensor_by_name, (size_t)g->n_tensors,
                                           sizeof *g->tensor_by_name, compare_name);
    return found ? *found : NULL;
}

static const char *const type_names[BL_GGUF_VALUE_TYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"};

static int wrong_type(const bl_gguf *g, const bl_gguf_kv *kv, const char *expected) {
    return fail(g, "metadata '%s' is a %s, expected %s", kv->key, type_names[kv->type], expected);
}

int bl_gguf_get_int(const bl_gguf *g, const char *key, int64_t *out) {
    const bl_gguf_kv *kv = bl_gguf_find(g, key);
    if (!kv) return 0;
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32;
            uint64_t u64; int64_t i64; } v;
    size_t n = bl_gguf_scalar_bytes(kv->type);
    if (kv->type == BL_GGUF_F32 || kv->type == BL_GGUF_F64 || kv->type == BL_GGUF_BOOL || !n)
        return wrong_type(g, kv, "an integer");
    memcpy(&v, kv->value, n);
    switch (kv->type) {
    case BL_GGUF_U8: *out = v.u8; break;
    case BL_GGUF_I8: *out = v.i8; break;
    case BL_GGUF_U16: *out = v.u16; break;
    case BL_GGUF_I16: *out = v.i16; break;
    case BL_GGUF_U32: *out = v.u32; break;
    case BL_GGUF_I32: *out = v.i32; break;
    case BL_GGUF_I64: *out = v.i64; break;
    default:
        if (v.u64 > INT64_MAX) return fail(g, "metadata '%s' is out of range", key);
        *out = (int64_t)v.u64;
    }
    return 1;
}

int bl_gguf_get_float(const bl_gguf *g, const char *key, double *out) {
    const bl_gguf_kv *kv = bl_gguf_find(g, key);
    if (!kv) return 0;
    if (kv->type == BL_GGUF_F32) {
        float f;
        memcpy(&f, kv->value, 4);
        *out = f;
    } else if (kv->type == BL_GGUF_F64) {
        memcpy(out, kv->value, 8);
    } else {
        return wrong_type(g, kv, "a float");
    }
    return 1;
}

int bl_gguf_get_bool(const bl_gguf *g, const char *key, int *out) {
    const bl_gguf_kv *kv = bl_gguf_find(g, key);
    if (!kv) return 0;
    if (kv->type != BL_GGUF_BOOL) return wrong_type(g, kv, "a bool");
    *out = kv->value[0] != 0;
    return 1;
}

int bl_gguf_get_string(const bl_gguf *g, const char *key, const char **str, size_t *len) {
    const bl_gguf_kv *kv = bl_gguf_find(g, key);
    if (!kv) return 0;
    if (kv->type != BL_GGUF_STRING) return wrong_type(g, kv, "a string");
    uint64_t n;
    memcpy(&n, kv->value, 8);
    *len = (size_t)n;
    *str = (const char *)kv->value + 8;
    return 1;
}

/* ---- the public accessors (bitllm.h) ---------------------------------- */

int bl_gguf_get_info(const bl_gguf *g, bl_gguf_info *out) {
    if (!g || !out) return bl_fail(BL_ERR_INVALID_ARGUMENT, "bl_gguf_get_info: NULL argument");
    *out = (bl_gguf_info){
        .version = g->version,
        .alignment = g->alignment,
        .n_kv = g->n_kv,
        .n_tensors = g->n_tensors,
        .file_bytes = (int64_t)g->size,
        .data_offset = (int64_t)g->data_start,
    };
    return BL_OK;
}

int bl_gguf_kv_at(const bl_gguf *g, int64_t index, const char **key, bl_gguf_value *value) {
    if (!g || !key || !value)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "bl_gguf_kv_at: NULL argument");
    if (index < 0 || index >= g->n_kv)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "bl_gguf_kv_at: index %lld of %lld entries",
                       (long long)index, (long long)g->n_kv);
    *key = g->kv[index].key;
    *value = value_at(g->kv[index].type, g->kv[index].value);
    return BL_OK;
}

int64_t bl_gguf_find_key(const bl_gguf *g, const char *key) {
    if (!g || !key) return bl_fail(BL_ERR_INVALID_ARGUMENT, "bl_gguf_find_key: NULL argument");
    const bl_gguf_kv *kv = bl_gguf_find(g, key);
    return kv ? kv - g->kv : -1;
}

int bl_gguf_array_items(const bl_gguf_value *array, bl_gguf_value *items, uint64_t n_items) {
    if (!array || (!items && n_items))
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "bl_gguf_array_items: NULL argument");
    if (array->type != BL_GGUF_ARRAY || n_items != array->count)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "bl_gguf_array_items: %llu items asked of a "
                       "value of type %d with %llu", (unsigned long long)n_items, array->type,
                       (unsigned long long)array->count);
    const uint8_t *p = array->data;
    bl_gguf_value_type type = (bl_gguf_value_type)array->item_type;
    for (uint64_t i = 0; i < n_items; i++) {
        items[i] = value_at(type, p);
        p += bl_gguf_value_bytes(type, p);
    }
    return BL_OK;
}

int64_t bl_gguf_join_strings(const bl_gguf_value *array, char *text, int64_t text_bytes) {
    if (!array || array->type != BL_GGUF_ARRAY || array->item_type != BL_GGUF_STRING)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "bl_gguf_join_strings: not an array of strings");
    const uint8_t *p = array->data;
    int64_t used = 0;
    for (uint64_t i = 0; i < array->count; i++) {
        uint64_t len = read_u64_at(p);
        if (text && used + (int64_t)len + 1 > text_bytes)
            return bl_fail(BL_ERR_INVALID_ARGUMENT, "bl_gguf_join_strings: %lld bytes are too "
                           "few", (long long)text_bytes);
        if (text) {
            memcpy(text + used, p + 8, len);
            text[used + (int64_t)len] = '\0';
        }
        used += (int64_t)len + 1;
        p += 8 + len;
    }
    return used;
}

int bl_gguf_tensor_at(const bl_gguf *g, int64_t index, bl_gguf_tensor_info *out) {
    if (!g || !out) return bl_fail(BL_ERR_INVALID_ARGUMENT, "bl_gguf_tensor_at: NULL argument");
    if (index < 0 || index >= g->n_tensors)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "bl_gguf_tensor_at: index %lld of %lld tensors",
                       (long long)index, (long long)g->n_tensors);
    const bl_gguf_tensor *t = &g->tensors[index];
    *out = (bl_gguf_tensor_info){
        .name = t->name,
        .gguf_type = t->gguf_type,
        .type_name = t->known     ? bl_traits(t->type)->info.name
                     : t->repack  ? t->repack->name
                     : t->foreign ? t->foreign->name
                                  : NULL,
        .n_dims = t->n_dims,
        .offset = (int64_t)(t->data - g->base),
        .nbytes = t->nbytes,
    };
    memcpy(out->ne, t->ne, sizeof out->ne);
    return BL_OK;
}
