"""PrismML's prism.hadamard contract (Bonsai 2 files; docs/INTEROP.md "Bonsai 2"): weights
with a sign flip and a blockwise normalized Walsh-Hadamard rotation folded in, W' = W S H,
run as W' (H (s * x)), and an embedding stored rotated, z = H S e, read back as s * (H z).

The folded files here are made from a model whose float reference is known: folding is
exact algebra, so the library's logits of the folded file must match the unfolded model's.
The same file without its prism.hadamard keys must not (the keys are what the library
acts on). PrismML's own types come along: PQ2_0 (id 142, the bytes of q2_0_g128) and
PTQ1_0 (id 143, tq1_0's base-3 digits in groups of 128, written here by an encoder made
from the format facts), which the loader repacks to q2_0_g128 exactly."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gguf import GGUFValueType

from bitllm.convert import gguf_names as names
from bitllm.runtime.gguf_reader import GGUFFile

from . import reference
from .builder import (
    Config,
    Projection,
    TensorData,
    Weights,
    config_for,
    gguf_metadata,
    gguf_tensors,
    random_weights,
    write_gguf,
)
from .capi import NativeModel

# 128 wide everywhere (n_ff 256): whole groups of 128 for PQ2_0 / PTQ1_0, blocks of 64
SHAPE = {"n_embd": 128, "n_head": 4, "n_head_kv": 2, "key_length": 32, "n_ff": 256}
EPS = {"rms_eps": 1e-2}
BLOCK = 64
TRANSFORM, AXIS = "normalized-sylvester-walsh-hadamard", "input-last-dimension"
PROJECTIONS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
PQ2_0_ID, PTQ1_0_ID = 142, 143
STR, ARRAY, I32 = GGUFValueType.STRING, GGUFValueType.ARRAY, GGUFValueType.INT32


def sylvester(n: int) -> np.ndarray:
    """The normalized Walsh-Hadamard matrix of order n: H[r, c] = (-1)^popcount(r & c) / sqrt n."""
    r = np.arange(n)
    parity = np.vectorize(lambda v: bin(v).count("1") & 1)(r[:, None] & r[None, :])
    return (1.0 - 2.0 * parity) / np.sqrt(n)


def rotation(signs: np.ndarray, block: int) -> np.ndarray:
    """S H for one activation width: diag(signs) times the block-diagonal H."""
    blocks = len(signs) // block
    return np.diag(signs.astype(np.float64)) @ np.kron(np.eye(blocks), sylvester(block))


def fold(w: np.ndarray, signs: np.ndarray, block: int) -> np.ndarray:
    """W' = W S H: rows read H (s * x) instead of x (and table rows come back as s * (H z))."""
    return (w.astype(np.float64) @ rotation(signs, block)).astype(np.float32)


def unfold(w: np.ndarray, signs: np.ndarray, block: int) -> np.ndarray:
    """W = W' H S, the dense weights a folded W' stands for."""
    return (w.astype(np.float64) @ rotation(signs, block).T).astype(np.float32)


def dense_model(arch: str = "qwen3", seed: int = 5, **overrides: Any) -> Weights:
    """A model with float projections (values x unit row scales)."""
    c = config_for(arch, weight_type="f32", **SHAPE, **EPS, **overrides)
    w = random_weights(c, seed=seed)
    for layer in w.layers:
        for key, p in layer.proj.items():
            dense = p.values.astype(np.float32) * p.row_scale[:, None]
            layer.proj[key] = Projection(dense, np.ones(len(dense), np.float32))
    return w


def widths(c: Config) -> dict[str, int]:
    q = c.n_head * c.head_dim
    return {"embd": c.n_embd, "q": q, "ff": c.n_ff}


def input_width(c: Config, proj: str) -> int:
    w = widths(c)
    return w["q"] if proj == "attn_output" else w["ff"] if proj == "ffn_down" else w["embd"]


def sign_vectors(c: Config, seed: int = 11) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {n: rng.choice(np.array([-1, 1]), n) for n in sorted(set(widths(c).values()))}


