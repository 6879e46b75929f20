"""Rendering untrusted chat templates under a time, memory and output budget.

A GGUF's chat template is Jinja written by whoever made the file. jinja2's immutable
sandbox stops escapes, but not `{% for i in range(100000) %}{% for j in range(100000) %}`
or a list doubled through a namespace until memory runs out, and no hook inside one Python
process can interrupt every such loop or bound every filter's allocation. So templates
render in a helper process: this file run as a script (it imports nothing of bitllm, only
jinja2), with its address space limited, its CPU time limited, and a wall-clock deadline
enforced by the caller, who kills it when the deadline passes and starts a fresh one on
the next render. The helper is started once and reused, so a normal render costs a pipe
round trip. Output is consumed with generate() and stops past MAX_RENDERED_CHARS.
"""

from __future__ import annotations

import json
import operator
import os
import resource
import select
import subprocess
import sys
import threading
import time
from datetime import datetime
from typing import Any

MAX_RENDERED_CHARS = 1 << 22  # a rendered prompt this long is surely a runaway template
RENDER_SECONDS = 2.0  # wall-clock budget of one render, after the helper is up
START_SECONDS = 30.0  # starting the helper (Python and jinja2) on a busy machine
MEMORY_BYTES = 1 << 29  # the helper's address space: Python, jinja2 and the template's values
CPU_SECONDS = 600  # the helper's CPU time over its life: a backstop if the caller is gone
_MAX_INT_BITS = 4096  # no chat template needs bigger integers
READY = "ready\n"  # the helper's first line, once jinja2 is imported and the limits are set


class TemplateFailure(Exception):
    """A template that does not compile, fails, or runs out of its budget; the message says
    which, in one line."""


# ---- the helper's side -------------------------------------------------------------


def _sandbox() -> Any:
    """jinja2's immutable sandbox, plus limits on `*` and `**` so that a template cannot
    build `'x' * 10**12` or square huge integers in one step."""
    import jinja2
    from jinja2.exceptions import SecurityError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def is_int(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    def check_int_bits(bits: int) -> None:
        if bits > _MAX_INT_BITS:
            raise SecurityError("a chat template tried to build an oversized number")

    class Sandbox(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset(["*", "**"])

        def call_binop(self, context: Any, operator_name: str, left: Any, right: Any) -> Any:
            if operator_name == "**":
                if is_int(left) and is_int(right) and right > 0:
                    check_int_bits(max(left.bit_length(), 1) * right)
                return operator.pow(left, right)
            if is_int(left) and is_int(right):
                check_int_bits(left.bit_length() + right.bit_length())
            sequence, count = (left, right) if is_int(right) else (right, left)
            if isinstance(sequence, str | list | tuple) and is_int(count):
                if len(sequence) * count > MAX_RENDERED_CHARS:
                    raise SecurityError("a chat template tried to build an oversized value")
            return operator.mul(left, right)

    def raise_exception(message: str) -> None:
        raise TemplateFailure(f"refused the conversation: {message}")

    env = Sandbox(
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.loopcontrols"],
        undefined=jinja2.Undefined,
    )
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


def _render(env: Any, compiled: dict[str, Any], source: str, variables: dict[str, Any]) -> str:
    import jinja2

    if source not in compiled:
        try:
            compiled.clear()  # one model's template at a time
            compiled[source] = env.from_string(source)
        except jinja2.TemplateError as e:
            raise TemplateFailure(f"does not compile: {e}") from None
    parts: list[str] = []
    length = 0
    try:
        for part in compiled[source].generate(**variables):
            length += len(part)
            if length > MAX_RENDERED_CHARS:
                raise TemplateFailure(f"produced over {MAX_RENDERED_CHARS} characters")
            parts.append(part)
    except TemplateFailure:
        raise
    except MemoryError:
        raise TemplateFailure(f"used over {MEMORY_BYTES >> 20} MiB of memory") from None
    except RecursionError:
        raise TemplateFailure("recursed too deeply") from None
    except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError, LookupError) as e:
        raise TemplateFailure(f"failed: {e}") from None
    return "".join(parts)


def serve() -> None:
    """The helper: one JSON request per line on stdin, one JSON answer per line on stdout."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    env = _sandbox()
    compiled: dict[str, Any] = {}
    sys.stdout.write(READY)
    sys.stdout.flush()
    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer = {"text": _render(env, compiled, request["template"], request["variables"])}
        except TemplateFailure as e:
            answer = {"error": " ".join(str(e).split())}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


# ---- the caller's side -------------------------------------------------------------


class _Helper:
    """The helper process, started on first use and after each kill."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()  # one render at a time per process

    def render(self, source: str, variables: dict[str, Any]) -> str:
        request = (json.dumps({"template": source, "variables": variables}) + "\n").encode()
        with self._lock:
            process = self._process or self._start()
            assert process.stdin is not None
            budget = RENDER_SECONDS
            try:
                process.stdin.write(request)
                process.stdin.flush()
                line = self._read_line(process, time.monotonic() + budget)
            except BrokenPipeError:
                line = None
            if line is None:
                why = self._why_stopped(process, budget)
                self._kill()
                raise TemplateFailure(why)
        answer = json.loads(line)
        if "error" in answer:
            raise TemplateFailure(answer["error"])
        return str(answer["text"])

    def _start(self) -> subprocess.Popen[bytes]:
        """A new helper, once it is ready (its start-up is not part of a render's budget)."""
        process = subprocess.Popen(
            [sys.executable, "-I", os.path.abspath(__file__)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        if self._read_line(process, time.monotonic() + START_SECONDS) != READY.encode():
            process.kill()
            process.wait()
            raise TemplateFailure(
                f"could not be rendered: the renderer did not start ({sys.executable})"
            )
        self._process = process
        return process

    @staticmethod
    def _read_line(process: subprocess.Popen[bytes], deadline: float) -> bytes | None:
        """The helper's next answer line, or None if it died or the deadline passed."""
        assert process.stdout is not None
        fd = process.stdout.fileno()
        chunks: list[bytes] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return None
            chunks.append(chunk)
            if chunk.endswith(b"\n"):
                return b"".join(chunks)

    def _kill(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()

    @staticmethod
    def _why_stopped(process: subprocess.Popen[bytes], budget: float) -> str:
        if process.poll() is None:
            return f"did not finish within {budget:g} s"
        return f"stopped its renderer (exit status {process.returncode}: out of memory?)"

    def close(self) -> None:
        with self._lock:
            self._kill()


_HELPER = _Helper()


def render_untrusted(source: str, variables: dict[str, Any]) -> str:
    """source rendered with variables (JSON values) in the sandboxed helper; raises
    TemplateFailure with a one-line reason."""
    return _HELPER.render(source, variables)


def stop_renderer() -> None:
    """Ends the helper process (the next render starts a new one)."""
    _HELPER.close()


if __name__ == "__main__":
    serve()
