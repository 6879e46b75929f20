"""bit-run and bit-bench as a user runs them: real processes, and a real terminal for chat."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import bitllm
from bitllm.runtime import cli
from tests.runtime.tiny_model import cached_model

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cached_model(tmp_path_factory.getbasetemp())


def _command(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", f"bitllm.runtime.{module}", *args]


def bit_run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _command("cli", *args), input=stdin, capture_output=True, text=True, timeout=120
    )


def _one_line_error(result: subprocess.CompletedProcess[str], code: int, text: str) -> None:
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and text in lines[0]


def test_prompt_streams_the_same_text_as_the_api(model_path: Path) -> None:
    with bitllm.Model(model_path, n_ctx=128) as m:
        expected = m.generate("Once upon a time", max_tokens=10, temperature=0)
    result = bit_run(
        "-m",
        str(model_path),
        "-p",
        "Once upon a time",
        "-n",
        "10",
        "--temp",
        "0",
        "-c",
        "128",
        "-t",
        "1",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Once upon a time" + expected + "\n"
    for timing in ("load time", "prompt eval time", "eval time", "tokens per second"):
        assert timing in result.stderr
    assert "Traceback" not in result.stderr


def test_prompt_file_seed_and_no_echo(
    model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Dear diary,", encoding="utf-8")
    args = [
        "-m",
        str(model_path),
        "-f",
        str(prompt),
        "-n",
        "8",
        "--seed",
        "5",
        "--temp",
        "1.2",
        "--top-k",
        "0",
        "--top-p",
        "1",
        "--min-p",
        "0",
        "--repeat-penalty",
        "1.1",
        "--no-display-prompt",
    ]
    outputs = []
    for seed in ("5", "5", "6"):
        args[args.index("--seed") + 1] = seed
        assert cli.main(args) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] != outputs[2]
    assert not outputs[0].startswith("Dear diary")


def test_verbose_prints_the_model_summary(
    model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["-m", str(model_path), "-p", "Hi", "-n", "2", "--verbose"]) == 0
    err = capsys.readouterr().err
    for field in ("arch", "bitnet", "layers", "vocab", "32000", "bt2", "isa"):
        assert field in err


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (("-m", "{model}"), "give a prompt"),
        (("-m", "{model}", "-p", "x", "--temp", "-1"), "temperature"),
        (("-m", "{model}", "-p", "x", "--top-p", "0"), "top_p"),
        (("-m", "{model}", "-p", "x", "-n", "-7"), "-n"),
        (("-m", "{model}", "-f", "/no/such/prompt.txt"), "cannot read the prompt file"),
        (("-m", "{model}", "-p", "word " * 300, "-c", "32"), "context holds 32"),
        (("-m", "{model}", "-p", "x", "-t", "0"), "threads"),
        (("-m", "{model}", "-p", "x", "--system", "S"), "--system needs --chat"),
    ],
)
def test_errors_are_one_line(
    model_path: Path, args: tuple, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([a.replace("{model}", str(model_path)) for a in args]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and text in err, err


def test_usage_errors_exit_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["-p", "x"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "required" in err, err


def test_missing_model_is_one_line_from_a_real_process() -> None:
    _one_line_error(bit_run("-m", "/no/such/model.gguf", "-p", "x"), 1, "model file not found")


def test_bad_gguf_is_a_one_line_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 32)
    _one_line_error(bit_run("-m", str(junk), "-p", "x"), 1, "junk.gguf")


def test_chat_from_a_pipe_runs_every_turn(model_path: Path) -> None:
    result = bit_run(
        "-m",
        str(model_path),
        "--chat",
        "--system",
        "Be brief.",
        "-n",
        "6",
        "--temp",
        "0",
        stdin="Hello\nHow are you?\n",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("> ") == 3  # two turns, then the prompt that meets EOF
    assert "eval time" in result.stderr


def test_chat_drops_old_turns_when_the_context_fills(model_path: Path) -> None:
    turns = "".join(f"Tell me about topic number {i} please\n" for i in range(8))
    result = bit_run(
        "-m",
        str(model_path),
        "--chat",
        "--system",
        "S",
        "-n",
        "6",
        "-c",
        "64",
        "--temp",
        "0",
        stdin=turns,
    )
    assert result.returncode == 0, result.stderr
    assert "dropped the" in result.stderr and "oldest message" in result.stderr
    assert result.stdout.count("> ") == 9
    assert "Traceback" not in result.stderr


class Terminal:
    """bit-run --chat on a pseudo-terminal: what a user at a keyboard sees and sends."""

    def __init__(self, *args: str) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: becomes bit-run, with the terminal as its tty
            os.execvpe(sys.executable, _command("cli", *args), os.environ)
        self.seen = ""
        self.mark = 0

    def read_until(self, text: str, timeout: float = 60) -> str:
        """Waits for text after what earlier calls matched; returns the output up to it."""
        deadline = time.monotonic() + timeout
        while text not in self.seen[self.mark :]:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {text!r} on the terminal; it shows:\n{self.seen}")
            if select.select([self.fd], [], [], left)[0]:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"bit-run ended before {text!r}:\n{self.seen}")
                self.seen += chunk.decode(errors="replace")
        self.mark = self.seen.index(text, self.mark) + len(text)
        return self.seen[: self.mark]

    def send(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def exit_code(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                while select.select([self.fd], [], [], 0.05)[0] and os.read(self.fd, 4096):
                    pass
            except OSError:
                pass
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
        os.kill(self.pid, signal.SIGKILL)
        raise AssertionError("bit-run did not exit")


@pytest.mark.parametrize("leave", ["/exit\r", "\x04", "\x03"], ids=["exit", "ctrl-d", "ctrl-c"])
def test_interactive_chat_on_a_terminal(model_path: Path, leave: str) -> None:
    term = Terminal("-m", str(model_path), "-cnv", "-n", "5", "--temp", "0", "-c", "128")
    term.read_until("> ")
    term.send("Hello there\r")
    term.read_until("Hello there")
    shown = term.read_until("> ", timeout=60)
    assert shown.count("> ") == 2
    time.sleep(0.2)  # a person's pause: a signal in the instant before readline waits is lost
    term.send(leave)
    assert term.exit_code() == 0
    assert "Traceback" not in term.seen


def test_ctrl_c_stops_a_reply_and_the_chat_goes_on(model_path: Path) -> None:
    term = Terminal(
        "-m", str(model_path), "--chat", "-n", "-1", "-c", "2048", "--temp", "1", "--seed", "1"
    )
    term.read_until("> ")
    term.send("Tell me a long story\r")
    term.read_until("Tell me a long story\r\n")
    time.sleep(0.3)
    term.send("\x03")
    term.read_until("reply interrupted")
    term.read_until("> ")
    term.send("And then?\r")
    term.read_until("And then?\r\n")
    time.sleep(0.1)
    term.send("\x03")  # early in the turn, maybe before the reply starts
    term.read_until("> ")
    time.sleep(0.2)
    term.send("\x04")
    assert term.exit_code() == 0
    assert "Traceback" not in term.seen


def test_bit_bench_reports_rates_and_memory(model_path: Path) -> None:
    result = subprocess.run(
        _command(
            "bench",
            "-m",
            str(model_path),
            "-p",
            "16",
            "-n",
            "4",
            "-t",
            "1,2",
            "-r",
            "2",
            "-o",
            "json",
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    tests = [(r["threads"], r["test"]) for r in report["results"]]
    assert tests == [(1, "pp16"), (1, "tg4"), (2, "pp16"), (2, "tg4")]
    for r in report["results"]:
        assert len(r["tokens_per_second"]) == 2 and r["mean"] > 0 and r["rss_mib"] > 0
    assert report["peak_rss_mib"] > 0


def test_bit_bench_parallel_sequences(model_path: Path) -> None:
    result = subprocess.run(
        _command(
            "bench",
            "-m",
            str(model_path),
            "-p",
            "0",
            "-n",
            "3",
            "-npl",
            "1,4",
            "-t",
            "2",
            "-r",
            "1",
            "-o",
            "json",
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    tests = [r["test"] for r in json.loads(result.stdout)["results"]]
    assert tests == ["tg3", "tg3 x1", "tg3 x4"]


def test_bit_bench_markdown_table(model_path: Path) -> None:
    result = subprocess.run(
        _command("bench", "-m", str(model_path), "-p", "8", "-n", "2", "-t", "1", "-r", "1"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("| model |") and "t/s" in lines[0]
    assert any("| pp8 |" in line for line in lines) and any("| tg2 |" in line for line in lines)
    assert "peak RSS" in result.stdout


def test_bit_bench_errors_are_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        _command("bench", "-m", str(tmp_path / "none.gguf")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    _one_line_error(result, 1, "not found")


# ---- llama-cli's spellings and habits -------------------------------------------------


def _greedy(model_path: Path, prompt: str, tokens: int = 10) -> str:
    with bitllm.Model(model_path, n_ctx=128) as m:
        return m.generate(prompt, max_tokens=tokens, temperature=0)  # type: ignore[return-value]


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_ngl_is_an_option_not_n_with_a_value(
    model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ("-m", str(model_path), "-p", "Hello", "-n", "3", "--temp", "0")
    code, out, err = _run(capsys, *base, "-ngl", "0", "--no-mmap", "--jinja")
    assert code == 0 and out == "Hello" + _greedy(model_path, "Hello", 3) + "\n", err
    from bitllm.runtime import cuda

    if not cuda.available():
        code, _, err = _run(capsys, *base, "-ngl", "99")
        assert code == 1 and "gl" not in err and len(err.strip().splitlines()) == 1, err
    code, _, err = _run(capsys, *base, "-ngl", "99", "--device", "cpu")
    assert code == 1 and "-ngl 99 means cuda" in err, err


@pytest.mark.parametrize("abbreviation", [("--thr", "1"), ("--repeat-pen", "1.0"), ("--sys", "x")])
def test_options_are_never_abbreviated(
    model_path: Path, capsys: pytest.CaptureFixture[str], abbreviation: tuple[str, str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["-m", str(model_path), "-p", "x", *abbreviation])
    assert exit_info.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


@pytest.mark.parametrize("module", ["cli", "bench"])
def test_version(module: str) -> None:
    result = subprocess.run(_command(module, "--version"), capture_output=True, text=True)
    assert result.returncode == 0
    assert (
        result.stdout.strip() == f"bit-{'run' if module == 'cli' else 'bench'} {bitllm.__version__}"
    )


def test_short_seed_and_reverse_prompt(
    model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sampled = ("-m", str(model_path), "-p", "Hi", "-n", "6", "--temp", "1.5", "--top-k", "0")
    assert _run(capsys, *sampled, "-s", "7")[1] == _run(capsys, *sampled, "--seed", "7")[1]
    expected = _greedy(model_path, "Once upon a time", 12)
    stop = expected[len(expected) // 2 :][:3]
    code, out, err = _run(
        capsys, "-m", str(model_path), "-p", "Once upon a time", "-n", "12", "--temp", "0",
        "-r", stop, "--no-display-prompt",
    )  # fmt: skip
    assert code == 0, err
    assert out == expected[: expected.index(stop)] + "\n"


def test_escapes_with_e() -> None:
    assert cli.unescape(r"a\nb\tc\\n\'\"\q") == "a\nb\tc\\n'\"\\q"


def test_e_turns_escapes_in_the_prompt_into_characters(
    model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ("-m", str(model_path), "-p", r"Hello\nworld", "-n", "4", "--temp", "0")
    code, out, _ = _run(capsys, *base, "-e")
    assert code == 0 and out == "Hello\nworld" + _greedy(model_path, "Hello\nworld", 4) + "\n"
    assert _run(capsys, *base)[1].startswith(r"Hello\nworld")


def test_prompt_file_loses_its_trailing_newline(
    model_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Dear diary,\n", encoding="utf-8")
    code, out, err = _run(
        capsys, "-m", str(model_path), "-f", str(prompt), "-n", "5", "--temp", "0"
    )
    assert code == 0, err
    assert out == "Dear diary," + _greedy(model_path, "Dear diary,", 5) + "\n"


def test_context_above_the_trained_one_warns_with_both_numbers(
    model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "-m", str(model_path), "-p", "Hi", "-n", "1", "-c", "512")
    assert code == 0
    warning = next(line for line in err.splitlines() if "warning" in line)
    assert "-c 512" in warning and "256" in warning


def test_errors_speak_of_c_not_of_n_ctx(
    model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "-m", str(model_path), "-p", "word " * 300, "-c", "32")
    assert code == 1 and "-c" in err and "n_ctx" not in err, err
    for size in ("-3", str(2**31)):
        code, _, err = _run(capsys, "-m", str(model_path), "-p", "x", "-c", size)
        assert code == 1 and "-c must be from 0" in err and size in err, err


def test_system_prompt_spellings_and_repeat_last_n(
    model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chat = ("-m", str(model_path), "-cnv", "-n", "3", "--temp", "0", "-p", "Hi")
    outputs = []
    for spelling in ("-sys", "--system-prompt", "--system"):
        with _stdin(""):
            code, out, err = _run(capsys, *chat, spelling, "Be brief.")
        assert code == 0, err
        outputs.append(out)
    assert outputs[0] == outputs[1] == outputs[2]
    for window in ("64", "32", "0", "-1"):
        code, _, err = _run(
            capsys,
            "-m",
            str(model_path),
            "-p",
            "x",
            "-n",
            "2",
            "--repeat-last-n",
            window,
            "--repeat-penalty",
            "1.3",
        )
        assert code == 0, err
    code, _, err = _run(capsys, "-m", str(model_path), "-p", "x", "--repeat-last-n", "-2")
    assert code == 1 and "--repeat-last-n must be >= 0" in err and "-2" in err


class _stdin:  # noqa: N801  (used as a context manager, like a function)
    """sys.stdin reading from text, for in-process chat."""

    def __init__(self, text: str) -> None:
        import io

        self.replacement = io.StringIO(text)

    def __enter__(self) -> None:
        self.saved, sys.stdin = sys.stdin, self.replacement

    def __exit__(self, *exc: object) -> None:
        sys.stdin = self.saved


def test_hostile_chat_template_ends_chat_in_one_line(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    nested = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    hostile = cached_model(tmp_path_factory.getbasetemp(), chat_template=nested)
    for args in (("-m", str(hostile)), ("-m", str(hostile), "--chat-template", nested)):
        started = time.monotonic()
        result = bit_run(*args, "-cnv", "-p", "Hi", "-n", "2", stdin="")
        _one_line_error(result, 1, "chat template did not finish")
        assert time.monotonic() - started < 60


def test_chat_template_option_replaces_the_models(
    model_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = "{{ raise_exception('from the option') }}"
    with _stdin(""):
        code, _, err = _run(
            capsys, "-m", str(model_path), "-cnv", "-p", "Hi", "--chat-template", template
        )
    assert code == 1 and "from the option" in err, err


def test_bit_bench_takes_ngl_and_never_abbreviates(model_path: Path) -> None:
    base = ("-m", str(model_path), "-p", "8", "-n", "0", "-r", "1", "-t", "1", "-o", "json")
    result = subprocess.run(_command("bench", *base, "-ngl", "0"), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["results"][0]["device"].startswith("cpu: ")
    result = subprocess.run(_command("bench", *base, "--rep", "2"), capture_output=True, text=True)
    assert result.returncode == 2 and "unrecognized" in result.stderr
