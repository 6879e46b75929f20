"""Quality and speed of every linear type x head type: the table behind the default head.

For each model (the tiny checkpoint of every fixture family, and with --big the
2B-4T-shaped checkpoint of scripts/make_bitnet_2b4t_checkpoint.py), converts it with
bit-convert to every --linear x --head combination, then measures against the bt2 + f32
reference (the ternary weights are exact in both bt2 and bt1, so that file is the model's
own logits): file size, bytes read per generated token, decode tokens/s, the mean KL
divergence of the token distributions and top-1 agreement, with bit-perplexity's method
(bitllm.runtime.perplexity) over a short real text.

Random weights give almost flat next-token distributions, which a trained model does not
have; so the table also gives the KLD after sharpening both models' distributions equally
(logits times one factor, chosen so that the reference's mean entropy is --entropy nats, a
trained model's typical value). BENCHMARKS.md ("Quality") explains how to read the two.

--amplification L1 L2 ... asks why the 2B-4T-shaped model's figures are so large: it builds
the bitnet-2b4t fixture with hidden 256 and each given number of layers, and compares
transformers' logits with the original embedding against transformers' logits with the
embedding (tied: also the head) replaced by its q8_0 rounding, and bitllm's f32 / q8_0 files
against those.

Decode speed is timed interleaved (every configuration once per round, --rounds rounds,
median), each a warm-up then --decode single-token evaluations from an empty cache.

    python scripts/quality_table.py --work /tmp/quality            # fixture families only
    python scripts/quality_table.py --work /tmp/quality --big      # and the 2B-4T shape
    python scripts/quality_table.py --work /tmp/quality --shape aligned --head f32 q8_0 q6_k \
        --cache-type f32 f16 q8_0   # hidden 256: k-quant heads; every KV cache type

The reference is bt2 + f32 head + f32 KV cache, the model's own logits; for the Bonsai
families (sign or trit x a scale per group of columns) f16 linear layers instead, which hold
those weights exactly. Combinations the converter refuses for a family are left out.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bitllm.convert.errors import ConvertError  # noqa: E402
from bitllm.runtime import perplexity as ppl  # noqa: E402
from bitllm.runtime.bench import decode_rates  # noqa: E402
from bitllm.runtime.gguf_reader import GGUFFile  # noqa: E402
from bitllm.runtime.model import Model, NativeModel  # noqa: E402
from tests.fixtures.checkpoints import (  # noqa: E402
    BONSAI_FAMILIES,
    FAMILIES,
    TINY,
    Shape,
    write_checkpoint,
)

REFERENCE = ("bt2", "f32", "f32")  # linear type, head type, KV cache type
# Bonsai's weights are sign or trit x an f16 scale per group of columns, which bt2 cannot hold
# and f16 holds exactly: f16 linear layers are those families' own logits.
GROUP_SCALED_REFERENCE = ("f16", "f32", "f32")
# hidden 256: rows that k-quant heads (256-weight blocks) can hold; 2 layers as TINY
SHAPES = {"tiny": TINY, "aligned": Shape(hidden=256, layers=2, heads=4, kv_heads=2, ffn=512)}
BIG = "bitnet-2b4t-shape"
SHARPENING_ROWS = 64
TRAINED_ENTROPY = 1.83  # nats: ln(6.23), Llama 3 8B's wikitext PPL in llama.cpp's scoreboard


@dataclass
class Row:
    model: str
    linear: str
    head: str
    cache: str
    file_mib: float
    mb_per_token: float
    decode_tps: float
    kld: float
    kld_uncertainty: float
    top1: float  # percent
    ppl_ratio: float
    kld_sharpened: float


def default_text() -> Path:
    """A license text that ships with transformers (real English, ~2,500 tokens)."""
    dist = importlib.metadata.distribution("transformers")
    for file in dist.files or []:
        if file.name.upper().startswith("LICENSE"):
            return Path(str(dist.locate_file(file)))
    raise SystemExit("no license text found in transformers; pass -f TEXT")


def checkpoint(model: str, work: Path, shape: str = "tiny") -> Path:
    folder = work / shape / model / "checkpoint"
    if (folder / "config.json").exists():
        return folder
    if model == BIG:
        script = REPO / "scripts" / "make_bitnet_2b4t_checkpoint.py"
        subprocess.run([sys.executable, str(script), str(folder)], check=True)
        return folder
    folder.mkdir(parents=True)
    tokenizers = work / "tokenizers"
    tokenizers.mkdir(exist_ok=True)
    return write_checkpoint(model, folder, tokenizers, SHAPES[shape], 0)


def converted(model: str, linear: str, head: str, work: Path, shape: str) -> Path:
    from bitllm.convert import build_plan, write_gguf

    out = checkpoint(model, work, shape).parent / f"{linear}-{head}.gguf"
    if not out.exists():
        plan = build_plan(checkpoint(model, work, shape), linear, head, None)
        try:
            write_gguf(plan, out)
        finally:
            plan.checkpoint.close()
    return out


def bytes_per_token(path: Path) -> int:
    """Weight bytes one decode step reads: every tensor, but of a separate token embedding
    only one row (a tied embedding is the output head, read whole)."""
    with GGUFFile(path) as f:
        tensors = f.tensors
        total = sum(t.nbytes or 0 for t in tensors.values())
        embedding = tensors.get("token_embd.weight")
        if embedding is not None and "output.weight" in tensors:
            total -= (embedding.nbytes or 0) - (embedding.nbytes or 0) // embedding.shape[-1]
    return total


def log_probs(path: Path, cache: str, text: str, args: argparse.Namespace) -> list[np.ndarray]:
    with Model(path, threads=args.threads, cache_type_k=cache, cache_type_v=cache) as model:
        tokens = model.tokenize(text, add_special=True)
        chunks = ppl.split_chunks(tokens, args.ctx, args.chunks)
        tok = model.tokenizer
        bos = tok.bos_id if tok.add_bos else None
        context = model.new_context(args.ctx)
        rows = list(ppl.iter_log_probs(context, chunks, bos, args.batch))
        return [np.stack(rows), chunks]  # type: ignore[list-item]


def mean_entropy(log_probs: np.ndarray, k: float = 1.0) -> float:
    """Mean entropy in nats of the rows' distributions with their logits times k."""
    lp = ppl.log_softmax(log_probs.reshape(-1, log_probs.shape[-1]) * np.float32(k))
    return float(-(np.exp(lp.astype(np.float64)) * lp).sum(axis=1).mean())


