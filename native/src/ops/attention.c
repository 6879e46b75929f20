/* The attention driver (see attention.h): tiles the query rows, deals the
 * chunk kernel's work to threads and folds its partials in chunk order.
 *
 * Prefill: an item is (tile of up to TILE_ROWS rows of one sequence, K/V
 * head); it runs every chunk the tile sees, folding as it goes, in the
 * thread's own scratch. Decode (few rows): an item is (row, K/V head, chunk),
 * so that one token's positions spread over the threads; partials of up to
 * WAVE_CHUNKS chunks wait in a shared buffer and are folded after each wave.
 * Both fold the same partials in the same order with the same code. */
#include "attention.h"

#include <stdatomic.h>
#include <string.h>

#include "bitllm.h"
#include "base/activations.h"
#include "base/error.h"
#include "base/threadpool.h"
#include "base/vec.h"
#include "kernels/kernels.h"

#define TILE_ROWS 16   /* query rows sharing each converted K/V row in prefill   */
#define DECODE_ROWS 4  /* calls of at most this many rows may split positions    */
#define WAVE_CHUNKS 16 /* chunks of one decode wave (4096 positions)             */

typedef struct tile {
    int row0, rows;
} tile;

/* Floats of one (row, head) state or partial: max, sum, then head_dim accumulators. */
static size_t state_floats(int head_dim) { return 2 + (size_t)head_dim; }

/* Scratch layout, in floats, from the start of a's scratch. */
typedef struct layout {
    size_t per_thread; /* scores, one K/V row, a partial and a state per (tile row, head) */
    size_t threads_at, waves_at, states_at, q8_at, tiles_at, total;
} layout;

/* q8 blocks of one query row (all heads), for a q8_0 key cache. */
static size_t q8_blocks_per_row(int n_head, int head_dim) {
    return (size_t)n_head * (size_t)((head_dim + 31) / 32);
}

static layout layout_for(int max_rows, int threads, int n_head, int n_head_kv, int head_dim) {
    size_t group = (size_t)(n_head / n_head_kv), tile_heads = TILE_ROWS * group;
    size_t st = state_floats(head_dim);
    layout l = {0};
    l.per_thread = tile_heads * BL_ATTN_CHUNK + bl_attn_row_floats(head_dim)
                   + 2 * tile_heads * st;
    l.threads_at = 0;
    l.waves_at = l.threads_at + (size_t)threads * l.per_thread;
    l.states_at = l.waves_at + (size_t)DECODE_ROWS * n_head * WAVE_CHUNKS * st;
    l.q8_at = l.states_at + (size_t)DECODE_ROWS * n_head * st;
    l.tiles_at = l.q8_at + (size_t)max_rows * q8_blocks_per_row(n_head, head_dim)
                           * (sizeof(bl_q8_block) / sizeof(float));
    l.total = l.tiles_at + ((size_t)max_rows * sizeof(tile) + sizeof(float) - 1) / sizeof(float);
    return l;
}

size_t bl_attention_scratch_bytes(int max_rows, int threads, int n_head, int n_head_kv,
                                  int head_dim) {
    return layout_for(max_rows, threads, n_head, n_head_kv, head_dim).total * sizeof(float);
}

/* A partial or state: m[count], l[count], then acc[count, head_dim]. */
typedef struct partials {
    float *m, *l, *acc;
} partials;

static partials partials_at(float *base, size_t count, int head_dim) {
    return (partials){base, base + count, base + 2 * count};
}

/* Folds chunk partial (m, l, a) into the running state (M, L, acc). */
static void fold(float *M, float *L, float *acc, float m, float l, const float *a, int head_dim) {
    float max = m > *M ? m : *M;
    float old = bl_softmax_weight(*M - max), new = bl_softmax_weight(m - max);
    *L = *L * old + l * new;
    for (int d = 0; d < head_dim; d++) acc[d] = acc[d] * old + a[d] * new;
    *M = max;
}

/* The first chunk is the state; later ones fold into it. */
static void fold_or_start(partials s, size_t si, int chunk, float m, float l, const float *a,
                          int head_dim) {
    float *acc = s.acc + si * head_dim;
    if (chunk == 0) {
        s.m[si] = m;
        s.l[si] = l;
        memcpy(acc, a, (size_t)head_dim * sizeof *acc);
    } else {
        fold(&s.m[si], &s.l[si], acc, m, l, a, head_dim);
    }
}

static void finish(const float *acc, float sum, float *out, int head_dim) {
    for (int d = 0; d < head_dim; d++) out[d] = acc[d] / sum;
}

