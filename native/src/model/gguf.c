/* GGUF parsing: bl_gguf_open. The file is read through a cursor that refuses
 * to step past its end, counts are checked against the bytes left before
 * anything is allocated for them, tensor sizes are computed with overflow
 * checks and no two tensors' bytes overlap. Reading values: gguf_read.c. */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "repack.h"

#define GGUF_MAGIC "GGUF"
#define DEFAULT_ALIGNMENT 32
#define MAX_DIMS 4
#define MAX_KEY_BYTES 65535
#define MAX_NAME_BYTES 255
#define MAX_ARRAY_NESTING 8
/* The smallest encodings, to bound counts by the bytes left. */
#define MIN_KV_BYTES 13     /* key length 8 + type 4 + a one-byte value            */
#define MIN_TENSOR_BYTES 32 /* name length 8 + n_dims 4 + one dim 8 + type 4 + offset 8 */

typedef struct cursor {
    const bl_gguf *g;
    const bl_gguf_params *params;
    const uint8_t *p, *end;
    const char *key; /* the metadata entry being read, for messages; NULL outside one */
} cursor;

int bl_gguf_fail(const bl_gguf *g, bl_status status, const char *fmt, ...) {
    char message[400];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof message, fmt, args);
    va_end(args);
    return bl_fail(status, "%s: %s", g->path, message);
}

/* A malformed file. */
#define fail(g, ...) bl_gguf_fail(g, BL_ERR_INVALID_ARGUMENT, __VA_ARGS__)

static size_t left(const cursor *c) { return (size_t)(c->end - c->p); }
static size_t offset(const cursor *c) { return (size_t)(c->p - c->g->base); }

/* The next n bytes, or NULL (an error recorded) when the file ends first. */
static const uint8_t *take(cursor *c, size_t n, const char *what) {
    if (n > left(c)) {
        if (c->key)
            fail(c->g, "truncated: %s of key '%s' at byte %zu needs %zu bytes, %zu left", what,
                 c->key, offset(c), n, left(c));
        else
            fail(c->g, "truncated: %s at byte %zu needs %zu bytes, %zu left", what, offset(c), n,
                 left(c));
        return NULL;
    }
    const uint8_t *p = c->p;
    c->p += n;
    return p;
}

static int read_u32(cursor *c, const char *what, uint32_t *out) {
    const uint8_t *b = take(c, 4, what);
    if (!b) return BL_ERR_INVALID_ARGUMENT;
    memcpy(out, b, 4);
    return BL_OK;
}

static int read_u64(cursor *c, const char *what, uint64_t *out) {
    const uint8_t *b = take(c, 8, what);
    if (!b) return BL_ERR_INVALID_ARGUMENT;
    memcpy(out, b, 8);
    return BL_OK;
}

/* A length-prefixed string: its bytes in place, or NULL (an error recorded). */
static const uint8_t *read_string(cursor *c, const char *what, size_t max, size_t *len) {
    uint64_t n;
    if (read_u64(c, what, &n) != BL_OK) return NULL;
    if (n > max || n > left(c)) {
        fail(c->g, "%s at byte %zu has length %llu (%zu bytes left, limit %zu)", what,
             offset(c) - 8, (unsigned long long)n, left(c), max);
        return NULL;
    }
    *len = (size_t)n;
    return take(c, (size_t)n, what);
}

/* A NUL-terminated copy of a name or key, which must hold no NUL itself. */
static int read_name(cursor *c, const char *what, size_t max, char **out) {
    size_t len = 0;
    const uint8_t *bytes = read_string(c, what, max, &len);
    if (!bytes) return BL_ERR_INVALID_ARGUMENT;
    if (memchr(bytes, 0, len))
        return fail(c->g, "%s at byte %zu contains a NUL byte", what, offset(c) - len);
    *out = malloc(len + 1);
    if (!*out) return bl_fail(BL_ERR_OUT_OF_MEMORY, "out of memory for a %zu-byte name", len);
    memcpy(*out, bytes, len);
    (*out)[len] = '\0';
    return BL_OK;
}

