/* PrismML's prism.hadamard contract (Bonsai 2 and Ternary-Bonsai 2 files;
 * facts and sources in docs/INTEROP.md "Bonsai 2"). The file's weights have a
 * rotation folded in: W' = W S H, S = diag(s) a sign flip, H the normalized
 * Walsh-Hadamard transform of each block of `block_size` inputs. So a folded
 * projection gives W x only when it reads H (s * x), and an embedding table
 * stored in the rotated basis gives back row h = s * (H z) of its stored z.
 * Run without the transform, such a file loads and talks nonsense; so every
 * key is checked, any key of the contract this reader does not know is
 * refused, and so is every name the weight lists hold that is not a
 * projection, head or embedding of this model.
 *
 * Keys (all prism.hadamard.*): version 1, or 2 with tied_output (the rotated
 * embedding is also the head); block_size (a power of two); transform and
 * axis, each with its one allowed value; sign_mode identity (no flip) or
 * explicit, with sign_widths (activation widths) and sign_values (their sign
 * vectors of +-1, concatenated in the order of sign_widths); weight_names (the
 * folded matmuls); inverse_weight_names (token_embd.weight, optional);
 * gdn_v_grouped (a head reordering of gated-DeltaNet layers, which no graph
 * here has). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "gguf_names.h"
#include "model.h"

#define KEY_PREFIX "prism.hadamard."
#define TRANSFORM "normalized-sylvester-walsh-hadamard"
#define AXIS "input-last-dimension"
#define MAX_BLOCK (1 << 24)
#define TOKEN_EMBD BL_TENSOR_TOKEN_EMBD BL_SUFFIX_WEIGHT
#define OUTPUT BL_TENSOR_OUTPUT BL_SUFFIX_WEIGHT

static const char *const known_keys[] = {
    BL_KEY_HADAMARD_VERSION,      BL_KEY_HADAMARD_BLOCK_SIZE,
    BL_KEY_HADAMARD_TRANSFORM,    BL_KEY_HADAMARD_AXIS,
    BL_KEY_HADAMARD_SIGN_MODE,    BL_KEY_HADAMARD_SIGN_WIDTHS,
    BL_KEY_HADAMARD_SIGN_VALUES,  BL_KEY_HADAMARD_WEIGHT_NAMES,
    BL_KEY_HADAMARD_INVERSE_WEIGHT_NAMES, BL_KEY_HADAMARD_GDN_V_GROUPED,
    BL_KEY_HADAMARD_TIED_OUTPUT,
};

typedef struct contract {
    const bl_gguf *g;
    bl_model *m;
    int64_t version, block;
    int explicit_signs, tied_output;
    bl_gguf_value widths, values; /* explicit_signs: arrays of integers */
} contract;

#define fail(ct, ...) bl_gguf_fail((ct)->g, BL_ERR_INVALID_ARGUMENT, __VA_ARGS__)

/* ---- reading the keys -------------------------------------------------- */

/* How many keys of the contract the file has (0: none, no rotation), or an
 * error for one this reader does not know. */
static int contract_keys(const contract *ct) {
    int found = 0;
    for (int64_t i = 0; i < ct->g->n_kv; i++) {
        const char *key = ct->g->kv[i].key;
        if (strncmp(key, KEY_PREFIX, strlen(KEY_PREFIX)) != 0) continue;
        int known = 0;
        for (size_t k = 0; k < sizeof known_keys / sizeof known_keys[0]; k++)
            known |= strcmp(key, known_keys[k]) == 0;
        if (!known)
            return bl_gguf_fail(ct->g, BL_ERR_UNSUPPORTED,
                                "metadata %s is not part of the prism.hadamard contract this "
                                "bitllm reads (refused rather than run without it)",
                                key);
        found++;
    }
    return found;
}

/* An array-valued key: 1 and the array, 0 when absent. */
static int array_key(const contract *ct, const char *key, int item_kind_string,
                     bl_gguf_value *out) {
    int64_t index = bl_gguf_find_key(ct->g, key);
    if (index < 0) return 0;
    const char *name;
    if (bl_gguf_kv_at(ct->g, index, &name, out) != BL_OK) return -1;
    int is_string = out->type == BL_GGUF_ARRAY && out->item_type == BL_GGUF_STRING;
    int is_int = out->type == BL_GGUF_ARRAY && out->item_type != BL_GGUF_STRING &&
                 out->item_type != BL_GGUF_ARRAY && out->item_type != BL_GGUF_F32 &&
                 out->item_type != BL_GGUF_F64 && out->item_type != BL_GGUF_BOOL;
    if (item_kind_string ? !is_string : !is_int)
        return fail(ct, "metadata %s is not an array of %s", key,
                    item_kind_string ? "strings" : "integers");
    return 1;
}