typedef struct run {
    const bl_attention *a;
    bl_attn_chunk_fn kernel;
    layout lay;
    const tile *tiles;
    const bl_q8_block *q8; /* the queries in q8 blocks, for a q8_0 key cache */
    int n_tiles, group;
    atomic_int next;
    int wave0; /* decode: the wave's first chunk */
} run;

static int chunk_of(int32_t pos) { return pos / BL_ATTN_CHUNK; }

/* The kernel's task for rows [row0, row0 + rows) of one sequence, K/V head
 * kvh, chunk; partials go to out. */
static bl_attn_chunk task_for(const run *r, int row0, int rows, int kvh, int chunk, float *scores,
                              float *row, partials out) {
    const bl_attention *a = r->a;
    const bl_kv_cache *c = a->cache[row0];
    size_t hd = (size_t)a->head_dim;
    size_t q_stride = (size_t)a->n_head * hd;
    size_t q8_stride = q8_blocks_per_row(a->n_head, a->head_dim);
    return (bl_attn_chunk){
        .q = a->q + (size_t)row0 * q_stride + (size_t)kvh * r->group * hd,
        .q_stride = q_stride,
        .q8 = r->q8 ? r->q8 + (size_t)row0 * q8_stride + (size_t)kvh * r->group * (hd / 32)
                    : NULL,
        .q8_stride = q8_stride,
        .pos = a->pos + row0,
        .rows = rows,
        .group = r->group,
        .head_dim = a->head_dim,
        .scale = a->scale,
        .k = bl_kv_key_head(c, a->layer, kvh),
        .v = bl_kv_value_head(c, a->layer, kvh),
        .k_stride = c->k_head_bytes,
        .v_stride = c->v_head_bytes,
        .type_k = c->type_k,
        .type_v = c->type_v,
        .start = chunk * BL_ATTN_CHUNK,
        .end = (chunk + 1) * BL_ATTN_CHUNK,
        .scores = scores,
        .row = row,
        .m = out.m,
        .l = out.l,
        .acc = out.acc,
    };
}

static float *thread_scratch(const run *r, int index) {
    return (float *)r->a->scratch + r->lay.threads_at + (size_t)index * r->lay.per_thread;
}

/* Prefill item: every chunk of one tile and K/V head. */
static void tile_item(const run *r, int item, float *scratch) {
    const bl_attention *a = r->a;
    const tile *t = &r->tiles[item / a->n_head_kv];
    int kvh = item % a->n_head_kv, hd = a->head_dim;
    size_t count = (size_t)t->rows * r->group;
    float *scores = scratch, *row = scores + (size_t)TILE_ROWS * r->group * BL_ATTN_CHUNK;
    partials part = partials_at(row + bl_attn_row_floats(hd), count, hd);
    partials state = partials_at(part.m + count * state_floats(hd), count, hd);
    const int32_t *pos = a->pos + t->row0;
    int last = chunk_of(pos[t->rows - 1]);
    for (int chunk = 0; chunk <= last; chunk++) {
        bl_attn_chunk task = task_for(r, t->row0, t->rows, kvh, chunk, scores, row, part);
        r->kernel(&task);
        for (int i = 0; i < t->rows; i++) {
            if (pos[i] < chunk * BL_ATTN_CHUNK) continue;
            for (int g = 0; g < r->group; g++) {
                size_t si = (size_t)i * r->group + g;
                fold_or_start(state, si, chunk, part.m[si], part.l[si], part.acc + si * hd, hd);
            }
        }
    }
    size_t q_stride = (size_t)a->n_head * hd;
    for (int i = 0; i < t->rows; i++)
        for (int g = 0; g < r->group; g++) {
            size_t si = (size_t)i * r->group + g;
            float *out = a->out + (size_t)(t->row0 + i) * q_stride
                         + ((size_t)kvh * r->group + g) * hd;
            finish(state.acc + si * hd, state.l[si], out, hd);
        }
}

static void run_tiles(void *ctx, int index, int count) {
    run *r = ctx;
    float *scratch = thread_scratch(r, index);
    int items = r->n_tiles * r->a->n_head_kv;
    for (int item; (item = atomic_fetch_add(&r->next, 1)) < items;) tile_item(r, item, scratch);
}

/* Decode: the partial slot of (row, K/V head, chunk of the wave). */
static partials wave_slot(const run *r, int row, int kvh, int wave_chunk) {
    const bl_attention *a = r->a;
    size_t hd = (size_t)a->head_dim;
    size_t slot = (((size_t)row * a->n_head_kv + kvh) * WAVE_CHUNKS + wave_chunk);
    float *base = (float *)a->scratch + r->lay.waves_at + slot * r->group * state_floats((int)hd);
    return partials_at(base, (size_t)r->group, (int)hd);
}

