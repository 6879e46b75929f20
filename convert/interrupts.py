"""SIGTERM and SIGHUP end a conversion the way Ctrl-C does.

`timeout`, `docker stop`, CI cancels and a closed terminal send these; raised as
KeyboardInterrupt they unwind through the writer's cleanup, so no partial file stays.
SIGKILL cannot be caught: remove_stale_partials (writer.py) covers it on the next run.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

HANDLED = (signal.SIGTERM, signal.SIGHUP)


class Terminated(KeyboardInterrupt):
    """The process was asked to stop by a signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signum)


@contextmanager
def signals_interrupt() -> Iterator[None]:
    """Within the block, HANDLED signals raise Terminated; the old handlers come back after."""
    previous = {signum: signal.signal(signum, _raise) for signum in HANDLED}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