static int skip_value(cursor *c, uint32_t type, const char *key, int depth);

static int skip_array(cursor *c, const char *key, int depth) {
    uint32_t type;
    uint64_t count;
    int rc;
    if ((rc = read_u32(c, "array type", &type)) != BL_OK) return rc;
    if ((rc = read_u64(c, "array length", &count)) != BL_OK) return rc;
    if (type >= BL_GGUF_VALUE_TYPE_COUNT)
        return fail(c->g, "key '%s': array of unknown value type %u", key, type);
    if (depth >= MAX_ARRAY_NESTING)
        return fail(c->g, "key '%s': arrays nested deeper than %d", key, MAX_ARRAY_NESTING);
    size_t element = bl_gguf_scalar_bytes((bl_gguf_value_type)type);
    /* Every element takes at least one byte (strings 8, arrays 12). */
    size_t min_element = element ? element : type == BL_GGUF_STRING ? 8 : 12;
    if (count > left(c) / min_element)
        return fail(c->g, "key '%s': array of %llu elements cannot fit in the %zu bytes left", key,
                    (unsigned long long)count, left(c));
    if (element) return take(c, (size_t)count * element, "array data") ? BL_OK
                                                                       : BL_ERR_INVALID_ARGUMENT;
    for (uint64_t i = 0; i < count; i++)
        if ((rc = skip_value(c, type, key, depth + 1)) != BL_OK) return rc;
    return BL_OK;
}

static int skip_value(cursor *c, uint32_t type, const char *key, int depth) {
    if (type == BL_GGUF_ARRAY) return skip_array(c, key, depth);
    size_t n = bl_gguf_scalar_bytes((bl_gguf_value_type)type), len;
    const uint8_t *bytes = type == BL_GGUF_STRING ? read_string(c, "string value", SIZE_MAX, &len)
                                                  : take(c, n, "value");
    return bytes ? BL_OK : BL_ERR_INVALID_ARGUMENT;
}

static int read_kv(cursor *c, bl_gguf_kv *kv) {
    uint32_t type;
    int rc;
    if ((rc = read_name(c, "metadata key", MAX_KEY_BYTES, &kv->key)) != BL_OK) return rc;
    if ((rc = read_u32(c, "value type", &type)) != BL_OK) return rc;
    if (type >= BL_GGUF_VALUE_TYPE_COUNT)
        return fail(c->g, "key '%s' has unknown value type %u", kv->key, type);
    kv->type = (bl_gguf_value_type)type;
    kv->value = c->p;
    c->key = kv->key;
    rc = skip_value(c, type, kv->key, 0);
    c->key = NULL;
    return rc;
}

/* The caller's size of a kept foreign type, or NULL. */
static const bl_gguf_foreign_type *foreign_type(const bl_gguf_params *params, uint32_t id) {
    for (int32_t i = 0; params && params->foreign_types && i < params->n_foreign_types; i++)
        if (params->foreign_types[i].gguf_type == id) return &params->foreign_types[i];
    return NULL;
}

static int find_type(const cursor *c, bl_gguf_tensor *t) {
    bl_type_id first;
    if (bl_type_layouts(t->gguf_type, &first, 1) > 0) { /* several: gguf_layouts.c picks */
        t->type = first;
        t->known = 1;
        return BL_OK;
    }
    char known[256] = "";
    for (int i = 0; i < BL_TYPE_COUNT; i++) {
        const bl_type_info *info = &bl_traits((bl_type_id)i)->info;
        size_t used = strlen(known);
        snprintf(known + used, sizeof known - used, "%s%s %u", i ? ", " : "", info->name,
                 info->gguf_type);
    }
    /* A type the loader repacks into one of ours is read, never refused. */
    if ((t->repack = bl_repack_find(t->gguf_type))) return BL_OK;
    if (c->params && c->params->keep_unknown_types) {
        t->foreign = foreign_type(c->params, t->gguf_type);
        return BL_OK;
    }
    return bl_gguf_fail(c->g, BL_ERR_UNKNOWN_TYPE,
                       "tensor '%s' has type id %u, which bitllm does not know (known: %s)",
                       t->name, t->gguf_type, known);
}

