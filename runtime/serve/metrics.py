"""The server's counters, and their Prometheus text form for GET /metrics.

The scheduler thread writes them and the event loop reads them, so every access takes
the lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

PREFIX = "bitllm_"


@dataclass
class Metrics:
    requests: dict[str, int] = field(default_factory=dict)  # finish reason -> requests
    rejected: int = 0  # refused because the queue was full
    prompt_tokens: int = 0
    prompt_tokens_evaluated: int = 0  # the rest came from a slot's KV cache
    generated_tokens: int = 0
    busy_seconds: float = 0.0  # time the scheduler spent in steps
    queued: int = 0
    processing: int = 0
    slots: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def finished(self, reason: str, prompt_tokens: int, evaluated: int) -> None:
        with self._lock:
            self.requests[reason] = self.requests.get(reason, 0) + 1
            self.prompt_tokens += prompt_tokens
            self.prompt_tokens_evaluated += evaluated

    def stepped(self, seconds: float, generated: int, queued: int, processing: int) -> None:
        with self._lock:
            self.busy_seconds += seconds
            self.generated_tokens += generated
            self.queued, self.processing = queued, processing

    def reject(self) -> None:
        with self._lock:
            self.rejected += 1

    def set_queue(self, queued: int) -> None:
        with self._lock:
            self.queued = queued

    def render(self) -> str:
        """Prometheus text exposition format 0.0.4."""
        with self._lock:
            rate = self.generated_tokens / self.busy_seconds if self.busy_seconds else 0.0
            lines: list[str] = []
            _family(lines, "requests_total", "counter", "finished requests by finish reason")
            for reason, count in sorted(self.requests.items()):
                lines.append(f'{PREFIX}requests_total{{finish_reason="{reason}"}} {count}')
            rows = (
                ("requests_rejected_total", "counter", "refused: queue full", self.rejected),
                ("prompt_tokens_total", "counter", "prompt tokens of finished requests",
                 self.prompt_tokens),
                ("prompt_tokens_evaluated_total", "counter",
                 "prompt tokens evaluated (the others were reused from a slot's cache)",
                 self.prompt_tokens_evaluated),
                ("generated_tokens_total", "counter", "tokens generated", self.generated_tokens),
                ("busy_seconds_total", "counter", "seconds the scheduler spent working",
                 round(self.busy_seconds, 6)),
                ("generated_tokens_per_second", "gauge",
                 "generated tokens per busy second, since start", round(rate, 3)),
                ("requests_queued", "gauge", "requests waiting for a slot", self.queued),
                ("requests_processing", "gauge", "requests in a slot", self.processing),
                ("slots", "gauge", "parallel sequences (--parallel)", self.slots),
            )  # fmt: skip
        for name, kind, help_text, value in rows:
            _family(lines, name, kind, help_text)
            lines.append(f"{PREFIX}{name} {value}")
        return "\n".join(lines) + "\n"


def _family(lines: list[str], name: str, kind: str, help_text: str) -> None:
    lines.append(f"# HELP {PREFIX}{name} {help_text}")
    lines.append(f"# TYPE {PREFIX}{name} {kind}")
