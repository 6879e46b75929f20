"""The scheduler's step cost estimates, which size prompt chunks between decode tokens."""

from __future__ import annotations

import pytest

from bitllm.runtime.serve.engine import MIN_CHUNK, PREFILL_SHARE, StepCosts

PASS, TOKEN = 0.030, 0.009  # seconds: a decode token, a prompt token on top of its pass


def test_without_measurements_the_whole_budget_goes_to_the_prompt() -> None:
    costs = StepCosts()
    assert costs.prompt_budget(4, 200) == 200
    costs.observe(4 * PASS, decodes=4, chunks=0, prompt_tokens=0)
    assert costs.prompt_budget(4, 200) == 200  # no prompt token timed yet
    assert costs.prompt_budget(0, 200) == 200  # nothing running: no pace to keep


def test_a_chunk_takes_about_as_long_as_the_decode_tokens() -> None:
    costs = StepCosts()
    costs.observe(4 * PASS, decodes=4, chunks=0, prompt_tokens=0)
    costs.observe(5 * PASS + 10 * TOKEN, decodes=4, chunks=1, prompt_tokens=10)
    assert costs.pass_seconds == pytest.approx(PASS)
    assert costs.token_seconds == pytest.approx(TOKEN)
    budget = costs.prompt_budget(4, 200)
    assert budget == int((4 * PASS * PREFILL_SHARE - PASS) / TOKEN)
    chunk_seconds = PASS + budget * TOKEN
    assert chunk_seconds <= 4 * PASS * PREFILL_SHARE < chunk_seconds + TOKEN
    assert costs.prompt_budget(16, 200) > budget  # more streams: more time per step
    assert costs.prompt_budget(1, 200) == MIN_CHUNK  # a prompt always advances
    assert costs.prompt_budget(16, 20) == 20


def test_estimates_follow_a_slower_machine() -> None:
    costs = StepCosts()
    for _ in range(30):
        costs.observe(2 * PASS, decodes=2, chunks=0, prompt_tokens=0)
    for _ in range(30):
        costs.observe(4 * PASS, decodes=2, chunks=0, prompt_tokens=0)  # twice as slow now
    assert costs.pass_seconds == pytest.approx(2 * PASS, rel=0.01)