def sharpening(reference: np.ndarray, entropy: float) -> float:
    """The logit factor (> 1 sharpens, < 1 flattens) that gives the reference rows a mean
    entropy of `entropy` nats, found on the first SHARPENING_ROWS rows."""
    sample = reference.reshape(-1, reference.shape[-1])[:SHARPENING_ROWS]
    low, high = 1.0, 1.0  # entropy falls as k grows: bracket the target, then bisect
    while mean_entropy(sample, high) > entropy:
        high *= 2
    while mean_entropy(sample, low) < entropy:
        low /= 2
    for _ in range(20):
        mid = (low + high) / 2
        low, high = (mid, high) if mean_entropy(sample, mid) > entropy else (low, mid)
    return (low + high) / 2


def compare_all(reference: np.ndarray, other: np.ndarray, chunks: np.ndarray, k: float) -> tuple:
    """(summary, sharpened summary) of other against reference, over every chunk."""
    plain, sharp = [], []
    for base, rows, chunk in zip(reference, other, chunks, strict=True):
        targets = ppl.targets(chunk)
        plain.append(ppl.compare(base, rows, targets))
        k32 = np.float32(k)
        sharp.append(ppl.compare(ppl.log_softmax(base * k32), ppl.log_softmax(rows * k32), targets))
    return ppl.summarize(ppl.concat(plain)), ppl.summarize(ppl.concat(sharp))


