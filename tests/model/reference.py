"""A plain torch forward pass of every architecture, written from the equations of
DESIGN.md §2 and HF transformers' llama conventions (RMSNorm, rotate_half RoPE, repeated
K/V heads, float32 softmax), not from the C code. Weights come as tests/model/builder.py
describes them, so other tests (converter fixtures) can fill a `Weights` and reuse this.

BitLinear products follow the BitNet rule exactly: per-token absmax quantization of the
input to `act_bits` integers, exact integer dot products, `y = dot * row_scale / s`.
With act_bits=0 the products are plain float math (OneBit's float reference).
"""

from __future__ import annotations

import numpy as np
import torch

from .builder import Projection, Weights


def rms_norm(x: torch.Tensor, weight: np.ndarray, eps: float) -> torch.Tensor:
    variance = x.pow(2).mean(-1, keepdim=True)
    return x * torch.rsqrt(variance + eps) * torch.from_numpy(weight)


def linear(x: torch.Tensor, p: Projection, act_bits: int, post_eps: float) -> torch.Tensor:
    if p.in_scale is not None:
        x = x * torch.from_numpy(p.in_scale)
    values = torch.from_numpy(p.values.astype(np.float64))
    scale = torch.from_numpy(p.row_scale)
    if act_bits:
        qmax = 2.0 ** (act_bits - 1) - 1
        s = qmax / x.abs().amax(-1, keepdim=True).clamp(min=1e-5)
        xq = (x * s).round().clamp(-qmax - 1, qmax)
        y = (xq.double() @ values.T).float() * scale / s
    else:
        y = (x.double() @ (values * scale.double()[:, None]).T).float()
    if p.out_scale is not None:
        y = y * torch.from_numpy(p.out_scale)
        y = torch.nn.functional.layer_norm(y, (y.shape[-1],), eps=post_eps)
    return y


def rope(
    x: torch.Tensor, positions: torch.Tensor, n_rot: int, theta: float, factor: float = 1.0
) -> torch.Tensor:
    """x [n, heads, head_dim]: HF's rotate_half form on the first n_rot dimensions, with
    linear position scaling by factor."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, n_rot, 2, dtype=torch.int64).float() / n_rot))
    inv_freq = inv_freq / factor
    angles = positions.float()[:, None] * inv_freq[None, :]
    cos = torch.cat([angles.cos(), angles.cos()], -1)[:, None, :]
    sin = torch.cat([angles.sin(), angles.sin()], -1)[:, None, :]
    rot, rest = x[..., :n_rot], x[..., n_rot:]
    half = n_rot // 2
    rotated = torch.cat([-rot[..., half:], rot[..., :half]], -1)
    return torch.cat([rot * cos + rotated * sin, rest], -1)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """q [n, H, d], k/v [n, Hkv, d] -> [n, H * d], causal."""
    n, heads, d = q.shape
    repeat = heads // k.shape[1]
    k = k.repeat_interleave(repeat, dim=1)
    v = v.repeat_interleave(repeat, dim=1)
    scores = torch.einsum("thd,shd->hts", q, k) * d**-0.5
    mask = torch.ones(n, n, dtype=torch.bool).triu(1)
    scores = scores.masked_fill(mask, float("-inf"))
    probs = torch.softmax(scores.float(), dim=-1)
    return torch.einsum("hts,shd->thd", probs, v).reshape(n, heads * d)


def forward(w: Weights, tokens: list[int], act_bits: int | None = None) -> np.ndarray:
    """Logits float32 [len(tokens), n_vocab] for tokens at positions 0, 1, ..."""
    c = w.config
    bits = c.act_bits if act_bits is None else act_bits
    eps, post_eps = c.rms_eps, c.post_layernorm_eps
    act = torch.nn.functional.silu if c.activation == "silu" else (lambda g: torch.relu(g) ** 2)
    n, d = len(tokens), c.head_dim
    positions = torch.arange(n)
    x = torch.from_numpy(w.token_embd)[torch.tensor(tokens)]
    with torch.no_grad():
        for layer in w.layers:
            p = layer.proj
            h = rms_norm(x, layer.attn_norm, eps)
            q = linear(h, p["attn_q"], bits, post_eps).view(n, c.n_head, d)
            k = linear(h, p["attn_k"], bits, post_eps).view(n, c.n_head_kv, d)
            v = linear(h, p["attn_v"], bits, post_eps).view(n, c.n_head_kv, d)
            if layer.attn_q_norm is not None and layer.attn_k_norm is not None:
                q = rms_norm(q, layer.attn_q_norm, eps)  # per head: the last axis is head_dim
                k = rms_norm(k, layer.attn_k_norm, eps)
            q = rope(q, positions, d, c.rope_theta, c.rope_scale)
            k = rope(k, positions, d, c.rope_theta, c.rope_scale)
            a = attention(q, k, v)
            if layer.attn_sub_norm is not None:
                a = rms_norm(a, layer.attn_sub_norm, eps)
            x = x + linear(a, p["attn_output"], bits, post_eps)
            h = rms_norm(x, layer.ffn_norm, eps)
            g = act(linear(h, p["ffn_gate"], bits, post_eps)) * linear(
                h, p["ffn_up"], bits, post_eps
            )
            if layer.ffn_sub_norm is not None:
                g = rms_norm(g, layer.ffn_sub_norm, eps)
            x = x + linear(g, p["ffn_down"], bits, post_eps)
        head = w.token_embd if w.output is None else w.output
        logits = rms_norm(x, w.output_norm, eps) @ torch.from_numpy(head).T
    return logits.numpy()
