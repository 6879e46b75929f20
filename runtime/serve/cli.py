"""bit-serve: an OpenAI-compatible HTTP server for a bitllm GGUF model.

Flags use llama-server's spellings. The server binds to 127.0.0.1 unless --host says
otherwise, answers /health with 503 while the model loads, and on SIGTERM or Ctrl-C stops
accepting requests, lets running ones go on for --shutdown-grace seconds, cancels what is
left and exits 0. Errors before serving end the program with one line on stderr and
status 1 (2 for bad flags).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import NoReturn

PROG = "bit-serve"
SHUTDOWN_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def build_parser() -> argparse.ArgumentParser:
    from ..cli_options import ToolParser, add_cache_type_options

    p = ToolParser(PROG, "Serve a bitllm GGUF model over OpenAI's HTTP API.")
    p.add_argument("-m", "--model", required=True, help="GGUF model file")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default: 8080)")
    p.add_argument(
        "-np", "--parallel", type=int, default=4, help="requests generated at once (default: 4)"
    )
    p.add_argument(
        "-c",
        "--ctx-size",
        type=int,
        default=None,
        help="KV cache positions shared by all slots, as in llama-server: each slot gets "
        "ctx-size / parallel (default: the trained context, at most 4096)",
    )
    p.add_argument(
        "-t", "--threads", type=int, default=None, help="threads (default: physical cores)"
    )
    p.add_argument(
        "-b",
        "--batch-size",
        type=int,
        default=256,
        help="tokens evaluated per scheduler step at most: decode tokens first, then "
        "prompt chunks sized to keep running streams at their pace (default: 256)",
    )
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where the model runs")
    p.add_argument(
        "--chat-template",
        "--chat-template-file",
        dest="chat_template",
        metavar="FILE",
        help="a Jinja chat template file to use instead of the model's own",
    )
    add_cache_type_options(p)
    p.add_argument("--api-key", help="require this key (Authorization: Bearer KEY)")
    p.add_argument("--alias", help="the model's name in the API (default: the file name)")
    p.add_argument(
        "--max-queue",
        type=int,
        default=64,
        help="requests that may wait for a slot; more get 503 (default: 64)",
    )
    p.add_argument(
        "--shutdown-grace",
        type=float,
        default=3.0,
        help="seconds running requests may go on after SIGTERM (default: 3)",
    )
    p.add_argument("--verbose", action="store_true", help="log every HTTP request")
    return p


def _fail(message: str) -> NoReturn:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    sys.exit(1)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not Path(args.model).is_file():
        _fail(f"model file not found: {args.model}")
    if not 0 < args.port < 65536:
        _fail(f"--port must be in 1..65535, got {args.port}")
    template = None
    if args.chat_template is not None:
        try:
            template = Path(args.chat_template).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            _fail(f"cannot read the chat template {args.chat_template}: {e}")

    import uvicorn

    from .app import create_app
    from .engine import Engine, EngineSettings

    try:
        settings = EngineSettings(
            model_path=Path(args.model),
            parallel=args.parallel,
            n_ctx=args.ctx_size,
            threads=args.threads,
            device=args.device,
            chat_template=template,
            step_tokens=args.batch_size,
            max_queue=args.max_queue,
            alias=args.alias,
            cache_type_k=args.cache_type_k,
            cache_type_v=args.cache_type_v,
        )
    except ValueError as e:
        _fail(str(e))
    engine = Engine(settings)
    failures: list[str] = []

    class GracefulServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if not self.should_exit:
                engine.drain()
                timer = threading.Timer(args.shutdown_grace, engine.cancel_all)
                timer.daemon = True
                timer.start()
            super().handle_exit(sig, frame)

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            """uvicorn's own raises the signal again once it has shut down, which would end
            the process with that signal instead of status 0."""
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in SHUTDOWN_SIGNALS}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    def load_failed(message: str) -> None:
        failures.append(message)
        server.should_exit = True

    config = uvicorn.Config(
        create_app(engine, args.api_key, load_failed),
        host=args.host,
        port=args.port,
        log_level="info" if args.verbose else "warning",
        access_log=args.verbose,
        timeout_graceful_shutdown=int(args.shutdown_grace) + 2,
    )
    server = GracefulServer(config)
    print(f"{PROG}: serving {args.model} on http://{args.host}:{args.port}", file=sys.stderr)
    server.run()
    if failures:
        _fail(failures[0])
    if not server.started:
        return 1  # uvicorn has said why (e.g. the port is taken)
    return 0


if __name__ == "__main__":
    sys.exit(main())
