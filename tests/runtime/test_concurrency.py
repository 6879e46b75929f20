"""One Model from several Python threads, close() racing a generation, and thread pools
that belong to their model. Each scenario runs in a child process, so a crash fails its
test instead of taking the test run down."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.runtime.tiny_model import cached_model


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_model(tmp_path_factory.getbasetemp())


def run_child(code: str, model_path: Path, timeout: float = 240) -> str:
    """Runs code with MODEL bound to the model's path; returns its stdout. A crash, a hang
    or an exception fails the test with the child's stderr."""
    script = f"MODEL = {str(model_path)!r}\n" + textwrap.dedent(code)
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=root,
    )
    assert result.returncode == 0, f"child exited {result.returncode}:\n{result.stderr[-3000:]}"
    return result.stdout


def test_four_threads_share_one_model_and_get_what_each_gets_alone(model_path: Path) -> None:
    out = run_child(
        """
        import threading, bitllm
        prompts = ["Once upon", "The river", "In a quiet town", "Numbers: 1 2 3"]
        with bitllm.Model(MODEL, threads=2, n_ctx=128) as m:
            alone = {p: m.generate(p, max_tokens=12, temperature=0) for p in prompts}
            results, errors = [], []

            def worker(p):
                try:
                    for _ in range(6):
                        if p.startswith("The"):  # streamed and plain calls mixed
                            text = "".join(m.generate(p, max_tokens=12, temperature=0,
                                                      stream=True))
                        else:
                            text = m.generate(p, max_tokens=12, temperature=0)
                        results.append((p, text))
                except Exception as e:
                    errors.append(repr(e))

            threads = [threading.Thread(target=worker, args=(p,)) for p in prompts]
            for t in threads: t.start()
            for t in threads: t.join()
            assert not errors, errors
            assert len(results) == 24
            bad = [(p, t) for p, t in results if t != alone[p]]
            assert not bad, bad
        print("ok")
        """,
        model_path,
    )
    assert out.strip() == "ok"


def test_close_racing_a_generation_raises_or_finishes_never_crashes(model_path: Path) -> None:
    out = run_child(
        """
        import threading, time, bitllm
        outcomes = []
        for delay in (0.0, 0.002, 0.01, 0.05):
            m = bitllm.Model(MODEL, threads=2, n_ctx=256)

            def generate():
                try:
                    m.generate("A long story begins", max_tokens=200, temperature=0)
                    outcomes.append("finished")
                except ValueError as e:
                    assert "closed" in str(e), e
                    outcomes.append("raised")

            t = threading.Thread(target=generate)
            t.start()
            time.sleep(delay)
            m.close()
            t.join()
        try:
            m.generate("after close", max_tokens=2)
        except ValueError as e:
            outcomes.append("closed: " + str(e))
        print(outcomes)
        """,
        model_path,
    )
    outcomes = eval(out)  # a list literal printed by the child
    assert len(outcomes) == 5
    assert set(outcomes[:4]) <= {"finished", "raised"}
    assert outcomes[4].startswith("closed: ")


def test_a_model_owns_its_threads_and_closing_it_joins_them(model_path: Path) -> None:
    out = run_child(
        """
        import os, bitllm

        def os_threads():
            return len(os.listdir("/proc/self/task"))

        before = os_threads()
        m = bitllm.Model(MODEL, threads=6, n_ctx=64)
        during = os_threads()
        m.generate("x", max_tokens=2)
        m.close()
        after = os_threads()
        with bitllm.Model(MODEL, threads=2, n_ctx=64) as small:
            small.generate("x", max_tokens=2)
            with_small = os_threads()
        print(before, during, after, with_small)
        """,
        model_path,
    )
    before, during, after, with_small = map(int, out.split())
    assert during == before + 5  # the caller is the sixth thread
    assert after == before
    assert with_small == before + 1  # the big model's workers are gone


def test_too_many_threads_is_an_error_not_a_cap(model_path: Path) -> None:
    import bitllm

    with pytest.raises(ValueError, match="threads must be at most 256, got 10000"):
        bitllm.Model(model_path, threads=10000)


def test_idle_workers_sleep(model_path: Path) -> None:
    out = run_child(
        """
        import time, resource, bitllm
        with bitllm.Model(MODEL, threads=2, n_ctx=64) as m:
            m.generate("warm up", max_tokens=4, temperature=0)
            time.sleep(0.2)  # past the workers' short spin
            start = resource.getrusage(resource.RUSAGE_SELF)
            time.sleep(1.0)
            end = resource.getrusage(resource.RUSAGE_SELF)
        busy = (end.ru_utime - start.ru_utime) + (end.ru_stime - start.ru_stime)
        print(busy)
        """,
        model_path,
    )
    assert float(out) < 0.05  # CPU seconds used by the whole process in one idle second
