/* GGUF type ids that name more than one layout (types/registry.c,
 * bl_type_layouts): llama.cpp's Q2_0 (id 42) is stored in groups of 64
 * (upstream) or of 128 (PrismML's older files), and nothing in the file but
 * the tensor's byte size says which. Writers lay tensors out one after the
 * other, each padded to the file's alignment, so the bytes from a tensor's
 * offset to the next tensor's (or to the end of the file, for the last one)
 * are its size rounded up: the layout whose size fits them is the one used.
 * Where several fit (tensors so small that their sizes differ by less than
 * the alignment), the layout the file's other tensors of that id were found
 * in wins, else the first of the table (llama.cpp's current one). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "gguf.h"

#define MAX_LAYOUTS 4

static int compare_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Bytes of tensor t in layout id, or -1 when its rows do not fill whole blocks
 * or the size overflows. */
static int64_t layout_bytes(const bl_gguf_tensor *t, bl_type_id id) {
    const bl_type_traits *traits = bl_traits(id);
    if (t->ne[0] % traits->info.block_weights) return -1;
    int64_t rows = 1, total;
    for (uint32_t d = 1; d < t->n_dims; d++)
        if (__builtin_mul_overflow(rows, t->ne[d], &rows)) return -1;
    if (__builtin_mul_overflow(rows, bl_row_data_bytes(traits, t->ne[0]), &total)) return -1;
    return total;
}

/* The bytes from offset to the next tensor's offset, or to the end of the
 * data (*last = 1); -1 when the offset is past the end (placing the tensor
 * reports that). */
static int64_t room_after(const uint64_t *sorted, int64_t n, uint64_t offset, uint64_t end,
                          int *last) {
    int64_t lo = 0, hi = n; /* first offset > offset */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (sorted[mid] <= offset) lo = mid + 1;
        else hi = mid;
    }
    *last = lo == n;
    uint64_t next = *last ? end : sorted[lo];
    return offset > next ? -1 : (int64_t)(next - offset);
}

/* Bit k set: layout ids[k] fits the room. */
static unsigned fitting(const bl_gguf *g, const bl_gguf_tensor *t, const bl_type_id *ids, int n,
                        int64_t room, int last) {
    unsigned fits = 0;
    for (int k = 0; k < n; k++) {
        int64_t size = layout_bytes(t, ids[k]);
        if (size >= 0 && size <= room && (last || room - size < (int64_t)g->alignment))
            fits |= 1u << k;
    }
    return fits;
}

static int fits_none(const bl_gguf *g, const bl_gguf_tensor *t, const bl_type_id *ids, int n,
                     int64_t room) {
    char sizes[200] = "";
    for (int k = 0; k < n; k++) {
        size_t used = strlen(sizes);
        const bl_type_info *info = &bl_traits(ids[k])->info;
        int64_t size = layout_bytes(t, ids[k]);
        if (size >= 0)
            snprintf(sizes + used, sizeof sizes - used, "%s%s (%lld bytes)", k ? " nor " : "",
                     info->name, (long long)size);
        else
            snprintf(sizes + used, sizeof sizes - used, "%s%s (rows of %u)", k ? " nor " : "",
                     info->name, info->block_weights);
    }
    return bl_gguf_fail(g, BL_ERR_INVALID_ARGUMENT,
                        "tensor '%s' (GGUF type id %u): the %lld bytes it has before the next "
                        "tensor fit neither %s",
                        t->name, t->gguf_type, (long long)room, sizes);
}

int bl_gguf_choose_layouts(const bl_gguf *g, const uint64_t *offsets) {
    bl_type_id ids[MAX_LAYOUTS];
    int64_t n = g->n_tensors, any = 0;
    for (int64_t i = 0; i < n; i++)
        if (g->tensors[i].known && bl_type_layouts(g->tensors[i].gguf_type, ids, 0) > 1) any = 1;
    if (!any || g->data_start > g->size) return BL_OK;
    uint64_t *sorted = malloc((size_t)n * sizeof *sorted);
    unsigned *fits = calloc((size_t)n, sizeof *fits);
    if (!sorted || !fits) {
        free(sorted), free(fits);
        return bl_fail(BL_ERR_OUT_OF_MEMORY, "out of memory for tensor offsets");
    }
    memcpy(sorted, offsets, (size_t)n * sizeof *sorted);
    qsort(sorted, (size_t)n, sizeof *sorted, compare_u64);
    int found[BL_TYPE_COUNT] = {0}, rc = BL_OK;
    /* first the tensors whose size names one layout */
    for (int64_t i = 0; i < n && rc == BL_OK; i++) {
        bl_gguf_tensor *t = &g->tensors[i];
        int count = t->known ? bl_type_layouts(t->gguf_type, ids, MAX_LAYOUTS) : 0;
        if (count < 2) continue;
        int last;
        int64_t room = room_after(sorted, n, offsets[i], g->size - g->data_start, &last);
        if (room < 0) continue;
        fits[i] = fitting(g, t, ids, count < MAX_LAYOUTS ? count : MAX_LAYOUTS, room, last);
        if (!fits[i]) rc = fits_none(g, t, ids, count < MAX_LAYOUTS ? count : MAX_LAYOUTS, room);
        else if (!(fits[i] & (fits[i] - 1))) {
            t->type = ids[__builtin_ctz(fits[i])];
            found[t->type]++;
        }
    }
    /* then those several layouts fit: the file's majority, else the table's first */
    for (int64_t i = 0; i < n && rc == BL_OK; i++) {
        if (!fits[i] || !(fits[i] & (fits[i] - 1))) continue;
        bl_type_layouts(g->tensors[i].gguf_type, ids, MAX_LAYOUTS);
        int best = -1;
        for (int k = 0; k < MAX_LAYOUTS; k++)
            if ((fits[i] >> k) & 1 && (best < 0 || found[ids[k]] > found[ids[best]])) best = k;
        g->tensors[i].type = ids[best];
    }
    free(sorted);
    free(fits);
    return rc;
}
