/* The parsed GGUF behind the public bl_gguf (bitllm.h): validated as a whole
 * when it is opened, so users of this struct can read what it points at
 * without further bounds checks. */
#ifndef BL_GGUF_H
#define BL_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "types/types.h"

typedef struct bl_gguf_kv {
    char *key;
    bl_gguf_value_type type;
    const uint8_t *value; /* scalars: the value's bytes; strings: the u64 length */
} bl_gguf_kv;

typedef struct bl_gguf_tensor {
    char *name;
    uint32_t n_dims;
    int64_t ne[4];        /* ggml order: ne[0] is the row length; unused dims are 1 */
    uint32_t gguf_type;   /* the file's type id                                     */
    int known;            /* 1: type is one bitllm runs; 0: a kept foreign type      */
    bl_type_id type;      /* when known                                             */
    const bl_gguf_foreign_type *foreign; /* a foreign type of the caller's table, or NULL */
    const struct bl_repack_row *repack;  /* a type the loader repacks (repack.h), or NULL */
    const uint8_t *data;  /* inside the mapping, aligned to the file's alignment     */
    int64_t nbytes;       /* -1: a foreign type of unknown size                      */
} bl_gguf_tensor;

struct bl_gguf {
    char *path;
    const uint8_t *base;
    size_t size;
    uint32_t version;
    uint32_t alignment;
    size_t data_start;
    int64_t n_kv, n_tensors;
    bl_gguf_kv *kv;                 /* in file order */
    bl_gguf_tensor *tensors;        /* in file order */
    const bl_gguf_kv **kv_by_key;   /* sorted by key, for lookups */
    bl_gguf_tensor **tensor_by_name;/* sorted by name, for lookups */
};

/* For tensors whose GGUF type id names several layouts, picks the layout by
 * the bytes before the next tensor (gguf_layouts.c). offsets: each tensor's
 * data offset, in file order; data_start is set. */
int bl_gguf_choose_layouts(const bl_gguf *g, const uint64_t *offsets);

/* Records "path: message" for bl_last_error() and returns status. */
int bl_gguf_fail(const bl_gguf *g, bl_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

const bl_gguf_kv *bl_gguf_find(const bl_gguf *g, const char *key);
const bl_gguf_tensor *bl_gguf_tensor_find(const bl_gguf *g, const char *name);

/* Typed getters: 1 = found and stored, 0 = absent, < 0 = present with the
 * wrong type (an error naming the key). */
int bl_gguf_get_int(const bl_gguf *g, const char *key, int64_t *out);
int bl_gguf_get_float(const bl_gguf *g, const char *key, double *out);
int bl_gguf_get_bool(const bl_gguf *g, const char *key, int *out);
/* The string is not NUL-terminated inside the file: *len gives its length. */
int bl_gguf_get_string(const bl_gguf *g, const char *key, const char **str, size_t *len);

/* Bytes of one value of type at p (validated when the file opened). */
size_t bl_gguf_value_bytes(bl_gguf_value_type type, const uint8_t *p);
/* Bytes of one scalar of type; 0 for strings and arrays. */
size_t bl_gguf_scalar_bytes(bl_gguf_value_type type);

#endif