/* Integer item i of an array of integers. */
static int64_t int_item(const bl_gguf_value *array, uint64_t i) {
    const uint8_t *p = (const uint8_t *)array->data;
    size_t size = bl_gguf_scalar_bytes((bl_gguf_value_type)array->item_type);
    p += i * size;
    switch (array->item_type) {
    case BL_GGUF_U8: return *p;
    case BL_GGUF_I8: return (int8_t)*p;
    case BL_GGUF_U16: { uint16_t v; memcpy(&v, p, 2); return v; }
    case BL_GGUF_I16: { int16_t v; memcpy(&v, p, 2); return v; }
    case BL_GGUF_U32: { uint32_t v; memcpy(&v, p, 4); return v; }
    case BL_GGUF_I32: { int32_t v; memcpy(&v, p, 4); return v; }
    case BL_GGUF_U64: { uint64_t v; memcpy(&v, p, 8); return v > INT64_MAX ? -1 : (int64_t)v; }
    default: { int64_t v; memcpy(&v, p, 8); return v; }
    }
}

/* A string key that must hold exactly `expected`. */
static int string_is(const contract *ct, const char *key, const char *expected) {
    const char *value;
    size_t len;
    int rc = bl_gguf_get_string(ct->g, key, &value, &len);
    if (rc < 0) return rc;
    if (rc == 0) return fail(ct, "metadata %s is missing", key);
    if (len != strlen(expected) || memcmp(value, expected, len) != 0)
        return bl_gguf_fail(ct->g, BL_ERR_UNSUPPORTED, "metadata %s is '%.*s', not '%s'", key,
                            (int)(len > 48 ? 48 : len), value, expected);
    return BL_OK;
}

static int read_scalars(contract *ct) {
    int rc = bl_gguf_get_int(ct->g, BL_KEY_HADAMARD_VERSION, &ct->version);
    if (rc < 0) return rc;
    if (rc == 0) return fail(ct, "metadata " BL_KEY_HADAMARD_VERSION " is missing");
    if (ct->version != 1 && ct->version != 2)
        return bl_gguf_fail(ct->g, BL_ERR_UNSUPPORTED,
                            BL_KEY_HADAMARD_VERSION " %lld is not supported (this bitllm reads 1 "
                            "and 2)", (long long)ct->version);
    if ((rc = bl_gguf_get_int(ct->g, BL_KEY_HADAMARD_BLOCK_SIZE, &ct->block)) < 0) return rc;
    if (rc == 0) return fail(ct, "metadata " BL_KEY_HADAMARD_BLOCK_SIZE " is missing");
    if (ct->block < 1 || ct->block > MAX_BLOCK || (ct->block & (ct->block - 1)))
        return fail(ct, BL_KEY_HADAMARD_BLOCK_SIZE " %lld is not a power of two up to %d",
                    (long long)ct->block, MAX_BLOCK);
    if ((rc = string_is(ct, BL_KEY_HADAMARD_TRANSFORM, TRANSFORM)) ||
        (rc = string_is(ct, BL_KEY_HADAMARD_AXIS, AXIS)))
        return rc;
    ct->tied_output = 0;
    if ((rc = bl_gguf_get_bool(ct->g, BL_KEY_HADAMARD_TIED_OUTPUT, &ct->tied_output)) < 0)
        return rc;
    if ((ct->version == 2) != (ct->tied_output != 0))
        return fail(ct, BL_KEY_HADAMARD_VERSION " %lld with " BL_KEY_HADAMARD_TIED_OUTPUT
                    " %s: version 2 is exactly the tied-output contract",
                    (long long)ct->version, ct->tied_output ? "true" : "false");
    int grouped = 0; /* only gated-DeltaNet layers read it: checked for its type alone */
    rc = bl_gguf_get_bool(ct->g, BL_KEY_HADAMARD_GDN_V_GROUPED, &grouped);
    return rc < 0 ? rc : BL_OK;
}

