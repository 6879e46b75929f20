"""Serving benchmark: bit-serve against llama-cpp-python's server, same weights, same run.

For 1, 2, 4, 8 and 16 concurrent clients, each streaming a 128-token completion of its own
prompt: aggregate generated tokens/s (all tokens over the wall time from the first request
to the last token), time to first token and inter-token latency (p50, p99 over all
clients' tokens). The two servers take turns at each client count (A B A B ...). Then,
for bit-serve alone, 4 running streams while a 2000-token prompt arrives: their p99
inter-token latency against their median (the issue's target: <= 3x).

  python scripts/make_bitnet_2b4t_checkpoint.py /tmp/bitnet-2b4t/checkpoint
  bit-convert /tmp/bitnet-2b4t/checkpoint -o /tmp/bitnet-2b4t/bt2.gguf
  python scripts/bench_serve.py /tmp/bitnet-2b4t/bt2.gguf THEIRS.gguf --threads 2

THEIRS: the same shapes as TQ2_0 for llama.cpp, made as for scripts/bench_vs_llama_cpp.py
(BENCHMARKS.md, "AVX2 on Zen 4", says how); `--rename-arch bitnet` renames a file of bitllm's
`bitnet-b1.58` graph to llama.cpp's name for it, as that script does. --no-llama-cpp runs
bit-serve alone; --also NAME=PYTHON adds the bit-serve of another checkout (its venv's
python), e.g. to compare two schedulers in the same run.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_vs_llama_cpp import rename_arch, tokens  # noqa: E402

LLAMA3_END_TOKENS = (128001, 128009)  # <|end_of_text|>, <|eot_id|>: kept out of the run
START_SECONDS = 180


@dataclass
class Stream:
    """One client's streamed completion: when it was sent and when each token came."""

    sent: float = 0.0
    arrivals: list[float] = field(default_factory=list)

    @property
    def ttft(self) -> float:
        return self.arrivals[0] - self.sent

    @property
    def gaps(self) -> list[float]:
        return list(np.diff(self.arrivals))


class ServerDidNotStart(RuntimeError):
    pass


class Server:
    def __init__(self, name: str, command: list[str], port: int, extra: dict) -> None:
        self.name, self.port, self.extra = name, port, extra
        self.url = f"http://127.0.0.1:{port}"
        self.log = open(f"/tmp/bench_serve_{name.replace(' ', '_')}.log", "w")  # noqa: SIM115
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerDidNotStart(f"{name} exited; see {self.log.name}")
            try:
                if httpx.get(self.url + "/v1/models", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise ServerDidNotStart(f"{name} did not start in {START_SECONDS} s")

    def stream(self, prompt: str | list[int], max_tokens: int, out: Stream) -> None:
        body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0, "stream": True}
        body.update(self.extra)
        out.sent = time.perf_counter()
        with httpx.stream("POST", self.url + "/v1/completions", json=body, timeout=None) as r:
            r.raise_for_status()
            for line in r.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                choices = json.loads(line[6:]).get("choices") or [{}]
                if choices[0].get("text"):
                    out.arrivals.append(time.perf_counter())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        self.log.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prompt_for(client: int) -> str:
    return f"Client {client} asks: please write a long story about the river and the mill."


def run_clients(server: Server, clients: int, max_tokens: int) -> dict[str, float]:
    streams = [Stream() for _ in range(clients)]
    threads = [
        threading.Thread(target=server.stream, args=(prompt_for(i), max_tokens, streams[i]))
        for i in range(clients)
    ]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ended = max(s.arrivals[-1] for s in streams)
    gaps = [g for s in streams for g in s.gaps]
    ttfts = [s.ttft for s in streams]
    return {
        "tokens": sum(len(s.arrivals) for s in streams),
        "rate": sum(len(s.arrivals) for s in streams) / (ended - started),
        "ttft50": float(np.percentile(ttfts, 50)),
        "ttft99": float(np.percentile(ttfts, 99)),
        "itl50": float(np.percentile(gaps, 50)),
        "itl99": float(np.percentile(gaps, 99)),
    }