def decode_speeds(runs: list[tuple[Path, str]], args: argparse.Namespace) -> list[float]:
    """Median decode tokens/s of each (file, KV cache type), timed round-robin."""
    tokens = [int(t) for t in np.random.default_rng(0).integers(100, 30000, args.decode)]
    rates: list[list[float]] = [[] for _ in runs]
    for _ in range(args.rounds):
        for i, (path, cache) in enumerate(runs):
            with NativeModel(path, threads=args.threads) as model:
                context = model.new_context(args.decode + 1, cache, cache)
                rates[i] += decode_rates(context, tokens, 1)
    return [statistics.median(r) for r in rates]


def reference_config(model: str) -> tuple[str, str, str]:
    return GROUP_SCALED_REFERENCE if model in BONSAI_FAMILIES else REFERENCE


def convertible(
    model: str, configs: list[tuple[str, str, str]], args: argparse.Namespace
) -> dict[tuple[str, str, str], Path]:
    """Each configuration's file; one the converter refuses for this family (bt2 for a
    group-scaled Bonsai, q1_0 for trits, ...) is left out with its one-line reason."""
    paths = {}
    for config in configs:
        try:
            paths[config] = converted(model, *config[:2], args.work, args.shape)
        except ConvertError as e:
            print(f"{model}: {config[0]} + {config[1]} head left out: {e}", file=sys.stderr)
    return paths


def measure(model: str, text: str, args: argparse.Namespace) -> list[Row]:
    reference_key = reference_config(model)
    wanted = [
        (linear, head, cache)
        for linear in args.linear
        for head in args.head
        for cache in args.cache_type
    ]
    paths = convertible(model, [reference_key, *wanted], args)
    if reference_key not in paths:
        raise SystemExit(f"{model}: its reference ({' + '.join(reference_key)}) does not convert")
    configs = [c for c in wanted if c in paths]
    reference, chunks = log_probs(paths[reference_key], reference_key[2], text, args)
    k = sharpening(reference, args.entropy)
    own = mean_entropy(reference[:1])
    print(
        f"{model}: reference entropy {own:.3f} nats (first chunk); logits x {k:.3f} give "
        f"{args.entropy}",
        file=sys.stderr,
    )
    runs = [(paths[c], c[2]) for c in configs]
    speeds = dict(zip(configs, decode_speeds(runs, args), strict=True))
    rows = []
    for config in configs:
        path = paths[config]
        other = reference if config == reference_key else log_probs(path, config[2], text, args)[0]
        plain, sharp = compare_all(reference, other, chunks, k)
        rows.append(
            Row(
                model=model,
                linear=config[0],
                head=config[1],
                cache=config[2],
                file_mib=path.stat().st_size / 2**20,
                mb_per_token=bytes_per_token(path) / 1e6,
                decode_tps=speeds[config],
                kld=plain.kld[0],
                kld_uncertainty=plain.kld[1],
                top1=100 * plain.same_top[0],
                ppl_ratio=plain.ratio[0],
                kld_sharpened=sharp.kld[0],
            )
        )
        print(markdown(rows[-1]), flush=True)
    return rows