static int read_tensor_info(cursor *c, bl_gguf_tensor *t, uint64_t *data_offset) {
    int rc;
    if ((rc = read_name(c, "tensor name", MAX_NAME_BYTES, &t->name)) != BL_OK) return rc;
    if ((rc = read_u32(c, "tensor dimension count", &t->n_dims)) != BL_OK) return rc;
    if (t->n_dims < 1 || t->n_dims > MAX_DIMS)
        return fail(c->g, "tensor '%s' has %u dimensions (1 to %d allowed)", t->name, t->n_dims,
                    MAX_DIMS);
    for (int d = 0; d < MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t ne;
        if ((rc = read_u64(c, "tensor dimension", &ne)) != BL_OK) return rc;
        if (ne == 0 || ne > (uint64_t)c->g->size * 8)
            return fail(c->g, "tensor '%s' dimension %u is %llu, impossible in a %zu-byte file",
                        t->name, d, (unsigned long long)ne, c->g->size);
        t->ne[d] = (int64_t)ne;
    }
    if ((rc = read_u32(c, "tensor type", &t->gguf_type)) != BL_OK) return rc;
    if ((rc = find_type(c, t)) != BL_OK) return rc;
    return read_u64(c, "tensor data offset", data_offset);
}

/* Rows of a tensor (every dimension but the first), or -1 when it overflows. */
static int64_t tensor_rows(const bl_gguf_tensor *t) {
    int64_t rows = 1;
    for (uint32_t d = 1; d < t->n_dims; d++)
        if (__builtin_mul_overflow(rows, t->ne[d], &rows)) return -1;
    return rows;
}

/* Size of a tensor's data, or -1 when it overflows. */
static int64_t tensor_bytes(const bl_gguf_tensor *t) {
    const bl_type_traits *traits = bl_traits(t->type);
    int64_t rows = tensor_rows(t), row_bytes = bl_row_data_bytes(traits, t->ne[0]), total;
    if (rows < 0 || __builtin_mul_overflow(rows, row_bytes, &total)) return -1;
    if (traits->info.row_scale && __builtin_add_overflow(total, rows * 4, &total)) return -1;
    return total;
}

/* Size of a foreign tensor of the caller's block size f, or -1 when it overflows. */
static int64_t foreign_tensor_bytes(const bl_gguf_tensor *t, const bl_gguf_foreign_type *f) {
    int64_t rows = tensor_rows(t), total;
    int64_t row_bytes = t->ne[0] / f->block_weights * (int64_t)f->block_bytes;
    if (rows < 0 || __builtin_mul_overflow(rows, row_bytes, &total)) return -1;
    return total;
}

/* Checks that rows fill whole blocks of a block type, and tells the tensor's size:
 * *sized is 0 for a foreign type of unknown size, else *nbytes is the size (-1 when it
 * overflows). */