def long_prompt_arrives(
    server: Server, streams: int, max_tokens: int, prompt_tokens: int
) -> dict[str, float]:
    """`streams` clients generating; one second in, a prompt of about prompt_tokens
    arrives. The running streams' inter-token latencies over the whole run."""
    running = [Stream() for _ in range(streams)]
    threads = [
        threading.Thread(target=server.stream, args=(prompt_for(i), max_tokens, running[i]))
        for i in range(streams)
    ]
    for t in threads:
        t.start()
    time.sleep(1.0)
    late = Stream()
    server.stream(tokens(prompt_tokens), 8, late)
    for t in threads:
        t.join()
    gaps = [g for s in running for g in s.gaps]
    itl50, itl99 = float(np.percentile(gaps, 50)), float(np.percentile(gaps, 99))
    return {"itl50": itl50, "itl99": itl99, "ratio": itl99 / itl50, "late_ttft": late.ttft}


def start_bit_serve(
    model: Path, threads: int, parallel: int, slot_ctx: int, name: str, python: str
) -> Server:
    port = free_port()
    command = [python, "-m", "bitllm.runtime.serve.cli", "-m", str(model)]
    command += ["--port", str(port), "-t", str(threads), "-np", str(parallel)]
    command += ["-c", str(parallel * slot_ctx)]
    return Server(name, command, port, {"ignore_eos": True})


def start_llama_cpp(model: Path, threads: int, n_ctx: int) -> Server:
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model)]
    command += ["--port", str(port), "--host", "127.0.0.1", "--n_ctx", str(n_ctx)]
    command += ["--n_threads", str(threads), "--n_threads_batch", str(threads)]
    bias = {str(t): -100 for t in LLAMA3_END_TOKENS}
    return Server("llama-cpp-python server", command, port, {"logit_bias": bias})


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("ours", type=Path, help="bitllm GGUF (bt2)")
    p.add_argument("theirs", type=Path, nargs="?", help="the same weights as TQ2_0")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--long-prompt", type=int, default=2000)
    p.add_argument("--no-llama-cpp", action="store_true")
    p.add_argument("--rename-arch", default=None, help="see bench_vs_llama_cpp.py")
    p.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="NAME=PYTHON",
        help="also run the bit-serve that PYTHON imports (another checkout's venv), as NAME",
    )
    args = p.parse_args()
    slot_ctx = args.long_prompt + 256
    clients = max(args.clients)
    servers = [
        start_bit_serve(args.ours, args.threads, clients, slot_ctx, "bit-serve", sys.executable)
    ]
    for name, python in (entry.split("=", 1) for entry in args.also):
        servers.append(start_bit_serve(args.ours, args.threads, clients, slot_ctx, name, python))
    if not args.no_llama_cpp:
        theirs = rename_arch(args.theirs, args.rename_arch) if args.rename_arch else args.theirs
        servers.append(start_llama_cpp(theirs, args.threads, slot_ctx))
    try:
        for server in servers:
            run_clients(server, 1, 8)  # warm-up: page in the weights
        print("| server | clients | aggregate t/s | TTFT p50 / p99 ms | ITL p50 / p99 ms |")
        print("|---|---:|---:|---:|---:|")
        single: dict[str, float] = {}
        for clients in args.clients:
            for server in servers:
                r = run_clients(server, clients, args.tokens)
                single.setdefault(server.name, r["rate"])
                print(
                    f"| {server.name} | {clients} | {r['rate']:.1f} "
                    f"({r['rate'] / single[server.name]:.2f}x) | "
                    f"{ms(r['ttft50'])} / {ms(r['ttft99'])} | "
                    f"{ms(r['itl50'])} / {ms(r['itl99'])} |",
                    flush=True,
                )
        for server in servers:
            if server.name.startswith("llama-cpp"):
                continue  # it serves one request at a time: the streams would just wait
            r = long_prompt_arrives(server, 4, args.tokens, args.long_prompt)
            print(
                f"\n{server.name}, 4 streams while a {args.long_prompt}-token prompt arrives: "
                f"ITL p50 {ms(r['itl50'])} ms, p99 {ms(r['itl99'])} ms ({r['ratio']:.2f}x the "
                f"median); the long prompt's first token after {r['late_ttft']:.1f} s",
                flush=True,
            )
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    try:
        main()
    except ServerDidNotStart as e:  # its log says why
        sys.exit(f"bench_serve: {e}")
