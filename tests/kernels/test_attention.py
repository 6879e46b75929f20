"""The attention op (bl_attend) against a float64 numpy reference over the dequantized KV
cache, for every cache type and ISA, and its invariance: a row's bits do not depend on the
thread count, the ISA, or the other rows (and sequences) of its call."""

from __future__ import annotations

import numpy as np
import pytest

from bitllm import kernels
from bitllm.runtime import tensor_types
from bitllm.runtime.native import check, library

CACHE_TYPES = ("f32", "f16", "q8_0")  # index = bl_kv_type


def _dequantized(cache_type: str, x: np.ndarray) -> np.ndarray:
    """What a cache of cache_type holds for float32 rows x [..., dim], in float64."""
    rows = x.reshape(-1, x.shape[-1]).astype(np.float32)
    packed = tensor_types.quantize(cache_type, rows)
    return tensor_types.dequantize(cache_type, packed, *rows.shape).reshape(x.shape)


def attend(
    q: np.ndarray,
    pos: np.ndarray,
    seq: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    n_head_kv: int,
    types: tuple[str, str] = ("f32", "f32"),
    isa: str | None = None,
    threads: int = 1,
) -> np.ndarray:
    """bl_attend: q [n, n_head, head_dim], k/v [n_seq, n_ctx, n_head_kv, head_dim]."""
    ffi, lib = library()
    n, n_head, head_dim = q.shape
    n_seq, n_ctx = k.shape[:2]
    q, k, v = (np.ascontiguousarray(a, dtype=np.float32) for a in (q, k, v))
    pos32, seq32 = (np.ascontiguousarray(a, dtype=np.int32) for a in (pos, seq))
    out = np.empty_like(q)
    f = ffi.from_buffer
    check(
        lib.bl_attend(
            ffi.cast("float *", f(q)), n, ffi.cast("int32_t *", f(pos32)),
            ffi.cast("int32_t *", f(seq32)), ffi.cast("float *", f(k)),
            ffi.cast("float *", f(v)), n_seq, n_ctx, n_head, n_head_kv, head_dim,
            CACHE_TYPES.index(types[0]), CACHE_TYPES.index(types[1]),
            kernels.isa_index(isa), threads, ffi.cast("float *", f(out)),
        )
    )  # fmt: skip
    return out


def _q8_blocks(x: np.ndarray) -> np.ndarray:
    """x [..., dim] rounded to q8 blocks of 32 as the op rounds its queries against q8_0
    keys (float32 d = max|x| / 127, halves away from zero), in float64."""
    blocks = x.astype(np.float32).reshape(*x.shape[:-1], -1, 32)
    d = np.abs(blocks).max(-1, keepdims=True) / np.float32(127)
    inverse = np.divide(np.float32(1), d, out=np.zeros_like(d), where=d != 0)
    scaled = blocks * inverse
    whole = np.trunc(scaled)
    rounded = whole + np.where(np.abs(scaled - whole) >= 0.5, np.sign(scaled), 0)
    return (rounded.astype(np.float64) * d.astype(np.float64)).reshape(x.shape)


