"""Sampling rules on plain numpy logits, and stop strings in streamed text."""

from __future__ import annotations

import numpy as np
import pytest

from bitllm.runtime.sampling import (
    REPEAT_LAST_N,
    Sampler,
    SamplingParams,
    StopStrings,
    apply_repeat_penalty,
    candidates,
)


def _logits_for(probs: list[float], n_vocab: int = 10) -> np.ndarray:
    """Logits whose softmax over the first len(probs) tokens is probs; the rest ~0."""
    logits = np.full(n_vocab, -1e4, dtype=np.float32)
    logits[: len(probs)] = np.log(np.asarray(probs, dtype=np.float64))
    return logits


def test_greedy_takes_the_argmax_whatever_the_seed(rng: np.random.Generator) -> None:
    logits = rng.standard_normal(1000).astype(np.float32)
    for seed in (None, 1, 2):
        sampler = Sampler(SamplingParams(temperature=0, seed=seed))
        assert sampler(logits, []) == int(np.argmax(logits))


def test_top_k_keeps_the_k_best_in_order(rng: np.random.Generator) -> None:
    logits = rng.standard_normal(500).astype(np.float32)
    ids, kept = candidates(logits, SamplingParams(top_k=7, top_p=1.0, min_p=0.0))
    assert list(ids) == list(np.argsort(-logits)[:7])
    assert np.array_equal(kept, logits[ids])


def test_top_p_keeps_the_smallest_head_reaching_p() -> None:
    logits = _logits_for([0.5, 0.3, 0.15, 0.05])
    params = dict(top_k=0, min_p=0.0)
    assert list(candidates(logits, SamplingParams(top_p=0.5, **params))[0]) == [0]
    assert list(candidates(logits, SamplingParams(top_p=0.79, **params))[0]) == [0, 1]
    assert list(candidates(logits, SamplingParams(top_p=0.81, **params))[0]) == [0, 1, 2]


def test_min_p_cuts_relative_to_the_best_token() -> None:
    logits = _logits_for([0.5, 0.3, 0.15, 0.05])
    params = dict(top_k=0, top_p=1.0)
    assert list(candidates(logits, SamplingParams(min_p=0.2, **params))[0]) == [0, 1, 2]
    assert list(candidates(logits, SamplingParams(min_p=0.5, **params))[0]) == [0, 1]
    assert list(candidates(logits, SamplingParams(min_p=1.0, **params))[0]) == [0]


def test_samples_follow_the_tempered_distribution() -> None:
    probs = np.array([0.6, 0.3, 0.1])
    logits = _logits_for(list(probs))
    n = 6000
    for temperature in (1.0, 0.5):
        sampler = Sampler(
            SamplingParams(temperature=temperature, top_k=0, top_p=1.0, min_p=0.0, seed=5)
        )
        counts = np.bincount([sampler(logits, []) for _ in range(n)], minlength=10)
        expected = probs ** (1 / temperature) / (probs ** (1 / temperature)).sum()
        assert counts[3:].sum() == 0
        assert np.allclose(counts[:3] / n, expected, atol=0.025), (temperature, counts)


def test_same_seed_same_tokens_other_seed_other_tokens(rng: np.random.Generator) -> None:
    logits = rng.standard_normal(64).astype(np.float32)
    params = dict(temperature=1.5, top_k=0, top_p=1.0, min_p=0.0)

    def draw(seed: int) -> list[int]:
        sampler = Sampler(SamplingParams(seed=seed, **params))
        return [sampler(logits, []) for _ in range(50)]

    assert draw(7) == draw(7)
    assert draw(7) != draw(8)


def test_repeat_penalty_pushes_seen_tokens_down() -> None:
    logits = np.array([2.0, -2.0, 1.0, 0.5], dtype=np.float32)
    apply_repeat_penalty(logits, [0, 1, 1], 2.0)
    assert logits.tolist() == [1.0, -4.0, 1.0, 0.5]


def test_repeat_penalty_only_looks_at_recent_tokens() -> None:
    logits = np.array([3.0, 2.5], dtype=np.float32)
    sampler = Sampler(SamplingParams(temperature=0, repeat_penalty=2.0))
    assert sampler(logits, [0]) == 1
    assert sampler(logits, [0] + [5] * REPEAT_LAST_N) == 0
    assert logits.tolist() == [3.0, 2.5]  # the caller's logits are left alone