static int size_tensor(const cursor *c, const bl_gguf_tensor *t, int *sized, int64_t *nbytes) {
    if (t->repack) { /* its own rule, which may span rows */
        int64_t rows = tensor_rows(t), n;
        char why[160];
        if (rows < 0 || __builtin_mul_overflow(rows, t->ne[0], &n))
            return fail(c->g, "tensor '%s': its %s size overflows", t->name, t->repack->name);
        *sized = 1;
        if ((*nbytes = t->repack->source_bytes(n, t->ne[0], why, sizeof why)) < 0)
            return fail(c->g, "tensor '%s' (%s): %s", t->name, t->repack->name, why);
        return BL_OK;
    }
    const bl_type_info *info = t->known ? &bl_traits(t->type)->info : NULL;
    const bl_gguf_foreign_type *foreign = t->foreign;
    uint32_t block = info && info->kind == BL_KIND_QUANT ? info->block_weights
                     : foreign                            ? foreign->block_weights
                                                          : 1;
    if (block > 1 && t->ne[0] % block)
        return fail(c->g, "tensor '%s': %s rows must be a multiple of %u long, got %lld",
                    t->name, info ? info->name : foreign->name, block, (long long)t->ne[0]);
    *sized = info || foreign;
    *nbytes = info ? tensor_bytes(t) : foreign ? foreign_tensor_bytes(t, foreign) : -1;
    return BL_OK;
}

static int place_tensor(const cursor *c, bl_gguf_tensor *t, uint64_t data_offset) {
    const bl_gguf *g = c->g;
    int sized = 0, rc = size_tensor(c, t, &sized, &t->nbytes);
    if (rc != BL_OK) return rc;
    if (data_offset % g->alignment)
        return fail(g, "tensor '%s': data offset %llu is not a multiple of the alignment %u",
                    t->name, (unsigned long long)data_offset, g->alignment);
    size_t room = g->size - g->data_start;
    if (!sized && data_offset > room)
        return fail(g, "tensor '%s' of unknown size: data offset %llu is past the end of the "
                    "file (%zu data bytes)", t->name, (unsigned long long)data_offset, room);
    if (sized &&
        (t->nbytes < 0 || data_offset > room || (uint64_t)t->nbytes > room - data_offset))
        return fail(g, "tensor '%s': %lld bytes at data offset %llu run past the end of the file "
                    "(%zu data bytes)", t->name, (long long)t->nbytes,
                    (unsigned long long)data_offset, room);
    t->data = g->base + g->data_start + data_offset;
    return BL_OK;
}

/* The lookup tables: pointers sorted by key and by name, each name once. */
static int compare_kv_ptr(const void *a, const void *b) {
    return strcmp((*(const bl_gguf_kv *const *)a)->key, (*(const bl_gguf_kv *const *)b)->key);
}
static int compare_tensor_ptr(const void *a, const void *b) {
    return strcmp((*(bl_gguf_tensor *const *)a)->name, (*(bl_gguf_tensor *const *)b)->name);
}
static int compare_tensor_data(const void *a, const void *b) {
    const uint8_t *x = (*(bl_gguf_tensor *const *)a)->data;
    const uint8_t *y = (*(bl_gguf_tensor *const *)b)->data;
    return (x > y) - (x < y);
}

static int index_kv(bl_gguf *g) {
    g->kv_by_key = malloc((g->n_kv ? (size_t)g->n_kv : 1) * sizeof *g->kv_by_key);
    if (!g->kv_by_key) return bl_fail(BL_ERR_OUT_OF_MEMORY, "out of memory for metadata keys");
    for (int64_t i = 0; i < g->n_kv; i++) g->kv_by_key[i] = &g->kv[i];
    qsort(g->kv_by_key, (size_t)g->n_kv, sizeof *g->kv_by_key, compare_kv_ptr);
    for (int64_t i = 1; i < g->n_kv; i++)
        if (strcmp(g->kv_by_key[i - 1]->key, g->kv_by_key[i]->key) == 0)
            return fail(g, "metadata key '%s' appears twice", g->kv_by_key[i]->key);
    return BL_OK;
}