static void run_wave(void *ctx, int index, int count) {
    run *r = ctx;
    const bl_attention *a = r->a;
    float *scores = thread_scratch(r, index);
    float *row = scores + (size_t)TILE_ROWS * r->group * BL_ATTN_CHUNK;
    int per_row = a->n_head_kv * WAVE_CHUNKS, items = a->n * per_row;
    for (int item; (item = atomic_fetch_add(&r->next, 1)) < items;) {
        int t = item / per_row, kvh = item % per_row / WAVE_CHUNKS, wc = item % WAVE_CHUNKS;
        int chunk = r->wave0 + wc;
        if (chunk > chunk_of(a->pos[t])) continue;
        bl_attn_chunk task = task_for(r, t, 1, kvh, chunk, scores, row, wave_slot(r, t, kvh, wc));
        r->kernel(&task);
    }
}

static int run_decode(run *r) {
    const bl_attention *a = r->a;
    int hd = a->head_dim, last = 0;
    for (int t = 0; t < a->n; t++) last = chunk_of(a->pos[t]) > last ? chunk_of(a->pos[t]) : last;
    partials state = partials_at((float *)a->scratch + r->lay.states_at,
                                 (size_t)DECODE_ROWS * a->n_head, hd);
    for (r->wave0 = 0; r->wave0 <= last; r->wave0 += WAVE_CHUNKS) {
        atomic_store(&r->next, 0);
        int rc = bl_parallel_run(a->pool, a->threads, run_wave, r);
        if (rc != BL_OK) return rc;
        for (int t = 0; t < a->n; t++)
            for (int kvh = 0; kvh < a->n_head_kv; kvh++)
                for (int wc = 0; wc < WAVE_CHUNKS; wc++) {
                    int chunk = r->wave0 + wc;
                    if (chunk > chunk_of(a->pos[t])) break;
                    partials p = wave_slot(r, t, kvh, wc);
                    for (int g = 0; g < r->group; g++) {
                        size_t si = (size_t)t * a->n_head + (size_t)kvh * r->group + g;
                        fold_or_start(state, si, chunk, p.m[g], p.l[g], p.acc + (size_t)g * hd,
                                      hd);
                    }
                }
    }
    size_t q_stride = (size_t)a->n_head * hd;
    for (int t = 0; t < a->n; t++)
        for (int h = 0; h < a->n_head; h++) {
            size_t si = (size_t)t * a->n_head + h;
            finish(state.acc + si * hd, state.l[si], a->out + t * q_stride + (size_t)h * hd, hd);
        }
    return BL_OK;
}

/* Consecutive rows of one sequence, at most TILE_ROWS each. */
static int make_tiles(const bl_attention *a, tile *tiles) {
    int n = 0;
    for (int t = 0; t < a->n; t++) {
        tile *last = n ? &tiles[n - 1] : NULL;
        if (last && last->rows < TILE_ROWS && a->cache[t] == a->cache[last->row0]
            && a->pos[t] > a->pos[t - 1])
            last->rows++;
        else
            tiles[n++] = (tile){t, 1};
    }
    return n;
}

int bl_attention_run(const bl_attention *a) {
    const bl_kernel_table *table = bl_kernels_for((bl_isa)a->isa);
    if (!table) return bl_fail(BL_ERR_UNSUPPORTED, "attention: no kernels for ISA %d", a->isa);
    run r = {
        .a = a,
        .kernel = table->attn_chunk,
        .lay = layout_for(a->n, a->threads, a->n_head, a->n_head_kv, a->head_dim),
        .group = a->n_head / a->n_head_kv,
    };
    atomic_init(&r.next, 0);
    int q8_keys = 0;
    for (int t = 0; t < a->n; t++) q8_keys |= a->cache[t]->type_k == BL_KV_Q8_0;
    if (q8_keys) {
        bl_q8_block *q8 = (bl_q8_block *)((float *)a->scratch + r.lay.q8_at);
        bl_quantize_q8_blocks(a->q, (size_t)a->n * a->n_head, (size_t)a->head_dim, q8);
        r.q8 = q8;
    }
    if (a->n <= DECODE_ROWS && a->n * a->n_head_kv < 4 * a->threads) return run_decode(&r);
    tile *tiles = (tile *)((float *)a->scratch + r.lay.tiles_at);
    r.n_tiles = make_tiles(a, tiles);
    r.tiles = tiles;
    return bl_parallel_run(a->pool, a->threads, run_tiles, &r);
}
