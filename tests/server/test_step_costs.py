"""The scheduler's step cost estimates, which size prompt chunks between decode tokens."""

from __future__ import annotations

import pytest

from bitllm.runtime.serve.engine import MIN_CHUNK, PREFILL_SHARE, StepCosts

STEP, TOKEN = 0.120, 0.009  # seconds: a step of decode tokens, what a prompt token adds


def test_without_measurements_the_whole_budget_goes_to_the_prompt() -> None:
    costs = StepCosts()
    assert costs.prompt_budget(4, 200) == 200
    costs.observe(STEP, decodes=4, prompt_tokens=0)
    assert costs.prompt_budget(4, 200) == 200  # no prompt token timed yet
    assert costs.prompt_budget(0, 200) == 200  # nothing running: no pace to keep


def test_a_chunk_adds_about_one_decode_step() -> None:
    costs = StepCosts()
    costs.observe(STEP, decodes=4, prompt_tokens=0)
    costs.observe(STEP + 10 * TOKEN, decodes=4, prompt_tokens=10)
    assert costs.decode_step == pytest.approx(STEP)
    assert costs.prompt_token == pytest.approx(TOKEN)
    budget = costs.prompt_budget(4, 200)
    assert budget == int(STEP * PREFILL_SHARE / TOKEN)
    assert budget * TOKEN <= STEP * PREFILL_SHARE < (budget + 1) * TOKEN
    assert costs.prompt_budget(4, 5) == 5


def test_a_prompt_always_advances() -> None:
    costs = StepCosts()
    costs.observe(0.001, decodes=1, prompt_tokens=0)
    costs.observe(1.0, decodes=0, prompt_tokens=10)  # prefill alone: 0.1 s a token
    assert costs.prompt_budget(1, 200) == MIN_CHUNK


def test_estimates_follow_a_slower_machine() -> None:
    costs = StepCosts()
    for _ in range(30):
        costs.observe(STEP, decodes=2, prompt_tokens=0)
    for _ in range(30):
        costs.observe(2 * STEP, decodes=2, prompt_tokens=0)  # twice as slow now
    assert costs.decode_step == pytest.approx(2 * STEP, rel=0.01)
