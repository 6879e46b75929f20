"""Running bit-serve as a real process on 127.0.0.1 for the tests."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from tests.runtime.tiny_model import Shape, write_model

START_SECONDS = 60  # the model loads in about a second; the machine may be busy
# A model slow enough (a few ms per token on one thread) that a test can act while a
# stream is still running: disconnect it, queue behind it, SIGTERM the server.
SLOW_SHAPE = Shape(n_layer=4, n_embd=256, n_head=4, n_head_kv=2, n_ff=512, n_ctx_train=2048)


def slow_model(folder: Path) -> Path:
    path = folder / "slow-bitnet.gguf"
    if not path.exists():
        write_model(path, shape=SLOW_SHAPE, seed=3)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """bit-serve -m model --port <free> flags..., started and waited for."""

    def __init__(self, model: Path, *flags: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile(mode="w+")
        command = [sys.executable, "-m", "bitllm.runtime.serve.cli", "-m", str(model)]
        command += ["--port", str(self.port), *flags]
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                status = self.process.returncode
                raise RuntimeError(f"bit-serve exited with {status}: {self.output()}")
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"bit-serve did not become healthy: {self.output()}")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def terminate(self, timeout: float = 20) -> int:
        """SIGTERM, then the exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()