@pytest.mark.parametrize(
    "bad",
    [
        dict(temperature=-0.1),
        dict(temperature=float("nan")),
        dict(top_k=-1),
        dict(top_p=0.0),
        dict(top_p=1.5),
        dict(min_p=-0.1),
        dict(repeat_penalty=0.0),
        dict(seed=-3),
    ],
)
def test_bad_settings_are_refused_with_the_name(bad: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        SamplingParams(**bad)


def test_non_finite_logits_are_an_error() -> None:
    logits = np.array([0.0, np.nan], dtype=np.float32)
    with pytest.raises(ValueError, match="non-finite"):
        Sampler(SamplingParams())(logits, [])


def _stream(stops: list[str], pieces: list[str]) -> tuple[list[str], bool]:
    filt = StopStrings(stops)
    out = [filt.feed(p) for p in pieces]
    out.append(filt.finish())
    return out, filt.stopped


def test_stop_string_is_cut_and_not_emitted() -> None:
    out, stopped = _stream(["END"], ["hello E", "N", "D and more"])
    assert "".join(out) == "hello " and stopped


def test_partial_match_is_held_back_then_released() -> None:
    out, stopped = _stream(["END"], ["hello E", "N", "o"])
    assert out == ["hello ", "", "ENo", ""]
    assert not stopped


def test_text_held_at_the_end_comes_out_on_finish() -> None:
    out, stopped = _stream(["\n\n"], ["a", "b\n"])
    assert out == ["a", "b", "\n"] and not stopped


def test_earliest_of_several_stops_wins() -> None:
    out, _ = _stream(["cd", "b"], ["abcdef"])
    assert "".join(out) == "a"
    out, _ = _stream(["xyz", "yz!"], ["..xy", "z!"])
    assert "".join(out) == ".."


def test_no_stops_passes_everything_through() -> None:
    out, stopped = _stream([], ["a", "b"])
    assert out == ["a", "b", ""] and not stopped
    assert StopStrings("x").stops == ["x"]


def test_repeat_last_n_bounds_the_tokens_the_penalty_sees() -> None:
    logits = np.array([3.0, 2.9, 0.0, 0.0], dtype=np.float32)
    history = [0] + [2] * 10  # token 0 was seen 11 tokens ago

    def pick(n: int) -> int:
        params = SamplingParams(temperature=0, repeat_penalty=2.0, repeat_last_n=n)
        return Sampler(params)(logits, history)

    assert pick(10) == 0  # token 0 is outside the window: not penalized
    assert pick(11) == 1  # inside it: 3.0 / 2 < 2.9
    assert pick(-1) == 1  # the whole history
    assert pick(0) == 0  # no window at all
    with pytest.raises(ValueError, match="repeat_last_n must be >= 0"):
        SamplingParams(repeat_last_n=-2)


def _candidates_by_full_sort(
    logits: np.ndarray, params: SamplingParams
) -> tuple[np.ndarray, np.ndarray]:
    """The rules of `candidates` on the whole vocabulary sorted (equal logits in id order)."""
    ids = np.argsort(-logits, kind="stable")
    if 0 < params.top_k < len(ids):
        ids = ids[: params.top_k]
    kept = logits[ids]
    probs = np.exp(kept - kept[0], dtype=np.float64)
    probs /= probs.sum()
    keep = len(ids)
    if params.top_p < 1.0:
        keep = min(keep, int(np.searchsorted(np.cumsum(probs), params.top_p)) + 1)
    if params.min_p > 0.0:
        keep = min(keep, int(np.count_nonzero(probs >= params.min_p * probs[0])))
    keep = max(keep, 1)
    return ids[:keep], kept[:keep]


@pytest.mark.parametrize(
    "settings",
    [
        {"top_k": 40},  # the defaults: a bound from chunk maxima
        {"top_k": 3000, "top_p": 1.0, "min_p": 0.0},  # more than there are chunks
        {"top_k": 0},  # min-p's bound on the logits
        {"top_k": 0, "min_p": 0.0, "top_p": 0.9},  # heads growing to top-p's mass
        {"top_k": 0, "min_p": 0.0, "top_p": 1.0},  # the whole vocabulary
        {"top_k": 1},
    ],
)
def test_candidates_match_a_full_sort(settings: dict, rng: np.random.Generator) -> None:
    """Without sorting the vocabulary, the same tokens in the same order as sorting it all,
    on vocabularies of real size, flat or peaked, with runs of equal logits (ties go to the
    lower id) and a tail that is no whole chunk."""
    params = SamplingParams(**settings)
    for n_vocab, spread in ((128256, 3.0), (32000, 0.3), (151936, 12.0), (1000, 1.0)):
        logits = (rng.standard_normal(n_vocab) * spread).astype(np.float32)
        logits[rng.integers(0, n_vocab, 3)] = logits.max()  # ties at the top
        logits[: n_vocab // 2] = np.round(logits[: n_vocab // 2], 1)  # many more in half
        got_ids, got_kept = candidates(logits, params)
        ids, kept = _candidates_by_full_sort(logits, params)
        np.testing.assert_array_equal(got_ids, ids, err_msg=f"{n_vocab} tokens, {settings}")
        np.testing.assert_array_equal(got_kept, kept)
