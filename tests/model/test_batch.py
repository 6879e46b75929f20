"""The multi-sequence batch API: a sequence's logits are bit-identical whatever shares its
batch, however the batch is split, on any thread count; prefix copies; bad batches."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from bitllm.runtime.model import NativeModel

from .conftest import ModelFactory

RNG = np.random.default_rng(7)
PROMPTS = [list(RNG.integers(0, 200, size=n)) for n in (9, 5, 14, 1)]


@pytest.fixture(
    scope="module",
    params=[("bitnet-b1.58", "q8_0"), ("bitnet", "f16"), ("onebit", "f32"), ("llama", "q4_0")],
)
def model(request: pytest.FixtureRequest, make_model: ModelFactory) -> Iterator[NativeModel]:
    arch, head = request.param
    _, path = make_model(arch, n_vocab=256, n_ctx_train=512, head_type=head)
    with NativeModel(path, threads=2) as m:
        yield m


def alone(model: NativeModel, prompt: list[int], steps: list[int]) -> list[np.ndarray]:
    """Logits after the prompt and after each decode step, one sequence at a time."""
    context = model.new_context(64)
    out = [context.eval(prompt, 0).copy()]
    for i, token in enumerate(steps):
        out.append(context.eval([token], len(prompt) + i).copy())
    context.close()
    return out


def test_prefill_and_decode_in_one_batch_match_each_sequence_alone(model: NativeModel) -> None:
    steps = [[3, 17, 99], [250, 4, 4], [0, 1, 2], [42, 43, 44]]
    expected = [alone(model, p, s) for p, s in zip(PROMPTS, steps, strict=True)]
    batch = model.new_batch_context(64, len(PROMPTS))
    tokens, positions, seqs = [], [], []
    for seq, prompt in enumerate(PROMPTS):
        tokens += prompt
        positions += range(len(prompt))
        seqs += [seq] * len(prompt)
    first = batch.decode(tokens, positions, seqs)  # the last row of each sequence
    for seq in range(len(PROMPTS)):
        np.testing.assert_array_equal(first[seq], expected[seq][0])
    for i in range(3):
        # a different mix of sequences at every step: who shares the batch must not matter
        active = [s for s in range(len(PROMPTS)) if (s + i) % 4 != 3]
        step_tokens = [steps[s][i] for s in active]
        step_pos = [len(PROMPTS[s]) + i for s in active]
        if i > 0:  # sequences skipped at an earlier step catch up first
            for s in active:
                missing = batch.n_past(s) < step_pos[active.index(s)]
                if missing:
                    batch.decode([steps[s][i - 1]], [step_pos[active.index(s)] - 1], [s])
        out = batch.decode(step_tokens, step_pos, active)
        for row, s in enumerate(active):
            np.testing.assert_array_equal(out[row], expected[s][i + 1], err_msg=f"seq {s} step {i}")
    batch.close()


def test_a_batch_larger_than_one_pass_is_split_without_changing_results(
    make_model: ModelFactory,
) -> None:
    _, path = make_model("bitnet-b1.58", n_vocab=256, n_ctx_train=512, head_type="q8_0")
    long = [list(RNG.integers(0, 256, size=n)) for n in (200, 150)]  # 350 rows > 256 a pass
    with NativeModel(path, threads=1) as m:
        expected = [m.new_context(256).eval(p, 0, all_logits=True) for p in long]
        batch = m.new_batch_context(256, 2)
        out = batch.decode(
            long[0] + long[1],
            list(range(200)) + list(range(150)),
            [0] * 200 + [1] * 150,
            [True] * 350,
        )
    np.testing.assert_array_equal(out[:200], expected[0])
    np.testing.assert_array_equal(out[200:], expected[1])


def test_results_do_not_depend_on_the_thread_count(make_model: ModelFactory) -> None:
    _, path = make_model("bitnet-b1.58", n_vocab=256, n_ctx_train=512, head_type="q8_0")
    results = []
    for threads in (1, 2, 3):
        with NativeModel(path, threads=threads) as m:
            batch = m.new_batch_context(64, 2)
            results.append(
                batch.decode(
                    PROMPTS[0] + PROMPTS[1],
                    list(range(9)) + list(range(5)),
                    [0] * 9 + [1] * 5,
                    [True] * 14,
                )
            )
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])


@pytest.mark.parametrize("prefix_length", [21, 32])
def test_a_copied_prefix_of_q8_0_keys_continues_like_the_full_prompt(
    make_model: ModelFactory, prefix_length: int
) -> None:
    # q8_0 keys lie in tiles of 16 positions: a copy takes whole tiles, so a prefix
    # ending inside one (21) brings positions the copy does not own, which the
    # continuation must overwrite before they count; 32 ends on a tile's edge.
    _, path = make_model("bitnet", n_vocab=256, n_ctx_train=512, n_head=2, n_head_kv=1)
    prompt = list(RNG.integers(0, 200, size=40))
    with NativeModel(path, threads=2) as m:
        whole = m.new_context(64, "q8_0", "q8_0")
        expected = whole.eval(prompt, 0).copy()
        whole.close()
        batch = m.new_batch_context(64, 2, "q8_0", "q8_0")
        batch.decode(
            prompt[:prefix_length] + [7] * 9,
            list(range(prefix_length + 9)),
            [0] * (prefix_length + 9),
        )
        batch.copy(0, 1, prefix_length)
        tail = prompt[prefix_length:]
        out = batch.decode(tail, list(range(prefix_length, len(prompt))), [1] * len(tail))
        np.testing.assert_array_equal(out[0], expected)
        batch.close()


def test_a_copied_prefix_continues_like_the_full_prompt(model: NativeModel) -> None:
    prefix, tail = PROMPTS[2][:10], PROMPTS[2][10:]
    expected = alone(model, prefix + tail, [])[0]
    batch = model.new_batch_context(64, 3)
    batch.decode(prefix + [5, 6], list(range(12)), [0] * 12)
    batch.copy(0, 2, len(prefix))  # sequence 2 reuses the first 10 positions of 0
    assert batch.n_past(2) == len(prefix)
    out = batch.decode(tail, list(range(10, 10 + len(tail))), [2] * len(tail))
    np.testing.assert_array_equal(out[0], expected)
    batch.keep(0, 0)
    assert batch.n_past(0) == 0


@pytest.mark.parametrize(
    ("tokens", "positions", "seqs", "message"),
    [
        ([1, 2, 3], [0, 0, 1], [0, 1, 0], "not consecutive in the batch"),
        ([1, 2], [0, 2], [0, 0], "jumps from position 0 to 2"),
        ([1], [3], [1], "starts at position 3 but has 0 cached"),
        ([1], [0], [5], "sequence 5 is not in \\[0, 2\\)"),
        ([999], [0], [0], "token 999 at index 0 is not in \\[0, 256\\)"),
        ([1], [64], [0], "position 64 at index 0 is outside the context of 64"),
    ],
)
def test_bad_batches_are_one_line_errors(
    model: NativeModel, tokens: list[int], positions: list[int], seqs: list[int], message: str
) -> None:
    batch = model.new_batch_context(64, 2)
    with pytest.raises(ValueError, match=message):
        batch.decode(tokens, positions, seqs)
    with pytest.raises(ValueError, match="sequence 2 is not in"):
        batch.copy(0, 2, 0)
    with pytest.raises(ValueError, match="3 positions asked of sequence 0, which has 0"):
        batch.copy(0, 1, 3)
    batch.close()
    with pytest.raises(ValueError, match="closed"):
        batch.decode([1], [0], [0])


def test_too_many_sequences_is_an_error(model: NativeModel) -> None:
    with pytest.raises(ValueError, match="at most 256 sequences per context, got 257"):
        model.new_batch_context(8, 257)