static int read_signs(contract *ct) {
    const char *mode;
    size_t len;
    int rc = bl_gguf_get_string(ct->g, BL_KEY_HADAMARD_SIGN_MODE, &mode, &len);
    if (rc < 0) return rc;
    if (rc == 0) return fail(ct, "metadata " BL_KEY_HADAMARD_SIGN_MODE " is missing");
    int identity = len == 8 && memcmp(mode, "identity", 8) == 0;
    ct->explicit_signs = len == 8 && memcmp(mode, "explicit", 8) == 0;
    if (!identity && !ct->explicit_signs)
        return bl_gguf_fail(ct->g, BL_ERR_UNSUPPORTED,
                            BL_KEY_HADAMARD_SIGN_MODE " '%.*s' is not supported (known: identity, "
                            "explicit)", (int)(len > 32 ? 32 : len), mode);
    int has_widths = array_key(ct, BL_KEY_HADAMARD_SIGN_WIDTHS, 0, &ct->widths);
    int has_values = array_key(ct, BL_KEY_HADAMARD_SIGN_VALUES, 0, &ct->values);
    if (has_widths < 0 || has_values < 0) return -1;
    if (identity) {
        if (has_widths || has_values)
            return fail(ct, BL_KEY_HADAMARD_SIGN_MODE " is identity but the file has sign "
                        "vectors");
        return BL_OK;
    }
    if (!has_widths || !has_values || ct->widths.count == 0)
        return fail(ct, BL_KEY_HADAMARD_SIGN_MODE " is explicit but " BL_KEY_HADAMARD_SIGN_WIDTHS
                    " or " BL_KEY_HADAMARD_SIGN_VALUES " is missing or empty");
    uint64_t total = 0;
    for (uint64_t i = 0; i < ct->widths.count; i++) {
        int64_t w = int_item(&ct->widths, i);
        if (w <= 0 || w % ct->block || w > (int64_t)ct->values.count)
            return fail(ct, BL_KEY_HADAMARD_SIGN_WIDTHS " holds %lld, not a multiple of the "
                        "block %lld that the %llu sign values cover",
                        (long long)w, (long long)ct->block,
                        (unsigned long long)ct->values.count);
        for (uint64_t j = 0; j < i; j++)
            if (int_item(&ct->widths, j) == w)
                return fail(ct, BL_KEY_HADAMARD_SIGN_WIDTHS " lists width %lld twice",
                            (long long)w);
        total += (uint64_t)w;
    }
    if (total != ct->values.count)
        return fail(ct, BL_KEY_HADAMARD_SIGN_VALUES " has %llu values, the widths add up to %llu",
                    (unsigned long long)ct->values.count, (unsigned long long)total);
    for (uint64_t i = 0; i < ct->values.count; i++) {
        int64_t s = int_item(&ct->values, i);
        if (s != 1 && s != -1)
            return fail(ct, BL_KEY_HADAMARD_SIGN_VALUES " item %llu is %lld, not +1 or -1",
                        (unsigned long long)i, (long long)s);
    }
    return BL_OK;
}

/* ---- rotations by width ---------------------------------------------- */

/* The model's rotation for activations of `width`, made on first use. */
static int rotation_for(contract *ct, int64_t width, const char *tensor,
                        const bl_rotation **out) {
    bl_model *m = ct->m;
    for (int i = 0; i < m->n_rotations; i++)
        if (m->rotations[i].width == width) {
            *out = &m->rotations[i];
            return BL_OK;
        }
    if (width % ct->block)
        return fail(ct, "tensor '%s' reads %lld values, not a multiple of "
                    BL_KEY_HADAMARD_BLOCK_SIZE " %lld", tensor, (long long)width,
                    (long long)ct->block);
    float *signs = NULL;
    if (ct->explicit_signs) {
        uint64_t offset = 0, i = 0;
        for (; i < ct->widths.count && int_item(&ct->widths, i) != width; i++)
            offset += (uint64_t)int_item(&ct->widths, i);
        if (i == ct->widths.count)
            return fail(ct, "prism.hadamard has no sign vector for width %lld (tensor '%s')",
                        (long long)width, tensor);
        if (!(signs = malloc((size_t)width * sizeof *signs)))
            return bl_fail(BL_ERR_OUT_OF_MEMORY, "out of memory for a sign vector");
        for (int64_t c = 0; c < width; c++)
            signs[c] = (float)int_item(&ct->values, offset + (uint64_t)c);
    }
    if (m->n_rotations == BL_MAX_ROTATIONS) { /* the graph has no more widths */
        free(signs);
        return fail(ct, "tensor '%s': more rotated widths than this graph has", tensor);
    }
    bl_rotation *r = &m->rotations[m->n_rotations++];
    *r = (bl_rotation){.width = width, .block = (int32_t)ct->block, .signs = signs};
    *out = r;
    return BL_OK;
}

/* ---- the names ------------------------------------------------------- */

static int has_output_tensor(const contract *ct) {
    return bl_gguf_tensor_find(ct->g, OUTPUT) != NULL;
}

