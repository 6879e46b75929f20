/* Runs libbitllm's packing and matrix products on files, for tests that
 * cannot load the library into Python: the NEON build runs under
 * qemu-aarch64 (tests/kernels/test_neon_qemu.py writes the inputs and checks
 * the outputs).
 *
 *   matmul_driver isas
 *     prints "supported NAME" for each ISA this CPU and build run, then
 *     "default NAME" or "default-error MESSAGE" (honouring $BITLLM_ISA).
 *   matmul_driver run MANIFEST
 *     one case per line: TYPE ROWS COLS N ACT_BITS THREADS ISA ALGO PREFIX TAG
 *     reads PREFIX.weights (int8 values for ternary/sign types, float32
 *     otherwise), PREFIX.scale (float32 row scales, ternary/sign only) and
 *     PREFIX.x (float32 [N, COLS]); writes PREFIX.packed (the packed tensor)
 *     and PREFIX.TAG.y (float32 [N, ROWS]); prints "ok TAG" or
 *     "error TAG MESSAGE". ISA and ALGO are names ("auto" for either).
 *   matmul_driver attend MANIFEST
 *     one bl_attend call per line: PREFIX N N_SEQ N_CTX N_HEAD N_HEAD_KV
 *     HEAD_DIM TYPE_K TYPE_V ISA THREADS TAG (cache types by name); reads
 *     PREFIX.q (float32 [N, N_HEAD * HEAD_DIM]), PREFIX.pos and PREFIX.seq
 *     (int32 [N]), PREFIX.k and PREFIX.v (float32 [N_SEQ, N_CTX,
 *     N_HEAD_KV * HEAD_DIM]); writes PREFIX.TAG.out (float32, like q); prints
 *     "ok TAG" or "error TAG MESSAGE". */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bitllm.h"

static const char *const algo_names[] = {"auto", "mad", "lut"};

static int isa_index(const char *name) {
    if (strcmp(name, "auto") == 0) return BL_ISA_AUTO;
    for (int i = 0; i < BL_ISA_COUNT; i++)
        if (strcmp(name, bl_isa_name(i)) == 0) return i;
    return -100; /* unknown: bl_matmul reports it */
}

static int algo_index(const char *name) {
    for (int i = 0; i < 3; i++)
        if (strcmp(name, algo_names[i]) == 0) return i;
    return -100;
}

#define PREFIX_MAX 1024
#define TAG_MAX 128

static void *allocate(size_t bytes) {
    void *data = malloc(bytes ? bytes : 1);
    if (!data) {
        fprintf(stderr, "out of memory for %zu bytes\n", bytes);
        exit(2);
    }
    return data;
}

static void *read_file(const char *prefix, const char *suffix, size_t bytes) {
    char path[PREFIX_MAX + TAG_MAX + 16];
    snprintf(path, sizeof path, "%s.%s", prefix, suffix);
    FILE *f = fopen(path, "rb");
    void *data = allocate(bytes);
    if (!f || fread(data, 1, bytes, f) != bytes) {
        fprintf(stderr, "cannot read %zu bytes from %s\n", bytes, path);
        exit(2);
    }
    fclose(f);
    return data;
}

static void write_file(const char *prefix, const char *suffix, const void *data, size_t bytes) {
    char path[PREFIX_MAX + TAG_MAX + 16];
    snprintf(path, sizeof path, "%s.%s", prefix, suffix);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, bytes, f) != bytes || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
}

/* Packs the case's weights; returns the packed tensor or NULL (error printed). */
static void *pack(const char *type, int64_t rows, int64_t cols, const char *prefix,
                  const char *tag, int64_t *bytes) {
    bl_type_info info;
    *bytes = bl_tensor_bytes(type, rows, cols);
    if (bl_type_by_name(type, &info) != BL_OK || *bytes < 0) {
        printf("error %s %s\n", tag, bl_last_error());
        return NULL;
    }
    void *packed = allocate((size_t)*bytes);
    int bit_type = info.kind == BL_KIND_TERNARY || info.kind == BL_KIND_SIGN;
    size_t count = (size_t)(rows * cols);
    void *weights = read_file(prefix, "weights", count * (bit_type ? 1 : 4));
    int rc;
    if (bit_type) {
        float *scale = read_file(prefix, "scale", (size_t)rows * 4);
        rc = bl_pack(type, weights, scale, rows, cols, packed, *bytes);
        free(scale);
    } else {
        rc = bl_quantize(type, weights, rows, cols, packed, *bytes);
    }
    free(weights);
    if (rc != BL_OK) {
        printf("error %s %s\n", tag, bl_last_error());
        free(packed);
        return NULL;
    }
    write_file(prefix, "packed", packed, (size_t)*bytes);
    return packed;
}