def contract(
    c: Config, signs: dict[int, np.ndarray] | None, tied_output: bool = False
) -> dict[str, tuple[Any, ...]]:
    """The prism.hadamard keys of a model whose every projection (and untied head) is folded
    and whose embedding is stored rotated."""
    folded = [f"blk.{i}.{p}.weight" for i in range(c.n_layer) for p in PROJECTIONS]
    if not tied_output:
        folded.append("output.weight")
    keys: dict[str, tuple[Any, ...]] = {
        names.HADAMARD_VERSION: (2 if tied_output else 1, GGUFValueType.UINT32),
        names.HADAMARD_BLOCK_SIZE: (BLOCK, GGUFValueType.UINT32),
        names.HADAMARD_TRANSFORM: (TRANSFORM, STR),
        names.HADAMARD_AXIS: (AXIS, STR),
        names.HADAMARD_SIGN_MODE: ("explicit" if signs else "identity", STR),
        names.HADAMARD_WEIGHT_NAMES: (folded, ARRAY, STR),
        names.HADAMARD_INVERSE_WEIGHT_NAMES: (["token_embd.weight"], ARRAY, STR),
    }
    if signs:
        keys[names.HADAMARD_SIGN_WIDTHS] = (list(signs), ARRAY, I32)
        values = np.concatenate(list(signs.values()))
        keys[names.HADAMARD_SIGN_VALUES] = ([int(v) for v in values], ARRAY, I32)
    if tied_output:
        keys[names.HADAMARD_TIED_OUTPUT] = (True, GGUFValueType.BOOL)
    return keys


def folded_copy(w: Weights, signs: dict[int, np.ndarray] | None) -> Weights:
    """w with every projection and the head folded and the embedding stored rotated."""
    c = w.config

    def s(n: int) -> np.ndarray:
        return signs[n] if signs else np.ones(n, np.int64)

    out = replace(w, layers=[replace(layer, proj=dict(layer.proj)) for layer in w.layers])
    out.token_embd = fold(w.token_embd, s(c.n_embd), BLOCK)
    if w.output is not None:
        out.output = fold(w.output, s(c.n_embd), BLOCK)
    for layer in out.layers:
        for key, p in layer.proj.items():
            layer.proj[key] = Projection(fold(p.values, s(input_width(c, key)), BLOCK), p.row_scale)
    return out


def write(path: Path, w: Weights, keys: dict[str, tuple[Any, ...]]) -> Path:
    return write_gguf(path, w.config.arch, gguf_metadata(w.config) | keys, gguf_tensors(w))


def relative_error(got: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(got - expected).max() / np.abs(expected).max())


TOKENS = [int(t) for t in np.random.default_rng(7).integers(0, 80, 20)]


@pytest.mark.parametrize("sign_mode", ["explicit", "identity"])
@pytest.mark.parametrize("tied_output", [False, True], ids=["head-folded", "head-tied"])
def test_a_folded_model_gives_the_unfolded_models_logits(
    sign_mode: str, tied_output: bool, tmp_path: Path
) -> None:
    w = dense_model(tied=tied_output)
    signs = sign_vectors(w.config) if sign_mode == "explicit" else None
    keys = contract(w.config, signs, tied_output)
    path = write(tmp_path / "folded.gguf", folded_copy(w, signs), keys)
    expected = reference.forward(w, TOKENS, act_bits=0)
    got = NativeModel(path, threads=2).context(32, "f32", "f32").eval(TOKENS)
    assert relative_error(got, expected) < 1e-5  # f32 weights, activations, cache: rounding

    # the same bytes without the contract: the folded weights alone are another model
    bare = gguf_tensors(folded_copy(w, signs))
    unrotated = write_gguf(tmp_path / "bare.gguf", "qwen3", gguf_metadata(w.config), bare)
    assert relative_error(NativeModel(unrotated).context(32).eval(TOKENS), expected) > 0.1


@pytest.mark.parametrize("arch", ["llama", "bitnet-b1.58"])
def test_other_graphs_take_the_same_contract(arch: str, tmp_path: Path) -> None:
    w = dense_model(arch, tied=False)
    signs = sign_vectors(w.config)
    path = write(tmp_path / "folded.gguf", folded_copy(w, signs), contract(w.config, signs))
    got = NativeModel(path, threads=2).context(32, "f32", "f32").eval(TOKENS)
    assert relative_error(got, reference.forward(w, TOKENS, act_bits=0)) < 1e-5


def test_results_do_not_depend_on_threads_or_batch_size(tmp_path: Path) -> None:
    w = dense_model(tied=False)
    signs = sign_vectors(w.config)
    path = write(tmp_path / "folded.gguf", folded_copy(w, signs), contract(w.config, signs))
    one = NativeModel(path, threads=1).context(32).eval(TOKENS)
    for threads in (2, 3):
        model = NativeModel(path, threads=threads).context(32)
        steps = np.concatenate([model.eval(TOKENS[:7]), model.eval(TOKENS[7:])])
        assert np.array_equal(steps, one)


