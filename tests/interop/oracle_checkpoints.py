"""Tiny float checkpoints that llama.cpp's converter reads: a LlamaForCausalLM and a
Qwen3ForCausalLM (the graph of PrismML's Bonsai: per-head q/k RMSNorm, tied head), made by
transformers itself with the LLaMA SentencePiece tokenizer of ../shared/vocab.

Rows are 256 wide so every llama.cpp type fits them (k-quants and TQ types need multiples of
256). Weights are scaled so the logits spread over several units (the greedy token is then
well separated) and norms are random, so a dropped or swapped norm shows in the logits.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.fixtures.tokenizers import cached_tokenizer

ARCHES = ("llama", "qwen3")
VOCAB = 32000
WEIGHT_STD = 0.06
HEAD_STD = 0.2  # logits std about HEAD_STD * sqrt(hidden) = 3.2
SHAPE = {
    "hidden_size": 256,
    "intermediate_size": 512,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": VOCAB,
    "max_position_embeddings": 512,
    "rms_norm_eps": 1e-6,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "initializer_range": WEIGHT_STD,
}


def _model(arch: str):  # noqa: ANN202
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen3Config, Qwen3ForCausalLM

    if arch == "llama":
        return LlamaForCausalLM(LlamaConfig(**SHAPE, tie_word_embeddings=False))
    if arch == "qwen3":
        # head_dim 128, not 256 / 4: as in Qwen3-4B (2560 wide, 32 heads of 128), the heads
        # are wider than hidden / heads, and q_dim 512 stays a multiple of 256
        return Qwen3ForCausalLM(Qwen3Config(**SHAPE, head_dim=128, tie_word_embeddings=True))
    raise ValueError(f"unknown oracle architecture {arch!r} (one of {', '.join(ARCHES)})")


def _randomize(model, seed: int) -> None:  # noqa: ANN001
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.named_parameters():
            if name.endswith("norm.weight"):
                tensor.copy_(1 + 0.25 * torch.randn(tensor.shape, generator=generator))
            elif name in ("lm_head.weight", "model.embed_tokens.weight"):
                tensor.copy_(HEAD_STD * torch.randn(tensor.shape, generator=generator))
            else:
                tensor.copy_(WEIGHT_STD * torch.randn(tensor.shape, generator=generator))


def write_oracle_checkpoint(arch: str, folder: Path, tokenizer_cache: Path, seed: int = 0) -> Path:
    """A tiny `arch` checkpoint (config.json, float32 safetensors, SPM tokenizer) in `folder`."""
    import torch

    torch.manual_seed(seed)
    model = _model(arch)
    _randomize(model, seed)
    model.save_pretrained(str(folder))
    tokenizer = cached_tokenizer(tokenizer_cache, "llama-spm")
    for name in ("tokenizer.model", "tokenizer.json"):
        shutil.copy(tokenizer / name, folder / name)
    config = {"add_bos_token": True, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    return folder
