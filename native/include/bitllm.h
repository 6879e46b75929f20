/*
 * bitllm.h - the whole contract between Python (cffi, ABI mode) and libbitllm.
 *
 * Everything between BITLLM_CDEF_BEGIN and BITLLM_CDEF_END is read by cffi's
 * cdef(), so it holds plain C declarations only: no macros, no includes.
 *
 * Errors: every function that can fail returns a negative bl_status and leaves
 * a one-line message for bl_last_error() (per thread). Nothing aborts.
 */
#ifndef BITLLM_H
#define BITLLM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* BITLLM_CDEF_BEGIN */

typedef enum bl_status {
    BL_OK = 0,
    BL_ERR_INVALID_ARGUMENT = -1, /* null pointer, bad shape, bad value */
    BL_ERR_UNKNOWN_TYPE = -2,
    BL_ERR_UNSUPPORTED = -3,      /* ISA not available, type/mode not implemented */
    BL_ERR_OUT_OF_MEMORY = -4,
    BL_ERR_IO = -5
} bl_status;

/* What a tensor type holds; decides which activation format its kernels take. */
typedef enum bl_kind {
    BL_KIND_FLOAT = 0,   /* f32, f16, bf16: float activations            */
    BL_KIND_QUANT = 1,   /* q8_0, q4_0: activations in 32-blocks of int8  */
    BL_KIND_TERNARY = 2, /* bt2, bt1: {-1,0,1} with a float scale per row  */
    BL_KIND_SIGN = 3     /* bs1: {-1,1} with a float scale per row         */
} bl_kind;

typedef enum bl_isa {
    BL_ISA_AUTO = -1,
    BL_ISA_SCALAR = 0,
    BL_ISA_AVX2 = 1,
    BL_ISA_AVX512 = 2,
    BL_ISA_NEON = 3,
    BL_ISA_NEON_DOTPROD = 4, /* NEON with the sdot instruction (ARMv8.2 dotprod) */
    BL_ISA_AVX_VNNI = 5,     /* AVX2 with VEX vpdpbusd (Intel since Alder Lake, AMD Zen 5) */
    BL_ISA_AMX = 6,          /* AVX-512 with AMX-INT8 tiles (Intel Xeon since Sapphire Rapids) */
    BL_ISA_COUNT = 7
} bl_isa;

/* Which kernel family to run for ternary/sign types. AUTO picks the measured
 * fastest for the type, ISA and batch size (see BENCHMARKS.md). */
typedef enum bl_algo {
    BL_ALGO_AUTO = 0,
    BL_ALGO_MAD = 1, /* multiply-add on unpacked codes (vpdpbusd / vpmaddubsw / sdot) */
    BL_ALGO_LUT = 2  /* lookup tables of activation partial sums indexed by weights   */
} bl_algo;

typedef struct bl_type_info {
    const char *name;      /* "bt2", "q8_0", ...                            */
    uint32_t gguf_type;    /* GGUF tensor type id                           */
    bl_kind kind;
    uint32_t block_weights;/* weights per block along a row                 */
    uint32_t block_bytes;  /* bytes per block                               */
    uint32_t row_scale;    /* 1 when a float32 scale per row follows the rows */
} bl_type_info;

typedef struct bl_matmul_options {
    int isa;      /* bl_isa; BL_ISA_AUTO = best available (or $BITLLM_ISA)  */
    int threads;  /* <= 0: one per core                                     */
    int act_bits; /* 8 (BitNet default) or 16; ignored by float/quant types */
    int algo;     /* bl_algo                                                */
} bl_matmul_options;

const char *bl_last_error(void);
const char *bl_version(void);

/* Tensor types. */
int bl_type_count(void);
int bl_type_info_at(int index, bl_type_info *out);
int bl_type_by_name(const char *name, bl_type_info *out);
/* Bytes of one packed row / of a whole rows x cols tensor (row scales included). */
int64_t bl_row_bytes(const char *type, int64_t cols);
int64_t bl_tensor_bytes(const char *type, int64_t rows, int64_t cols);