# ---- PrismML's types ------------------------------------------------------------------


def ternary_groups(rng: np.random.Generator, rows: int, cols: int) -> tuple[np.ndarray, ...]:
    """Trits and an f16 scale per group of 128 that varies along each row."""
    trits = rng.integers(-1, 2, (rows, cols)).astype(np.int8)
    scales = (rng.uniform(0.3, 3.0, (rows, cols // 128)) / np.sqrt(cols)).astype(np.float16)
    return trits, scales


def pq2_0_bytes(trits: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Per group: the f16 scale, then 32 bytes of 2-bit codes trit + 1, weight i in bits
    2 (i % 4) of byte i / 4."""
    rows, cols = trits.shape
    codes = (trits.reshape(rows, cols // 128, 32, 4) + 1).astype(np.uint8)
    packed = codes[..., 0] | codes[..., 1] << 2 | codes[..., 2] << 4 | codes[..., 3] << 6
    d = scales.reshape(rows, cols // 128, 1).view(np.uint8)
    return np.concatenate([d, packed], axis=-1).reshape(-1)


def base3_byte(digits: np.ndarray) -> np.ndarray:
    """Trit digits (most significant first, last axis) as a byte whose base-3 fraction holds
    them: q = sum t_k 3^(4-k) over five digits (four: shifted up one), then ceil(q 256 / 243)."""
    q = np.zeros(digits.shape[:-1], np.int64)
    for k in range(digits.shape[-1]):
        q = q * 3 + digits[..., k]
    q = q * 3 ** (5 - digits.shape[-1])
    return ((q * 256 + 242) // 243).astype(np.uint8)


def ptq1_0_bytes(trits: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Per group of 128: qs[24] (bytes 0-15: weights 16k + m as digit k of byte m; bytes
    16-23: weights 80 + 8k + m), qh[2] (weights 120 + 2k + j, four digits), then the f16 d."""
    rows, cols = trits.shape
    t = (trits.reshape(rows, cols // 128, 128) + 1).astype(np.int64)
    first = t[..., :80].reshape(rows, -1, 5, 16).swapaxes(-1, -2)  # [.., m, k]
    second = t[..., 80:120].reshape(rows, -1, 5, 8).swapaxes(-1, -2)
    high = t[..., 120:].reshape(rows, -1, 4, 2).swapaxes(-1, -2)
    d = scales.reshape(rows, cols // 128, 1).view(np.uint8)
    parts = [base3_byte(first), base3_byte(second), base3_byte(high), d]
    return np.concatenate(parts, axis=-1).reshape(-1)


def ptq1_0_decode(data: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The facts' digit rule, digit k of byte q: ((q * 3^k) mod 256) * 3 >> 8."""
    blocks = data.reshape(rows, cols // 128, 28).astype(np.int64)

    def digits(b: np.ndarray, count: int) -> np.ndarray:  # [.., bytes] -> [.., k, bytes]
        return np.stack([((b * 3**k) % 256) * 3 >> 8 for k in range(count)], axis=-2)

    first = digits(blocks[..., :16], 5).reshape(rows, -1, 80)
    second = digits(blocks[..., 16:24], 5).reshape(rows, -1, 40)
    high = digits(blocks[..., 24:26], 4).reshape(rows, -1, 8)
    return (np.concatenate([first, second, high], -1) - 1).reshape(rows, cols).astype(np.int8)


def test_the_ptq1_0_encoder_follows_the_digit_rule() -> None:
    trits, scales = ternary_groups(np.random.default_rng(1), 6, 256)
    data = ptq1_0_bytes(trits, scales)
    assert data.size == 6 * 2 * 28
    assert np.array_equal(ptq1_0_decode(data, 6, 256), trits)
    assert np.array_equal(
        data.reshape(6, 2, 28)[..., 26:].copy().view(np.float16), scales[..., None]
    )


def prism_model(tmp_path: Path, type_id: int) -> tuple[Weights, Path]:
    """Every projection stored in PrismML's type as latent trits x group scales (the head and
    embedding f32), folded with explicit signs; the reference runs their unfolded dense form."""
    folded = dense_model(tied=False)
    c, rng = folded.config, np.random.default_rng(13)
    signs = sign_vectors(c)
    dense = replace(
        folded, layers=[replace(layer, proj=dict(layer.proj)) for layer in folded.layers]
    )
    packed: dict[str, TensorData] = {}
    for i, (layer, plain) in enumerate(zip(folded.layers, dense.layers, strict=True)):
        for key, p in layer.proj.items():
            trits, scales = ternary_groups(rng, *p.values.shape)
            latent = (trits * np.repeat(scales.astype(np.float32), 128, axis=1)).astype(np.float32)
            ones = np.ones(len(latent), np.float32)
            plain.proj[key] = Projection(unfold(latent, signs[input_width(c, key)], BLOCK), ones)
            encode = pq2_0_bytes if type_id == PQ2_0_ID else ptq1_0_bytes
            packed[f"blk.{i}.{key}.weight"] = TensorData(
                encode(trits, scales), latent.shape, type_id
            )
    dense.token_embd = unfold(folded.token_embd, signs[c.n_embd], BLOCK)
    dense.output = unfold(folded.output, signs[c.n_embd], BLOCK)
    tensors = gguf_tensors(folded) | packed
    path = write_gguf(
        tmp_path / f"prism-{type_id}.gguf", "qwen3", gguf_metadata(c) | contract(c, signs), tensors
    )
    return dense, path


def test_pq2_0_and_ptq1_0_files_match_the_unfolded_reference(tmp_path: Path) -> None:
    dense, pq2 = prism_model(tmp_path, PQ2_0_ID)
    _, ptq1 = prism_model(tmp_path, PTQ1_0_ID)
    down = "blk.0.ffn_down.weight"
    assert (GGUFFile(pq2).tensors[down].type_name, GGUFFile(ptq1).tensors[down].type_name) == (
        "q2_0_g128",  # PQ2_0 is PrismML's id for these bytes
        "ptq1_0",
    )
    assert GGUFFile(ptq1).tensors[down].nbytes == 128 * 256 // 128 * 28
    got = NativeModel(pq2, threads=2).context(32).eval(TOKENS)
    expected = reference.forward(dense, TOKENS, act_bits=0)
    # the only rounding: activations to int8 per block of 32 (the weights are exact)
    assert relative_error(got, expected) < 3e-2
    assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.9
    # the same trits and scales: the repack to q2_0_g128 is exact, so the logits are the same
    assert np.array_equal(NativeModel(ptq1, threads=2).context(32).eval(TOKENS), got)


# ---- what the loader refuses ---------------------------------------------------------


def _edit(key: str, value: tuple[Any, ...] | None):
    def edit(keys: dict[str, tuple[Any, ...]], c: Config) -> dict[str, tuple[Any, ...]]:
        out = dict(keys)
        if value is None:
            out.pop(key)
        else:
            out[key] = value
        return out

    return edit


def _widths_and_values(widths: list[int], values: list[int]):
    def edit(keys: dict[str, tuple[Any, ...]], c: Config) -> dict[str, tuple[Any, ...]]:
        return keys | {
            names.HADAMARD_SIGN_WIDTHS: (widths, ARRAY, I32),
            names.HADAMARD_SIGN_VALUES: (values, ARRAY, I32),
        }

    return edit


def _names(folded: list[str]):
    def edit(keys: dict[str, tuple[Any, ...]], c: Config) -> dict[str, tuple[Any, ...]]:
        listed = keys[names.HADAMARD_WEIGHT_NAMES][0]
        return keys | {names.HADAMARD_WEIGHT_NAMES: (listed + folded, ARRAY, STR)}

    return edit


REFUSALS = {
    "unknown key": (
        _edit("prism.hadamard.perm_order", ("tiled", STR)),
        r"metadata prism\.hadamard\.perm_order is not part of the prism\.hadamard contract",
    ),
    "version 3": (
        _edit(names.HADAMARD_VERSION, (3, GGUFValueType.UINT32)),
        r"prism\.hadamard\.version 3 is not supported",
    ),
    "block not a power of two": (
        _edit(names.HADAMARD_BLOCK_SIZE, (48, GGUFValueType.UINT32)),
        r"prism\.hadamard\.block_size 48 is not a power of two",
    ),
    "block larger than a width": (
        _edit(names.HADAMARD_BLOCK_SIZE, (512, GGUFValueType.UINT32)),
        r"prism\.hadamard\.sign_widths holds 128, not a multiple of the block 512",
    ),
    "other transform": (
        _edit(names.HADAMARD_TRANSFORM, ("dct", STR)),
        r"metadata prism\.hadamard\.transform is 'dct', not 'normalized-sylvester-walsh-hadamard'",
    ),
    "no axis": (_edit(names.HADAMARD_AXIS, None), r"metadata prism\.hadamard\.axis is missing"),
    "other sign mode": (
        _edit(names.HADAMARD_SIGN_MODE, ("random", STR)),
        r"prism\.hadamard\.sign_mode 'random' is not supported \(known: identity, explicit\)",
    ),
    "a sign of 2": (
        _widths_and_values([128, 256], [1] * 127 + [2] + [1] * 256),
        r"prism\.hadamard\.sign_values item 127 is 2, not \+1 or -1",
    ),
    "too few signs": (
        _widths_and_values([128, 256], [1] * 380),
        r"prism\.hadamard\.sign_values has 380 values, the widths add up to 384",
    ),
    "no signs for a width": (
        _widths_and_values([128], [1] * 128),
        r"prism\.hadamard has no sign vector for width 256 \(tensor 'blk\.0\.ffn_down\.weight'\)",
    ),
    "signs as floats": (
        _edit(names.HADAMARD_SIGN_VALUES, ([1.0] * 384, ARRAY, GGUFValueType.FLOAT32)),
        r"metadata prism\.hadamard\.sign_values is not an array of integers",
    ),
    "not a tensor of the model": (
        _names(["blk.0.ssm_out.weight"]),
        r"weight_names lists 'blk\.0\.ssm_out\.weight', which is not a projection or head of "
        r"this qwen3 model",
    ),
    "a layer past the last": (_names(["blk.9.attn_q.weight"]), r"lists 'blk\.9\.attn_q\.weight'"),
    "a name twice": (_names(["blk.1.ffn_up.weight"]), r"lists 'blk\.1\.ffn_up\.weight' twice"),
    "a rotated head table": (
        _edit(names.HADAMARD_INVERSE_WEIGHT_NAMES, (["output.weight"], ARRAY, STR)),
        r"lists 'output\.weight': only token_embd\.weight can be stored rotated",
    ),
    "tied output in version 1": (
        _edit(names.HADAMARD_TIED_OUTPUT, (True, GGUFValueType.BOOL)),
        r"prism\.hadamard\.version 1 with prism\.hadamard\.tied_output true",
    ),
    "no folded weights": (
        _edit(names.HADAMARD_WEIGHT_NAMES, None),
        r"metadata prism\.hadamard\.weight_names is missing or empty",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_contract_the_loader_cannot_honour_is_one_clear_error(case: str, tmp_path: Path) -> None:
    w = dense_model(tied=False)
    signs = sign_vectors(w.config)
    edit, message = REFUSALS[case]
    keys = edit(contract(w.config, signs), w.config)
    path = write(tmp_path / "bad.gguf", folded_copy(w, signs), keys)
    with pytest.raises(ValueError, match=message) as error:
        NativeModel(path)
    assert "\n" not in str(error.value)


def test_a_tied_rotated_embedding_needs_version_2(tmp_path: Path) -> None:
    w = dense_model(tied=True)
    signs = sign_vectors(w.config)
    keys = contract(w.config, signs)  # version 1, output.weight listed but not in the file
    keys[names.HADAMARD_WEIGHT_NAMES] = (keys[names.HADAMARD_WEIGHT_NAMES][0][:-1], ARRAY, STR)
    path = write(tmp_path / "tied-v1.gguf", folded_copy(w, signs), keys)
    with pytest.raises(
        ValueError, match=r"the head is the rotated token_embd\.weight, which needs"
    ):
        NativeModel(path)


def test_the_cuda_device_refuses_folded_weights(tmp_path: Path) -> None:
    # llama, not qwen3: the cuda device refuses qwen3's per-head norms before anything else
    w = dense_model("llama", tied=False)
    signs = sign_vectors(w.config)
    path = write(tmp_path / "folded.gguf", folded_copy(w, signs), contract(w.config, signs))
    message = r"^cuda: Hadamard-folded weights \(prism\.hadamard\) run on the cpu device only$"
    with pytest.raises(ValueError, match=message):
        NativeModel(path, device="cuda")


def test_the_published_bonsai_2_graph_is_refused_by_name(tmp_path: Path) -> None:
    """Ternary-Bonsai-2-27B is qwen35 (gated DeltaNet + attention), which bitllm does not run."""
    w = dense_model(tied=False)
    signs = sign_vectors(w.config)
    metadata = {
        k.replace("qwen3.", "qwen35.", 1): v
        for k, v in (gguf_metadata(w.config) | contract(w.config, signs)).items()
    }
    path = write_gguf(tmp_path / "qwen35.gguf", "qwen35", metadata, gguf_tensors(w))
    with pytest.raises(ValueError, match=r"architecture 'qwen35' is not supported \(known: "):
        NativeModel(path)
