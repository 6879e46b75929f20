/* A GGUF file (v2/v3, little-endian), memory-mapped and validated as a whole
 * when it is opened: every count, length, offset and size was checked against
 * the file before anything here points into it, so users of this struct can
 * read what it points at without further bounds checks. */
#ifndef BL_GGUF_H
#define BL_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "types/types.h"

/* Metadata value types, numbered as in the format. */
typedef enum bl_gguf_value_type {
    BL_GGUF_U8 = 0,
    BL_GGUF_I8 = 1,
    BL_GGUF_U16 = 2,
    BL_GGUF_I16 = 3,
    BL_GGUF_U32 = 4,
    BL_GGUF_I32 = 5,
    BL_GGUF_F32 = 6,
    BL_GGUF_BOOL = 7,
    BL_GGUF_STRING = 8,
    BL_GGUF_ARRAY = 9,
    BL_GGUF_U64 = 10,
    BL_GGUF_I64 = 11,
    BL_GGUF_F64 = 12,
    BL_GGUF_VALUE_TYPE_COUNT
} bl_gguf_value_type;

typedef struct bl_gguf_kv {
    char *key;
    bl_gguf_value_type type;
    const uint8_t *value; /* scalars: the value's bytes; strings: the u64 length */
} bl_gguf_kv;

typedef struct bl_gguf_tensor {
    char *name;
    uint32_t n_dims;
    int64_t ne[4];        /* ggml order: ne[0] is the row length; unused dims are 1 */
    bl_type_id type;
    const uint8_t *data;  /* inside the mapping, aligned to the file's alignment */
    int64_t nbytes;
} bl_gguf_tensor;

typedef struct bl_gguf {
    char *path;
    const uint8_t *base;
    size_t size;
    uint32_t version;
    uint32_t alignment;
    int64_t n_kv, n_tensors;
    bl_gguf_kv *kv;          /* sorted by key      */
    bl_gguf_tensor *tensors; /* sorted by name     */
} bl_gguf;

/* Maps and validates path. Errors name the file and the problem. */
int bl_gguf_open(const char *path, bl_gguf **out);
void bl_gguf_close(bl_gguf *g);

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

#endif