/* ISAs: which this CPU runs, and which AUTO resolves to ($BITLLM_ISA honoured). */
int bl_isa_supported(int isa);
const char *bl_isa_name(int isa);
int bl_isa_default(void);
/* The ISA whose vector width the plain loops (norms, activation quantization,
 * gates) run at: the widest this CPU runs, capped by $BITLLM_ISA's; read once
 * per process. Results do not depend on it. */
int bl_loops_isa(void);

/* Reference packing (portable C; the layout of docs/FORMAT.md).
 * Ternary/sign: values int8 [rows, cols] in {-1,0,1} / {-1,1}, row_scale float [rows].
 * Float/quant: quantize float32 [rows, cols]. dst holds bl_tensor_bytes(). */
int bl_pack(const char *type, const int8_t *values, const float *row_scale,
            int64_t rows, int64_t cols, void *dst, int64_t dst_bytes);
int bl_quantize(const char *type, const float *src, int64_t rows, int64_t cols,
                void *dst, int64_t dst_bytes);
int bl_unpack(const char *type, const void *src, int64_t src_bytes, int64_t rows, int64_t cols,
              int8_t *values, float *row_scale);
int bl_dequantize(const char *type, const void *src, int64_t src_bytes, int64_t rows,
                  int64_t cols, float *dst);

/* y[n, rows] = x[n, cols] . W[rows, cols]^T for a packed W.
 * Ternary/sign: x quantized per row (int8: s = 127/max|x|, int16: s = 32767/max|x|,
 * max clamped to >= 1e-5, round half to even), integer dot products, then
 * y = dot * row_scale / s. Results are identical for every ISA and thread count. */
int bl_matmul(const char *type, const void *w, int64_t w_bytes, int64_t rows, int64_t cols,
              const float *x, int64_t n, float *y, const bl_matmul_options *options);

/* ---- Models: load a GGUF written by bit-convert and run it -------------- */

typedef struct bl_model bl_model;     /* weights (mmapped) + hyperparameters */
typedef struct bl_context bl_context; /* a KV cache and scratch for one sequence */

/* Where the forward pass runs. */
typedef enum bl_device {
    BL_DEVICE_CPU = 0,
    BL_DEVICE_CUDA = 1 /* an NVIDIA GPU: weights, KV caches and scratch on the device */
} bl_device;

/* Which of bitnet.cpp's three I2_S packings a file holds (the file does not say;
 * docs/INTEROP.md): x86's blocks of 128 weights (what its converter writes and the
 * published files hold), ARM's blocks of 64, or x86's "1x4" groups of 4 rows. */
typedef enum bl_i2s_packing {
    BL_I2S_X86 = 0,
    BL_I2S_ARM = 1,
    BL_I2S_X86_1X4 = 2
} bl_i2s_packing;

typedef struct bl_model_params {
    int threads;  /* <= 0: one per core (CPU work; on CUDA only the embedding lookup) */
    int isa;      /* bl_isa; BL_ISA_AUTO = best available (or $BITLLM_ISA)       */
    int act_bits; /* 0: what the file says (bitllm.activation_bits); 8 or 16    */
    int device;   /* bl_device. CUDA copies the weights to the GPU when the model
                     opens: BL_ERR_UNSUPPORTED names why when the library has no
                     CUDA or no GPU/driver is usable, BL_ERR_OUT_OF_MEMORY when the
                     weights do not fit                                        */
    int i2s_packing; /* bl_i2s_packing of I2_S tensors, repacked to bt2 as the
                        model opens (0: BL_I2S_X86)                            */
} bl_model_params;

typedef struct bl_model_info {
    const char *arch;     /* general.architecture                              */
    int32_t n_vocab;      /* rows of the output head                           */
    int32_t n_ctx_train;  /* {arch}.context_length                             */
    int32_t n_embd;
    int32_t n_layer;
    int32_t n_head;
    int32_t n_head_kv;
    int32_t n_ff;
    int64_t file_bytes;
    const char *device;   /* "cpu: " and the kernels' ISA ("cpu: avx2"), or
                             "cuda: " and the GPU's name (valid while the
                             model is open)                                    */
    int64_t device_bytes; /* bytes the weights take on the GPU (0 on the CPU)  */
    int64_t repacked_bytes; /* weights converted as the model opened (foreign
                               types, and types this ISA runs as another), in
                               the model's memory rather than the file's pages */
} bl_model_info;

