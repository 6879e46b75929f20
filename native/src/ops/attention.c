/* Causal attention, one (query row, head) pair at a time: scores against
 * every visible cached key, a float32 softmax, then the weighted sum of
 * values. Pairs are dealt round-robin to threads, which evens out the causal
 * triangle; each pair is computed the same way on any thread. */
#include <string.h>

#include "ops.h"
#include "threadpool.h"
#include "vec.h"

BL_VECTOR_CLONES
static void attend(const bl_attention *a, int t, int h, float *scores) {
    size_t hd = (size_t)a->head_dim;
    size_t q_stride = (size_t)a->n_head * hd, kv_stride = (size_t)a->n_head_kv * hd;
    int kv_head = h / (a->n_head / a->n_head_kv);
    const float *q = a->q + (size_t)t * q_stride + (size_t)h * hd;
    const float *k = a->k[t] + (size_t)kv_head * hd, *v = a->v[t] + (size_t)kv_head * hd;
    int len = a->pos[t] + 1;

    float max = -3.4e38f;
    for (int j = 0; j < len; j++) {
        scores[j] = bl_vec_dot(q, k + (size_t)j * kv_stride, hd) * a->scale;
        max = scores[j] > max ? scores[j] : max;
    }
    float sum = 0.0f;
    for (int j = 0; j < len; j++) {
        scores[j] = bl_exp(scores[j] - max);
        sum += scores[j];
    }
    for (int j = 0; j < len; j++) scores[j] /= sum;

    /* out = sum_j p_j v_j, four positions per pass over out */
    float *restrict out = a->out + (size_t)t * q_stride + (size_t)h * hd;
    memset(out, 0, hd * sizeof *out);
    int j = 0;
    for (; j + 4 <= len; j += 4) {
        const float *v0 = v + (size_t)j * kv_stride, *v1 = v0 + kv_stride;
        const float *v2 = v1 + kv_stride, *v3 = v2 + kv_stride;
        float p0 = scores[j], p1 = scores[j + 1], p2 = scores[j + 2], p3 = scores[j + 3];
        for (size_t d = 0; d < hd; d++) out[d] += p0 * v0[d] + p1 * v1[d] + p2 * v2[d] + p3 * v3[d];
    }
    for (; j < len; j++) bl_vec_axpy(out, scores[j], v + (size_t)j * kv_stride, hd);
}

static void run_pairs(void *ctx, int index, int count) {
    const bl_attention *a = ctx;
    float *scores = a->scores + (size_t)index * a->scores_stride;
    int pairs = a->n * a->n_head;
    for (int p = index; p < pairs; p += count) attend(a, p / a->n_head, p % a->n_head, scores);
}

int bl_attention_run(const bl_attention *a) {
    return bl_parallel_run(a->pool, a->threads, run_pairs, (void *)a);
}