def amplification(layers: int, work: Path) -> str:
    """How far a q8_0 embedding moves a random model of `layers` layers, in transformers."""
    import torch
    from transformers import AutoModelForCausalLM

    from tests.fixtures.checkpoints import Shape

    folder = work / f"amplification-{layers}" / "checkpoint"
    if not (folder / "config.json").exists():
        folder.mkdir(parents=True)
        shape = Shape(hidden=256, layers=layers, heads=4, kv_heads=2, ffn=512)
        write_checkpoint("bitnet-2b4t", folder, work / "tokenizers", shape, 0)
    tokens = [128000, 791, 3363, 315, 9822, 374, 12366, 13]
    ours = {}
    for head in ("f32", "q8_0"):
        out = folder.parent / f"bt2-{head}.gguf"
        if not out.exists():
            from bitllm.convert import build_plan, write_gguf

            plan = build_plan(folder, "bt2", head, None)
            write_gguf(plan, out)
            plan.checkpoint.close()
        with NativeModel(out, threads=2) as model:
            ours[head] = model.new_context(len(tokens)).eval(tokens, 0, all_logits=True)
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    for tensor in list(model.parameters()) + list(model.buffers()):
        if tensor.dtype == torch.bfloat16:
            tensor.data = tensor.data.float()

    def logits() -> np.ndarray:
        with torch.no_grad():
            return model(torch.tensor([tokens])).logits[0].numpy()

    exact = logits()
    weight = model.model.embed_tokens.weight.data
    blocks = weight.reshape(-1, 32)  # q8_0: 32 values, an f16 scale absmax / 127
    scale = (blocks.abs().max(1, keepdim=True).values / 127).half().float()
    quants = torch.round(blocks / torch.where(scale == 0, 1.0, scale)).clamp(-127, 127)
    model.model.embed_tokens.weight.data = (quants * scale).reshape(weight.shape)
    rounded = logits()

    def agree(a: np.ndarray, b: np.ndarray) -> str:
        relative = np.abs(a - b).max() / np.abs(b).max()
        return f"top-1 {100 * np.mean(a.argmax(1) == b.argmax(1)):.0f}%, max diff {relative:.3f}"

    return (
        f"| {layers} | {agree(rounded, exact)} | {agree(ours['f32'], exact)} "
        f"| {agree(ours['q8_0'], rounded)} |"
    )


HEADER = (
    "| model | linear | head | KV cache | file | MB read/token | decode t/s | KLD | top-1 "
    "| PPL ratio | KLD sharpened |\n"
    "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
)


def markdown(r: Row) -> str:
    return (
        f"| {r.model} | {r.linear} | {r.head} | {r.cache} | {r.file_mib:.1f} MiB "
        f"| {r.mb_per_token:.2f} | {r.decode_tps:.1f} | {r.kld:.6f} ± {r.kld_uncertainty:.6f} "
        f"| {r.top1:.1f}% | {r.ppl_ratio:.5f} | {r.kld_sharpened:.5f} |"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, required=True, help="checkpoints and GGUFs go here")
    p.add_argument("-f", "--text", type=Path, default=None, help="text (default: a license)")
    p.add_argument(
        "--families",
        nargs="*",
        default=list(FAMILIES),
        choices=[*FAMILIES, *BONSAI_FAMILIES],
        help="fixture families (default: all but Bonsai's, which need --linear q1_0 ...)",
    )
    p.add_argument("--big", action="store_true", help="also the 2B-4T-shaped model")
    p.add_argument("--linear", nargs="+", default=["bt2", "bt1"])
    p.add_argument("--head", nargs="+", default=["f32", "f16", "q8_0", "q4_0"])
    p.add_argument("-c", "--ctx", type=int, default=128, help="tokens per chunk")
    p.add_argument("--chunks", type=int, default=4)
    p.add_argument("-b", "--batch", type=int, default=128)
    p.add_argument("-t", "--threads", type=int, default=2)
    p.add_argument("--cache-type", nargs="+", default=["f32"], help="KV cache types")
    p.add_argument("--shape", choices=sorted(SHAPES), default="tiny", help="fixture shape")
    p.add_argument("--entropy", type=float, default=TRAINED_ENTROPY)
    p.add_argument("--decode", type=int, default=32, help="tokens per decode timing")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", type=Path, default=None, help="also write the rows here")
    p.add_argument("--amplification", type=int, nargs="+", default=None, metavar="LAYERS")
    args = p.parse_args()
    if args.amplification:
        (args.work / "tokenizers").mkdir(parents=True, exist_ok=True)
        print(
            "| layers | transformers: q8_0 embedding vs exact | bitllm f32 vs transformers "
            "| bitllm q8_0 vs transformers with q8_0 embedding |\n|---:|---|---|---|"
        )
        for layers in args.amplification:
            print(amplification(layers, args.work), flush=True)
        return
    text = (args.text or default_text()).read_text(encoding="utf-8")
    print(HEADER, flush=True)
    rows: list[Row] = []
    for model in args.families + ([BIG] if args.big else []):
        rows += measure(model, text, args)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=1))


if __name__ == "__main__":
    main()