/* Opens and validates a GGUF (magic, version, counts, lengths, offsets, types,
 * shapes against the hyperparameters); a bad file is an error naming the problem. */
int bl_model_open(const char *path, const bl_model_params *params, bl_model **out);
void bl_model_free(bl_model *model);
int bl_model_get_info(const bl_model *model, bl_model_info *out);

/* ---- GGUF files: the one parser (model loader, bit-inspect, Python) ------ */

/* A GGUF file (v2/v3, little-endian), memory-mapped and validated as a whole
 * when it opens: every count, length, offset and size is checked against the
 * file, so everything below reads inside it without further checks. */
typedef struct bl_gguf bl_gguf;

/* Metadata value types, numbered as in the format (gguf-py's GGUFValueType). */
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
    BL_GGUF_VALUE_TYPE_COUNT = 13
} bl_gguf_value_type;

/* A tensor type bitllm does not run, whose size lets the parser check the
 * extent of its tensors (the caller's table, e.g. gguf-py's GGML_QUANT_SIZES;
 * it must outlive the files opened with it). */
typedef struct bl_gguf_foreign_type {
    const char *name;     /* for messages and bl_gguf_tensor_info.type_name */
    uint32_t gguf_type;
    uint32_t block_weights;
    uint32_t block_bytes;
} bl_gguf_foreign_type;

typedef struct bl_gguf_params {
    int keep_unknown_types; /* 0: a tensor of a type bitllm does not run is an
                               error (what a model needs); 1: kept, sized when
                               foreign_types lists it (bit-inspect)            */
    const bl_gguf_foreign_type *foreign_types;
    int32_t n_foreign_types;
} bl_gguf_params;

typedef struct bl_gguf_info {
    uint32_t version;
    uint32_t alignment;
    int64_t n_kv;
    int64_t n_tensors;
    int64_t file_bytes;
    int64_t data_offset;  /* where the tensor data section starts */
} bl_gguf_info;

/* A metadata value inside the mapping (valid while the file is open).
 * Scalars: data points at its little-endian bytes, count is 1. Strings: data
 * at its bytes (not NUL-terminated), count is the length. Arrays: count items
 * of item_type from data; numeric items are packed, so data is an array. */
typedef struct bl_gguf_value {
    int type;      /* bl_gguf_value_type                   */
    int item_type; /* arrays: bl_gguf_value_type; else -1  */
    uint64_t count;
    const void *data;
} bl_gguf_value;

typedef struct bl_gguf_tensor_info {
    const char *name;
    uint32_t gguf_type;    /* the file's type id                                   */
    const char *type_name; /* "bt2", "q4_k", ...; NULL for a type of unknown size */
    uint32_t n_dims;
    int64_t ne[4];         /* ggml order: ne[0] is the row length; unused dims 1  */
    int64_t offset;        /* of the data, from the start of the file              */
    int64_t nbytes;        /* -1 for a type of unknown size                        */
} bl_gguf_tensor_info;

/* params NULL: the defaults (unknown tensor types are errors). Errors name the
 * file and the problem. */
int bl_gguf_open(const char *path, const bl_gguf_params *params, bl_gguf **out);
void bl_gguf_free(bl_gguf *file);
/* The file an open model was parsed from (owned by the model). */
const bl_gguf *bl_model_gguf(const bl_model *model);
int bl_gguf_get_info(const bl_gguf *file, bl_gguf_info *out);
/* Metadata entry index in file order; *key stays valid while the file is open. */
int bl_gguf_kv_at(const bl_gguf *file, int64_t index, const char **key, bl_gguf_value *value);
/* The index of key, or -1 when the file has no such key. */
int64_t bl_gguf_find_key(const bl_gguf *file, const char *key);
/* The items of an array, n_items = array->count of them. */
int bl_gguf_array_items(const bl_gguf_value *array, bl_gguf_value *items, uint64_t n_items);
/* The strings of an array of strings, each followed by a NUL byte, into text:
 * returns the bytes this takes (text NULL: only that), negative on error. */
int64_t bl_gguf_join_strings(const bl_gguf_value *array, char *text, int64_t text_bytes);
/* Tensor index in file order. */
int bl_gguf_tensor_at(const bl_gguf *file, int64_t index, bl_gguf_tensor_info *out);