def reference(q, pos, seq, k, v, types: tuple[str, str]) -> np.ndarray:  # noqa: ANN001
    """float64 causal GQA attention over what the caches hold; against q8_0 keys the
    queries are first rounded to q8 blocks, as the op does."""
    if types[0] == "q8_0":
        q = _q8_blocks(q)
    k64 = _dequantized(types[0], k).astype(np.float64)
    v64 = _dequantized(types[1], v).astype(np.float64)
    n, n_head, head_dim = q.shape
    group = n_head // k.shape[2]
    out = np.empty((n, n_head, head_dim))
    for t in range(n):
        keys, values = k64[seq[t], : pos[t] + 1], v64[seq[t], : pos[t] + 1]
        for h in range(n_head):
            s = keys[:, h // group] @ q[t, h].astype(np.float64) / np.sqrt(head_dim)
            p = np.exp(s - s.max())
            out[t, h] = p @ values[:, h // group] / p.sum()
    return out


def _problem(
    n_ctx: int, n_head: int, n_head_kv: int, head_dim: int, n_seq: int = 1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (n_seq, n_ctx, n_head_kv, head_dim)
    k = rng.standard_normal(shape).astype(np.float32)
    v = rng.standard_normal(shape).astype(np.float32)
    return k, v


def _queries(n: int, n_head: int, head_dim: int, seed: int = 1) -> np.ndarray:
    # Large enough that the softmax is peaked somewhere: a wrong max or fold shows.
    rng = np.random.default_rng(seed)
    return (3 * rng.standard_normal((n, n_head, head_dim))).astype(np.float32)


@pytest.mark.parametrize("isa", kernels.isas())
@pytest.mark.parametrize(
    "types", [("f32", "f32"), ("f16", "f16"), ("q8_0", "q8_0"), ("f16", "q8_0")]
)
@pytest.mark.parametrize(
    ("n_head", "n_head_kv", "head_dim"), [(4, 1, 64), (6, 2, 32), (3, 3, 96), (8, 2, 128)]
)
def test_matches_float64_over_the_dequantized_cache(
    isa: str, types: tuple[str, str], n_head: int, n_head_kv: int, head_dim: int
) -> None:
    # 700 positions: three chunks of 256, the last one partial.
    n_ctx = 700
    k, v = _problem(n_ctx, n_head, n_head_kv, head_dim)
    pos = np.array([0, 1, 255, 256, 257, 511, 600, 699])
    seq = np.zeros_like(pos)
    q = _queries(len(pos), n_head, head_dim)
    got = attend(q, pos, seq, k, v, n_head_kv, types, isa=isa, threads=2)
    expected = reference(q, pos, seq, k, v, types)
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-6 * np.abs(v).max())


@pytest.mark.parametrize("head_dim", [20, 48])
def test_head_sizes_off_the_vector_width(head_dim: int) -> None:
    k, v = _problem(300, 4, 2, head_dim, seed=2)
    pos = np.arange(290, 300)
    q = _queries(len(pos), 4, head_dim)
    for types in (("f32", "f32"), ("f16", "f16")):
        got = attend(q, pos, np.zeros_like(pos), k, v, 2, types, threads=2)
        expected = reference(q, pos, np.zeros_like(pos), k, v, types)
        np.testing.assert_allclose(got, expected, rtol=0, atol=2e-6 * np.abs(v).max())


def test_the_reference_tells_cache_types_apart() -> None:
    # The comparison above can fail: f16 results are not within float32 rounding of the
    # float64 attention over the float32 values.
    k, v = _problem(300, 4, 2, 64, seed=3)
    pos = np.array([299])
    q = _queries(1, 4, 64)
    got = attend(q, pos, np.zeros_like(pos), k, v, 2, ("f16", "f16"))
    exact = reference(q, pos, np.zeros_like(pos), k, v, ("f32", "f32"))
    assert np.abs(got - exact).max() > 2e-6 * np.abs(v).max()


@pytest.mark.parametrize("isa", kernels.isas())
def test_a_weight_below_e_to_the_minus_64_is_exactly_zero(isa: str) -> None:
    # Position 0 scores 70 below position 1 (e^-70 ~ 4e-31, below the cut) and holds a
    # huge value: had its weight been kept at FLT_MIN (as bl_exp's clamp made it), its
    # product with 1e32 would show as 1.2e-6. Position 2 scores 60 below (e^-60, kept).
    head_dim = 16
    k = np.zeros((1, 3, 1, head_dim), np.float32)
    k[0, :, 0, 0] = [-70.0, 0.0, -60.0]
    v = np.ones((1, 3, 1, head_dim), np.float32)
    v[0, 0, 0, :] = 1e32
    v[0, 2, 0, :] = 1e20
    q = np.zeros((1, 1, head_dim), np.float32)
    q[0, 0, 0] = np.sqrt(head_dim)  # undo the 1/sqrt(head_dim) scale
    got = attend(q, np.array([2]), np.zeros(1), k, v, 1, isa=isa)
    kept = (1.0 + np.exp(np.float64(-60.0)) * 1e20) / (1.0 + np.exp(np.float64(-60.0)))
    np.testing.assert_allclose(got[0, 0], kept, rtol=1e-6)
    assert abs(got[0, 0, 0] - kept) < abs(kept + np.exp(-70.0) * 1e32 - kept) / 100


@pytest.mark.parametrize("heads", [(8, 2), (6, 2), (8, 4), (4, 4)])  # groups of 4, 3, 2, 1
@pytest.mark.parametrize("types", [("f32", "f32"), ("f16", "f16"), ("q8_0", "q8_0")])
def test_bits_do_not_depend_on_isa_threads_or_neighbours(
    types: tuple[str, str], heads: tuple[int, int]
) -> None:
    # Three sequences of different lengths; sequence 1 has a run of prefill rows that
    # spans chunk boundaries, the others one decode row each. The SIMD paths take query
    # heads in tiles of 4, 3, 2 or 1 by the group's size; the scalar path one at a time.
    (n_head, n_head_kv), head_dim, n_ctx = heads, 64, 600
    k, v = _problem(n_ctx, n_head, n_head_kv, head_dim, n_seq=3, seed=4)
    seq = np.array([0] + [1] * 40 + [2])
    pos = np.concatenate([[599], np.arange(230, 270), [17]])
    q = _queries(len(seq), n_head, head_dim, seed=5)
    batch = attend(q, pos, seq, k, v, n_head_kv, types, isa="scalar", threads=1)
    for isa in kernels.isas():
        for threads in (1, 2, 3):
            got = attend(q, pos, seq, k, v, n_head_kv, types, isa=isa, threads=threads)
            np.testing.assert_array_equal(got, batch, err_msg=f"{isa}, {threads} threads")
    for t in (0, 1, 20, 40, 41):  # each row alone: the decode path, split over positions
        for threads in (1, 2):
            alone = attend(q[t : t + 1], pos[t : t + 1], seq[t : t + 1], k, v, n_head_kv, types,
                           threads=threads)  # fmt: skip
            np.testing.assert_array_equal(alone[0], batch[t], err_msg=f"row {t}")


def test_a_decode_wider_than_one_wave() -> None:
    # 4500 positions: more than the 16 chunks a decode wave holds.
    n_ctx = 4500
    k, v = _problem(n_ctx, 2, 1, 32, seed=6)
    pos = np.array([4499])
    q = _queries(1, 2, 32, seed=7)
    types = ("f16", "f16")
    got = attend(q, pos, np.zeros_like(pos), k, v, 1, types, threads=2)
    np.testing.assert_allclose(
        got, reference(q, pos, np.zeros_like(pos), k, v, types), rtol=0, atol=2e-6
    )
    tiled = attend(np.repeat(q, 8, 0), np.arange(4492, 4500), np.zeros(8), k, v, 1, types)
    np.testing.assert_array_equal(tiled[-1], got[0])


def test_bad_calls_are_errors() -> None:
    k, v = _problem(8, 2, 1, 32)
    q = _queries(2, 2, 32)
    with pytest.raises(ValueError, match="position 8 is not in"):
        attend(q, np.array([1, 8]), np.zeros(2), k, v, 1)
    with pytest.raises(ValueError, match="do not increase in position"):
        attend(q, np.array([3, 3]), np.zeros(2), k, v, 1)
    with pytest.raises(ValueError, match="sequence 1 is not in"):
        attend(q, np.array([3, 4]), np.array([0, 1]), k, v, 1)
    with pytest.raises(ValueError, match="2 heads do not group over 3"):
        attend(q, np.array([3, 4]), np.zeros(2), *_problem(8, 2, 3, 32), 3)
    k16, v16 = _problem(8, 2, 1, 16)
    with pytest.raises(ValueError, match="q8_0 KV cache needs heads of a multiple of 32"):
        attend(_queries(2, 2, 16), np.array([3, 4]), np.zeros(2), k16, v16, 1, ("q8_0", "f16"))


def test_repeated_attention_gives_the_same_bits() -> None:
    # bl_attend_repeat (the benchmark's entry) attends several times over caches stored
    # once, in one or several layers: every run writes the same result, and a repeat or
    # layer count below one is an error.
    ffi, lib = library()
    k, v = _problem(300, 4, 2, 64, seed=8)
    pos = np.array([299], dtype=np.int32)
    q = _queries(1, 4, 64)
    once = attend(q, pos, np.zeros_like(pos), k, v, 2, ("f16", "f16"))
    out = np.empty_like(once)
    f = ffi.from_buffer
    seq = np.zeros(1, dtype=np.int32)

    def call(repeat: int, layers: int = 1) -> int:
        return lib.bl_attend_repeat(
            ffi.cast("float *", f(q)), 1, ffi.cast("int32_t *", f(pos)),
            ffi.cast("int32_t *", f(seq)), ffi.cast("float *", f(k)),
            ffi.cast("float *", f(v)), 1, 300, 4, 2, 64, 1, 1, -1, 2, layers, repeat,
            ffi.cast("float *", f(out)),
        )  # fmt: skip

    for layers in (1, 3):  # each run reads its own layer's copy of the same rows
        out[:] = np.nan
        check(call(5, layers))
        np.testing.assert_array_equal(out, once)
    with pytest.raises(ValueError, match="repeat 0 is not >= 1"):
        check(call(0))
    with pytest.raises(ValueError, match="layers 0 is not >= 1"):
        check(call(2, 0))