/* Tensors of known size whose bytes overlap mean a damaged or forged file. */
static int check_overlaps(const bl_gguf *g, bl_gguf_tensor **by_data) {
    int64_t n = 0;
    for (int64_t i = 0; i < g->n_tensors; i++)
        if (g->tensors[i].nbytes >= 0) by_data[n++] = &g->tensors[i];
    qsort(by_data, (size_t)n, sizeof *by_data, compare_tensor_data);
    for (int64_t i = 1; i < n; i++) {
        const bl_gguf_tensor *before = by_data[i - 1], *after = by_data[i];
        if (before->data + before->nbytes > after->data)
            return fail(g, "tensor '%s' (bytes %zu..%zu) overlaps tensor '%s' (from byte %zu)",
                        before->name, (size_t)(before->data - g->base),
                        (size_t)(before->data + before->nbytes - g->base), after->name,
                        (size_t)(after->data - g->base));
    }
    return BL_OK;
}

static int index_tensors(bl_gguf *g) {
    g->tensor_by_name = malloc((g->n_tensors ? (size_t)g->n_tensors : 1) * sizeof(void *));
    if (!g->tensor_by_name)
        return bl_fail(BL_ERR_OUT_OF_MEMORY, "out of memory for tensor names");
    int rc = check_overlaps(g, g->tensor_by_name); /* the table doubles as scratch */
    if (rc != BL_OK) return rc;
    for (int64_t i = 0; i < g->n_tensors; i++) g->tensor_by_name[i] = &g->tensors[i];
    qsort(g->tensor_by_name, (size_t)g->n_tensors, sizeof *g->tensor_by_name, compare_tensor_ptr);
    for (int64_t i = 1; i < g->n_tensors; i++)
        if (strcmp(g->tensor_by_name[i - 1]->name, g->tensor_by_name[i]->name) == 0)
            return fail(g, "tensor '%s' appears twice", g->tensor_by_name[i]->name);
    return BL_OK;
}

static int read_alignment(bl_gguf *g) {
    int64_t alignment;
    int rc = bl_gguf_get_int(g, "general.alignment", &alignment);
    if (rc < 0) return rc;
    g->alignment = DEFAULT_ALIGNMENT;
    if (rc == 0) return BL_OK;
    if (alignment <= 0 || alignment > (1 << 30) || (alignment & (alignment - 1)))
        return fail(g, "general.alignment is %lld, not a power of two", (long long)alignment);
    g->alignment = (uint32_t)alignment;
    return BL_OK;
}

static int read_header(bl_gguf *g, cursor *c) {
    uint64_t n_tensors, n_kv;
    int rc;
    if (!take(c, 4, "magic") || memcmp(g->base, GGUF_MAGIC, 4) != 0)
        return fail(g, "not a GGUF file (no GGUF magic at the start)");
    if ((rc = read_u32(c, "version", &g->version)) != BL_OK) return rc;
    if (g->version == 0x02000000u || g->version == 0x03000000u)
        return bl_gguf_fail(g, BL_ERR_UNSUPPORTED, "big-endian GGUF files are not supported");
    if (g->version != 2 && g->version != 3)
        return bl_gguf_fail(g, BL_ERR_UNSUPPORTED, "GGUF version %u is not supported (2 or 3)",
                           g->version);
    if ((rc = read_u64(c, "tensor count", &n_tensors)) != BL_OK) return rc;
    if ((rc = read_u64(c, "metadata count", &n_kv)) != BL_OK) return rc;
    if (n_kv > left(c) / MIN_KV_BYTES || n_tensors > left(c) / MIN_TENSOR_BYTES)
        return fail(g, "%llu metadata entries and %llu tensors cannot fit in a %zu-byte file",
                    (unsigned long long)n_kv, (unsigned long long)n_tensors, g->size);
    g->n_kv = (int64_t)n_kv;
    g->n_tensors = (int64_t)n_tensors;
    g->kv = calloc(n_kv ? n_kv : 1, sizeof *g->kv);
    g->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors)
        return bl_fail(BL_ERR_OUT_OF_MEMORY, "out of memory for %llu tensor infos",
                       (unsigned long long)n_tensors);
    return BL_OK;
}