/* What a KV cache stores per key/value element. */
typedef enum bl_kv_type {
    BL_KV_DEFAULT = -1, /* the backend's default: f16 on the CPU, f32 on CUDA          */
    BL_KV_F32 = 0,      /* reference                                                  */
    BL_KV_F16 = 1,      /* half the bytes, float rounding only                        */
    BL_KV_Q8_0 = 2,     /* llama.cpp's q8_0: blocks of 32 int8 with an f16 scale       */
    BL_KV_TYPE_COUNT = 3
} bl_kv_type;

typedef struct bl_context_params {
    int32_t n_ctx; /* positions each sequence holds (<= 0: n_ctx_train)            */
    int32_t n_seq; /* sequences, each with its own KV cache (<= 0: 1)              */
    int type_k;    /* bl_kv_type of the keys                                       */
    int type_v;    /* bl_kv_type of the values                                     */
} bl_context_params;

/* A context holds the KV caches of n_seq sequences of up to n_ctx positions
 * each, on the model's device. A cache type the device does not keep is
 * BL_ERR_UNSUPPORTED naming it. */
int bl_context_new_with(bl_model *model, const bl_context_params *params, bl_context **out);
/* bl_context_new_with one sequence of n_ctx positions and the default cache types. */
int bl_context_new(bl_model *model, int32_t n_ctx, bl_context **out);
/* "f32", "f16", "q8_0"; NULL for a value that is not a bl_kv_type. */
const char *bl_kv_type_name(int type);
/* The cache types a context made with params would use (BL_KV_DEFAULT resolved). */
int bl_context_kv_types(const bl_context *ctx, int *type_k, int *type_v);
/* Bytes the context's KV caches take when every position of every sequence is filled. */
int64_t bl_context_kv_bytes(const bl_context *ctx);
void bl_context_free(bl_context *ctx);
int32_t bl_context_n_ctx(const bl_context *ctx);

/* Evaluates tokens[0..n) at positions pos..pos+n-1 (pos <= the number already
 * cached: a smaller pos drops the cache from there, so a conversation can
 * reuse its prefix). logits: NULL, or [n_vocab] for the last token, or
 * [n, n_vocab] when all_logits is nonzero. */
int bl_context_eval(bl_context *ctx, const int32_t *tokens, int32_t n, int32_t pos,
                    float *logits, int all_logits);
/* Positions currently cached (of sequence 0). */
int32_t bl_context_n_past(const bl_context *ctx);

/* ---- Many sequences in one forward pass ---------------------------------- */

/* Tokens of any of a context's sequences, evaluated together: every weight
 * matrix is read once per step for all of them. The tokens of one sequence
 * are consecutive in the batch, at consecutive positions starting at most at
 * the number it has cached (a smaller position drops its cache from there). */
typedef struct bl_batch {
    int32_t n_tokens;
    const int32_t *tokens; /* [n_tokens]                                          */
    const int32_t *pos;    /* [n_tokens] position of each token in its sequence     */
    const int32_t *seq;    /* [n_tokens] its sequence, in [0, n_seq)                */
    const int8_t *logits;  /* [n_tokens] nonzero: write this token's logits; NULL:
                              the last token of each sequence                       */
} bl_batch;

/* Evaluates batch; logits: [tokens asked for, n_vocab] in batch order (NULL:
 * none). A sequence's results are bit-identical whatever else shares its batch
 * and however the batch is split. Devices without it: BL_ERR_UNSUPPORTED. */
int bl_context_decode(bl_context *ctx, const bl_batch *batch, float *logits);
/* Positions sequence seq has cached (-1 and an error for a bad seq). */
int32_t bl_context_seq_n_past(const bl_context *ctx, int32_t seq);
/* Keeps the first n_keep positions of seq's cache (0: empties it). */
int bl_context_seq_keep(bl_context *ctx, int32_t seq, int32_t n_keep);
/* dst's cache becomes a copy of src's first n positions (a shared prompt
 * prefix computed once); n <= what src has cached. */
int bl_context_seq_copy(bl_context *ctx, int32_t src, int32_t dst, int32_t n);

