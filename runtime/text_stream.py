"""Generated tokens in, the text a user may see out.

Shared by bitllm.Model's streaming and bit-serve's scheduler, so that both cut text the
same way: whole characters only (a character split across tokens waits for its last
byte), special tokens dropped, and nothing at or after the first stop string.
"""

from __future__ import annotations

from collections.abc import Sequence

from .sampling import StopStrings
from .tokenizer import Tokenizer


class TextStream:
    """feed() each generated token, then finish() once generation has ended."""

    def __init__(self, tokenizer: Tokenizer, stop: str | Sequence[str] | None) -> None:
        self._decoder = tokenizer.decoder(skip_special=True)
        self._stops = StopStrings(stop)

    @property
    def stopped(self) -> bool:
        """Whether a stop string has appeared: what follows must not be generated."""
        return self._stops.stopped

    def feed(self, token: int) -> str:
        """The text that is safe to show after this token (often "")."""
        return self._stops.feed(self._decoder.feed(token))

    def finish(self) -> str:
        """The text held back at the end (an incomplete character, a partial stop string)."""
        return self._stops.feed(self._decoder.flush()) + self._stops.finish()