static int parse(bl_gguf *g, const bl_gguf_params *params) {
    cursor c = {.g = g, .params = params, .p = g->base, .end = g->base + g->size};
    int rc;
    if ((rc = read_header(g, &c)) != BL_OK) return rc;
    for (int64_t i = 0; i < g->n_kv; i++)
        if ((rc = read_kv(&c, &g->kv[i])) != BL_OK) return rc;
    if ((rc = index_kv(g)) != BL_OK) return rc;
    if ((rc = read_alignment(g)) != BL_OK) return rc;

    uint64_t *offsets = calloc(g->n_tensors ? (size_t)g->n_tensors : 1, sizeof *offsets);
    if (!offsets) return bl_fail(BL_ERR_OUT_OF_MEMORY, "out of memory for tensor offsets");
    for (int64_t i = 0; i < g->n_tensors && rc == BL_OK; i++)
        rc = read_tensor_info(&c, &g->tensors[i], &offsets[i]);
    g->data_start = (offset(&c) + g->alignment - 1) / g->alignment * g->alignment;
    if (rc == BL_OK && g->n_tensors && g->data_start > g->size)
        rc = fail(g, "truncated: the tensor data would start at byte %zu", g->data_start);
    if (rc == BL_OK) rc = bl_gguf_choose_layouts(g, offsets);
    for (int64_t i = 0; i < g->n_tensors && rc == BL_OK; i++)
        rc = place_tensor(&c, &g->tensors[i], offsets[i]);
    free(offsets);
    if (rc != BL_OK) return rc;
    return index_tensors(g);
}

static int map_file(bl_gguf *g) {
    int fd = open(g->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return bl_gguf_fail(g, BL_ERR_IO, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return bl_gguf_fail(g, BL_ERR_IO, "not a regular file");
    }
    g->size = (size_t)st.st_size;
    if (g->size < 24) {
        close(fd);
        return fail(g, "not a GGUF file (%zu bytes, shorter than a GGUF header)", g->size);
    }
    void *base = mmap(NULL, g->size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd);
    if (base == MAP_FAILED)
        return bl_gguf_fail(g, BL_ERR_IO, "cannot map %zu bytes: %s", g->size, strerror(err));
    g->base = base;
    return BL_OK;
}

int bl_gguf_open(const char *path, const bl_gguf_params *params, bl_gguf **out) {
    if (!path || !out) return bl_fail(BL_ERR_INVALID_ARGUMENT, "GGUF path or output is NULL");
    *out = NULL;
    if (params && params->n_foreign_types && !params->foreign_types)
        return bl_fail(BL_ERR_INVALID_ARGUMENT, "bl_gguf_open: foreign_types is NULL");
    for (int32_t i = 0; params && i < params->n_foreign_types; i++) {
        const bl_gguf_foreign_type *f = &params->foreign_types[i];
        if (!f->name || !f->block_weights || !f->block_bytes)
            return bl_fail(BL_ERR_INVALID_ARGUMENT,
                           "bl_gguf_open: foreign type %u lacks a name or a block size",
                           f->gguf_type);
    }
    bl_gguf *g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup(path))) {
        free(g);
        return bl_fail(BL_ERR_OUT_OF_MEMORY, "out of memory opening %s", path);
    }
    int rc = map_file(g);
    if (rc == BL_OK) rc = parse(g, params);
    if (rc != BL_OK) {
        bl_gguf_free(g);
        return rc;
    }
    *out = g;
    return BL_OK;
}

void bl_gguf_free(bl_gguf *g) {
    if (!g) return;
    for (int64_t i = 0; g->kv && i < g->n_kv; i++) free(g->kv[i].key);
    for (int64_t i = 0; g->tensors && i < g->n_tensors; i++) free(g->tensors[i].name);
    free(g->kv);
    free(g->tensors);
    free(g->kv_by_key);
    free(g->tensor_by_name);
    if (g->base) munmap((void *)g->base, g->size);
    free(g->path);
    free(g);
}