/* The CPU's attention op on caches made for the call (tests, benchmarks).
 * Query rows q [n, n_head * head_dim]: row t belongs to sequence seq[t] and
 * sits at position pos[t], seeing positions [0, pos[t]] of that sequence;
 * rows of a sequence are consecutive with increasing positions. k and v
 * [n_seq, n_ctx, n_head_kv * head_dim] float32 are first stored in caches of
 * type_k / type_v (bl_kv_type). out [n, n_head * head_dim]. isa: bl_isa
 * (AUTO: the best); threads <= 0: one per core. A row's result does not
 * depend on threads nor on the other rows. */
int bl_attend(const float *q, int32_t n, const int32_t *pos, const int32_t *seq,
              const float *k, const float *v, int32_t n_seq, int32_t n_ctx, int32_t n_head,
              int32_t n_head_kv, int32_t head_dim, int type_k, int type_v, int isa,
              int threads, float *out);
/* bl_attend with the attention run `repeat` >= 1 times over the caches stored once
 * (benchmarks: the difference of two repeat counts is the attention alone). The
 * caches hold `layers` >= 1 copies of k and v, one per layer, and run r reads layer
 * r % layers: with as many layers as a model has, each run finds its layer out of
 * cache, as decode does. */
int bl_attend_repeat(const float *q, int32_t n, const int32_t *pos, const int32_t *seq,
                     const float *k, const float *v, int32_t n_seq, int32_t n_ctx,
                     int32_t n_head, int32_t n_head_kv, int32_t head_dim, int type_k,
                     int type_v, int isa, int threads, int32_t layers, int repeat, float *out);

/* ---- CUDA: matrix products on an NVIDIA GPU ------------------------------ */

/* 1 when this library has the CUDA path and a GPU with a working driver is
 * present; else 0, with the reason in bl_last_error(). */
int bl_cuda_available(void);

/* bl_matmul on the GPU (copies w and x in, runs, copies y out; for tests).
 * Ternary/sign results are bit for bit those of bl_matmul; quant types take
 * the CPU's int8 32-block activations and float types float32 activations, and
 * sum in another order than the CPU (equal within float32 rounding).
 * act_bits: 8 or 16.
 * Without CUDA in the build or without a GPU: BL_ERR_UNSUPPORTED. */
int bl_cuda_matmul(const char *type, const void *w, int64_t w_bytes, int64_t rows, int64_t cols,
                   const float *x, int64_t n, float *y, int act_bits);

/* Times one product with w resident on the GPU and the activations already
 * there (quantized, for integer and quant types): seconds per call, from CUDA events around
 * a CUDA graph of iters products, after a warm-up. copies > 1 rotates over that
 * many copies of w, so that a matrix smaller than the GPU's L2 cache is still
 * read from device memory. */
int bl_cuda_bench_matmul(const char *type, const void *w, int64_t w_bytes, int64_t rows,
                         int64_t cols, int64_t n, int act_bits, int copies, int iters,
                         double *seconds_per_call);

/* Times a device-to-device copy of bytes bytes: seconds per copy. */
int bl_cuda_bench_copy(int64_t bytes, int iters, double *seconds_per_copy);

/* ---- architectures ------------------------------------------------------- */

/* One general.architecture this library runs and what its graph does (the
 * file's bitllm.* keys may override the five after name). activation and
 * rope use bitllm.activation's and bitllm.rope_type's spellings. */
typedef struct bl_arch_info {
    const char *name;
    const char *activation; /* of the gated FFN: "silu" or "relu2"            */
    const char *rope;       /* "neox" or "norm"                               */
    int sub_norms;          /* RMSNorm before attn_output and before ffn_down */
    int scaled_projections; /* OneBit's in_scale/out_scale and LayerNorm      */
    int act_bits;           /* 8 or 16                                        */
    int qk_norm;            /* RMSNorm of every q and k head before RoPE      */
} bl_arch_info;

int bl_arch_count(void);
/* Row index, 0 <= index < bl_arch_count(). */
int bl_arch_info_at(int index, bl_arch_info *out);

/* BITLLM_CDEF_END */

#ifdef __cplusplus
}
#endif

#endif /* BITLLM_H */