static int fold_one(contract *ct, const char *name) {
    bl_model *m = ct->m;
    if (strcmp(name, OUTPUT) == 0) {
        if (!has_output_tensor(ct))
            return fail(ct, BL_KEY_HADAMARD_WEIGHT_NAMES " lists " OUTPUT ", which the file "
                        "does not have");
        if (m->output_rotation)
            return fail(ct, BL_KEY_HADAMARD_WEIGHT_NAMES " lists " OUTPUT " twice");
        return rotation_for(ct, m->hp.n_embd, name, &m->output_rotation);
    }
    bl_proj *p = bl_model_find_proj(m, name);
    if (!p)
        return fail(ct, BL_KEY_HADAMARD_WEIGHT_NAMES " lists '%s', which is not a projection or "
                    "head of this %s model", name, m->arch_name);
    if (p->in_rotation)
        return fail(ct, BL_KEY_HADAMARD_WEIGHT_NAMES " lists '%s' twice", name);
    return rotation_for(ct, p->w.cols, name, &p->in_rotation);
}

/* Folds each name of an array of strings (inverse: the embedding rule). */
static int each_name(contract *ct, const bl_gguf_value *names, int inverse) {
    const char *key = inverse ? BL_KEY_HADAMARD_INVERSE_WEIGHT_NAMES : BL_KEY_HADAMARD_WEIGHT_NAMES;
    const uint8_t *p = (const uint8_t *)names->data;
    for (uint64_t i = 0; i < names->count; i++, p += bl_gguf_value_bytes(BL_GGUF_STRING, p)) {
        uint64_t len;
        memcpy(&len, p, 8);
        char name[128];
        if (len >= sizeof name || memchr(p + 8, 0, (size_t)len))
            return fail(ct, "%s item %llu is not a tensor name", key, (unsigned long long)i);
        memcpy(name, p + 8, (size_t)len);
        name[len] = '\0';
        int rc;
        if (!inverse)
            rc = fold_one(ct, name);
        else if (strcmp(name, TOKEN_EMBD) != 0)
            rc = fail(ct, "%s lists '%s': only " TOKEN_EMBD " can be stored rotated", key, name);
        else if (ct->m->embd_rotation)
            rc = fail(ct, "%s lists " TOKEN_EMBD " twice", key);
        else
            rc = rotation_for(ct, ct->m->hp.n_embd, name, &ct->m->embd_rotation);
        if (rc != BL_OK) return rc;
    }
    return BL_OK;
}

/* A head tied to a rotated embedding reads its input rotated too: that is
 * version 2's tied_output, and nothing else may leave it unrotated. */
static int tie_head(contract *ct) {
    bl_model *m = ct->m;
    if (ct->tied_output) {
        if (has_output_tensor(ct))
            return fail(ct, BL_KEY_HADAMARD_TIED_OUTPUT " is true but the file has " OUTPUT);
        if (!m->embd_rotation)
            return fail(ct, BL_KEY_HADAMARD_TIED_OUTPUT " is true but " TOKEN_EMBD " is not in "
                        BL_KEY_HADAMARD_INVERSE_WEIGHT_NAMES);
        m->output_rotation = m->embd_rotation;
        return BL_OK;
    }
    if (m->embd_rotation && !has_output_tensor(ct))
        return fail(ct, "the head is the rotated " TOKEN_EMBD ", which needs "
                    BL_KEY_HADAMARD_VERSION " 2 with " BL_KEY_HADAMARD_TIED_OUTPUT);
    return BL_OK;
}

int bl_rotations_load(bl_model *m, const bl_gguf *g) {
    contract ct = {.g = g, .m = m};
    int rc = contract_keys(&ct);
    if (rc <= 0) return rc;
    if ((rc = read_scalars(&ct)) || (rc = read_signs(&ct))) return rc;
    if (m->arch.scaled_projections)
        return bl_gguf_fail(g, BL_ERR_UNSUPPORTED, "prism.hadamard on architecture '%s' (scaled "
                            "projections) is not supported", m->arch_name);
    bl_gguf_value names, inverse;
    if ((rc = array_key(&ct, BL_KEY_HADAMARD_WEIGHT_NAMES, 1, &names)) < 0) return rc;
    if (rc == 0 || names.count == 0)
        return fail(&ct, "metadata " BL_KEY_HADAMARD_WEIGHT_NAMES " is missing or empty");
    if ((rc = each_name(&ct, &names, 0)) != BL_OK) return rc;
    if ((rc = array_key(&ct, BL_KEY_HADAMARD_INVERSE_WEIGHT_NAMES, 1, &inverse)) < 0) return rc;
    if (rc == 1 && (rc = each_name(&ct, &inverse, 1)) != BL_OK) return rc;
    return tie_head(&ct);
}

void bl_rotations_free(bl_model *m) {
    for (int i = 0; i < m->n_rotations; i++) free(m->rotations[i].signs);
    m->n_rotations = 0;
}