static void run_case(const char *type, int64_t rows, int64_t cols, int64_t n, int act_bits,
                     int threads, const char *isa, const char *algo, const char *prefix,
                     const char *tag) {
    int64_t bytes;
    void *packed = pack(type, rows, cols, prefix, tag, &bytes);
    if (!packed) return;
    float *x = read_file(prefix, "x", (size_t)(n * cols) * 4);
    float *y = allocate((size_t)(n * rows) * 4);
    bl_matmul_options options = {isa_index(isa), threads, act_bits, algo_index(algo)};
    if (bl_matmul(type, packed, bytes, rows, cols, x, n, y, &options) == BL_OK) {
        char suffix[TAG_MAX + 8];
        snprintf(suffix, sizeof suffix, "%s.y", tag);
        write_file(prefix, suffix, y, (size_t)(n * rows) * 4);
        printf("ok %s\n", tag);
    } else {
        printf("error %s %s\n", tag, bl_last_error());
    }
    free(packed);
    free(x);
    free(y);
}

static int run_manifest(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        return 2;
    }
    char type[64], isa[64], algo[64], prefix[PREFIX_MAX], tag[TAG_MAX];
    long long rows, cols, n;
    int act_bits, threads;
    while (fscanf(f, "%63s %lld %lld %lld %d %d %63s %63s %1023s %127s", type, &rows, &cols, &n,
                  &act_bits, &threads, isa, algo, prefix, tag) == 10)
        run_case(type, rows, cols, n, act_bits, threads, isa, algo, prefix, tag);
    int complete = feof(f);
    fclose(f);
    if (!complete) {
        fprintf(stderr, "%s: malformed line\n", path);
        return 2;
    }
    return 0;
}

static void print_isas(void) {
    for (int i = 0; i < BL_ISA_COUNT; i++)
        if (bl_isa_supported(i)) printf("supported %s\n", bl_isa_name(i));
    int isa = bl_isa_default();
    if (isa >= 0)
        printf("default %s\n", bl_isa_name(isa));
    else
        printf("default-error %s\n", bl_last_error());
}

static int kv_type_index(const char *name) {
    for (int i = 0; i < BL_KV_TYPE_COUNT; i++)
        if (strcmp(name, bl_kv_type_name(i)) == 0) return i;
    return -100; /* unknown: bl_attend reports it */
}

/* One attend line; 0 when it was read, 1 at the end of the manifest. */
static int attend_line(FILE *m) {
    char prefix[PREFIX_MAX], type_k[16], type_v[16], isa[32], tag[TAG_MAX];
    int n, n_seq, n_ctx, n_head, n_head_kv, head_dim, threads;
    int got = fscanf(m, "%1023s %d %d %d %d %d %d %15s %15s %31s %d %127s", prefix, &n, &n_seq,
                     &n_ctx, &n_head, &n_head_kv, &head_dim, type_k, type_v, isa, &threads, tag);
    if (got != 12) return 1;
    size_t q_floats = (size_t)n * n_head * head_dim;
    size_t kv_floats = (size_t)n_seq * n_ctx * n_head_kv * head_dim;
    float *q = read_file(prefix, "q", q_floats * 4), *out = allocate(q_floats * 4);
    int32_t *pos = read_file(prefix, "pos", (size_t)n * 4), *seq = read_file(prefix, "seq", (size_t)n * 4);
    float *k = read_file(prefix, "k", kv_floats * 4), *v = read_file(prefix, "v", kv_floats * 4);
    int rc = bl_attend(q, n, pos, seq, k, v, n_seq, n_ctx, n_head, n_head_kv, head_dim,
                       kv_type_index(type_k), kv_type_index(type_v), isa_index(isa), threads, out);
    if (rc == BL_OK) {
        char suffix[TAG_MAX + 8];
        snprintf(suffix, sizeof suffix, "%s.out", tag);
        write_file(prefix, suffix, out, q_floats * 4);
        printf("ok %s\n", tag);
    } else {
        printf("error %s %s\n", tag, bl_last_error());
    }
    free(q), free(out), free(pos), free(seq), free(k), free(v);
    return 0;
}

static int run_attend(const char *manifest) {
    FILE *m = fopen(manifest, "r");
    if (!m) {
        fprintf(stderr, "cannot open %s\n", manifest);
        return 2;
    }
    while (attend_line(m) == 0) {
    }
    fclose(m);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "isas") == 0) {
        print_isas();
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "run") == 0) return run_manifest(argv[2]);
    if (argc == 3 && strcmp(argv[1], "attend") == 0) return run_attend(argv[2]);
    fprintf(stderr, "usage: %s isas | %s run MANIFEST | %s attend MANIFEST\n", argv[0], argv[0],
            argv[0]);
    return 2;
}
