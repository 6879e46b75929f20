"""Perplexity and KL divergence of a model over a text, computed as llama-perplexity does.

The text's tokens are cut into consecutive chunks of n_ctx tokens. Each chunk is evaluated
from an empty KV cache, with its first token replaced by BOS where the vocabulary adds one,
and only its second half is scored: the logits at positions n_ctx/2 .. n_ctx-2 predict the
tokens at n_ctx/2+1 .. n_ctx-1, so every scored token has at least n_ctx/2 tokens of context.
PPL = exp(mean negative log-likelihood) over all scored tokens; its uncertainty is the
standard error of that mean carried through exp (ppl * sd / sqrt(n - 1)).

Everything downstream works from log-probabilities rounded to float32 (the form the KL base
file stores), so a model compared with its own base file gives exactly KLD 0. Memory is
bounded by one chunk: its scored rows of log-probabilities, computed in blocks of rows.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Protocol

import numpy as np

MIN_CTX = 4  # the smallest chunk that scores at least one token
ROW_BLOCK = 16  # rows of float64 log-softmax work at a time (16 x 128256 x 8 B = 16 MB)


class PerplexityError(ValueError):
    """Input that cannot be evaluated (too short a text, a bad chunk size, ...)."""


class LogitsContext(Protocol):
    """What bitllm.runtime.model.Context offers: eval(ids, pos, all_logits)."""

    def eval(self, ids: Sequence[int], pos: int, all_logits: bool = False) -> np.ndarray: ...


@dataclass(frozen=True)
class Chunking:
    """Which positions of an n_ctx-token chunk are scored."""

    n_ctx: int

    @property
    def first(self) -> int:
        """The first position whose logits are scored."""
        return self.n_ctx // 2

    @property
    def n_scored(self) -> int:
        return self.n_ctx - 1 - self.first


def check_ctx(n_ctx: int, n_ctx_train: int) -> Chunking:
    """The chunking for n_ctx, which must score a token and fit the model's context."""
    if n_ctx < MIN_CTX:
        raise PerplexityError(f"the context (-c) must be at least {MIN_CTX} tokens, got {n_ctx}")
    if n_ctx_train > 0 and n_ctx > n_ctx_train:
        raise PerplexityError(
            f"the context (-c) of {n_ctx} tokens is larger than the model's training context "
            f"of {n_ctx_train}"
        )
    return Chunking(n_ctx)


def split_chunks(tokens: Sequence[int], n_ctx: int, n_chunks: int | None = None) -> np.ndarray:
    """The first n_chunks (None: all) whole chunks of n_ctx tokens, int32 [chunks, n_ctx]."""
    available = len(tokens) // n_ctx
    if available == 0:
        raise PerplexityError(
            f"the text is {len(tokens)} tokens, shorter than one chunk of {n_ctx} tokens: "
            "use a longer text or a smaller context (-c)"
        )
    count = available if n_chunks is None else min(n_chunks, available)
    return np.asarray(tokens[: count * n_ctx], dtype=np.int32).reshape(count, n_ctx)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Rows of log-probabilities, computed in float64 block by block, rounded to float32."""
    out = np.empty(logits.shape, dtype=np.float32)
    for start in range(0, logits.shape[0], ROW_BLOCK):
        block = logits[start : start + ROW_BLOCK].astype(np.float64)
        block -= block.max(axis=1, keepdims=True)
        block -= np.log(np.exp(block).sum(axis=1, keepdims=True))
        out[start : start + ROW_BLOCK] = block
    return out


def chunk_log_probs(
    context: LogitsContext, chunk: np.ndarray, bos: int | None, batch: int
) -> np.ndarray:
    """float32 [n_scored, n_vocab]: the log-probabilities at the scored positions of chunk.

    The unscored first half is evaluated without its logits (only the KV cache is filled),
    then the scored half in batches of `batch` tokens with every token's logits. The last
    token is never evaluated: no scored position reads its logits."""
    chunking = Chunking(len(chunk))
    ids = [int(t) for t in chunk]
    if bos is not None:
        ids[0] = bos
    for start in range(0, chunking.first, batch):
        stop = min(start + batch, chunking.first)
        context.eval(ids[start:stop], start)
    rows = []
    for start in range(chunking.first, len(ids) - 1, batch):
        stop = min(start + batch, len(ids) - 1)
        rows.append(log_softmax(context.eval(ids[start:stop], start, all_logits=True)))
    return np.concatenate(rows)


def targets(chunk: np.ndarray) -> np.ndarray:
    """The token each scored position predicts."""
    return np.asarray(chunk[Chunking(len(chunk)).first + 1 :], dtype=np.int64)


def iter_log_probs(
    context: LogitsContext, chunks: np.ndarray, bos: int | None, batch: int
) -> Iterator[np.ndarray]:
    """chunk_log_probs of each chunk in turn, from an empty cache each time."""
    if batch < 1:
        raise PerplexityError(f"the batch size (-b) must be at least 1, got {batch}")
    for chunk in chunks:
        yield chunk_log_probs(context, chunk, bos, batch)


def token_nll(log_probs: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """float64 negative log-likelihood of each row's token."""
    return -log_probs[np.arange(len(tokens)), tokens].astype(np.float64)


def _standard_error(values: np.ndarray) -> float:
    """Standard error of the mean, as llama-perplexity computes it (0 for one value)."""
    n = len(values)
    if n < 2:
        return 0.0
    variance = float(np.mean(values**2) - np.mean(values) ** 2)
    return math.sqrt(max(variance, 0.0) / (n - 1))


class Perplexity:
    """Running perplexity over the negative log-likelihoods added so far."""

    def __init__(self) -> None:
        self._parts: list[np.ndarray] = []

    def add(self, nll: np.ndarray) -> None:
        self._parts.append(np.asarray(nll, dtype=np.float64))

    @property
    def nll(self) -> np.ndarray:
        return np.concatenate(self._parts) if self._parts else np.empty(0)

    @property
    def value(self) -> float:
        return math.exp(float(self.nll.mean()))

    @property
    def uncertainty(self) -> float:
        return self.value * _standard_error(self.nll)


@dataclass
class TokenComparison:
    """Per scored token: a model's log-probabilities against the base's."""

    nll: np.ndarray  # -log p(token), the model
    nll_base: np.ndarray  # -log p(token), the base
    kld: np.ndarray  # KL(base || model) over the whole vocabulary
    same_top: np.ndarray  # bool: both put the highest probability on the same token
    delta_p: np.ndarray  # p(token) - p_base(token)


def compare(base: np.ndarray, log_probs: np.ndarray, tokens: np.ndarray) -> TokenComparison:
    """The rows of log_probs (float32, as log_softmax returns) against base's rows."""
    if base.shape != log_probs.shape:
        raise PerplexityError(f"base rows {base.shape} do not match the model's {log_probs.shape}")
    kld = np.empty(len(base))
    for start in range(0, len(base), ROW_BLOCK):
        lb = base[start : start + ROW_BLOCK].astype(np.float64)
        lq = log_probs[start : start + ROW_BLOCK].astype(np.float64)
        kld[start : start + ROW_BLOCK] = (np.exp(lb) * (lb - lq)).sum(axis=1)
    nll, nll_base = token_nll(log_probs, tokens), token_nll(base, tokens)
    return TokenComparison(
        nll=nll,
        nll_base=nll_base,
        kld=kld,
        same_top=base.argmax(axis=1) == log_probs.argmax(axis=1),
        delta_p=np.exp(-nll) - np.exp(-nll_base),
    )


def concat(parts: Sequence[TokenComparison]) -> TokenComparison:
    names = [f.name for f in fields(TokenComparison)]
    return TokenComparison(**{n: np.concatenate([getattr(p, n) for p in parts]) for n in names})


KLD_PERCENTILES = (("Maximum", 100.0), ("99.9%  ", 99.9), ("99.0%  ", 99.0),
                   ("Median ", 50.0), ("10.0%  ", 10.0), (" 5.0%  ", 5.0),
                   (" 1.0%  ", 1.0), ("Minimum", 0.0))  # fmt: skip


@dataclass(frozen=True)
class KldSummary:
    """What llama-perplexity --kl-divergence reports, as numbers."""

    n_tokens: int
    ppl: tuple[float, float]  # value, uncertainty
    ppl_base: tuple[float, float]
    correlation: float  # of ln p(token) between the two models
    ln_ratio: tuple[float, float]  # mean ln(PPL / PPL_base)
    ratio: tuple[float, float]
    difference: tuple[float, float]
    kld: tuple[float, float]
    kld_percentiles: tuple[float, ...]  # in KLD_PERCENTILES' order
    delta_p: tuple[float, float]  # mean, as fractions
    rms_delta_p: tuple[float, float]
    same_top: tuple[float, float]  # fraction


def summarize(c: TokenComparison) -> KldSummary:
    n = len(c.kld)
    if n == 0:
        raise PerplexityError("no tokens were scored")
    ppl, ppl_base = math.exp(c.nll.mean()), math.exp(c.nll_base.mean())
    se, se_base = _standard_error(c.nll), _standard_error(c.nll_base)
    # covariance of the two means, for the uncertainty of the difference
    cov = float(np.mean(c.nll * c.nll_base) - c.nll.mean() * c.nll_base.mean()) / max(n - 1, 1)
    sd, sd_base = float(c.nll.std()), float(c.nll_base.std())
    correlation = float(np.corrcoef(c.nll, c.nll_base)[0, 1]) if sd > 0 and sd_base > 0 else 1.0
    ln_ratio = float(c.nll.mean() - c.nll_base.mean())
    ln_ratio_se = _standard_error(c.nll - c.nll_base)
    diff_var = (ppl * se) ** 2 + (ppl_base * se_base) ** 2 - 2 * ppl * ppl_base * cov
    ms = float(np.mean(c.delta_p**2))
    rms = math.sqrt(ms)
    rms_se = 0.0
    if n > 1 and rms > 0:
        rms_se = math.sqrt(max(float(np.mean(c.delta_p**4)) - ms**2, 0.0) / (n - 1)) / (2 * rms)
    same = float(c.same_top.mean())
    return KldSummary(
        n_tokens=n,
        ppl=(ppl, ppl * se),
        ppl_base=(ppl_base, ppl_base * se_base),
        correlation=correlation,
        ln_ratio=(ln_ratio, ln_ratio_se),
        ratio=(math.exp(ln_ratio), math.exp(ln_ratio) * ln_ratio_se),
        difference=(ppl - ppl_base, math.sqrt(max(diff_var, 0.0))),
        kld=(float(c.kld.mean()), _standard_error(c.kld)),
        kld_percentiles=tuple(
            float(np.percentile(c.kld, q, method="nearest")) for _, q in KLD_PERCENTILES
        ),
        delta_p=(float(c.delta_p.mean()), _standard_error(c.delta_p)),
        rms_delta_p=(rms, rms_se),
        same_top=(same, math.sqrt(same * (1 - same) / (n - 1)) if n > 1 else 0.0),
    )


def ppl_line(ppl: Perplexity) -> str:
    return f"Final estimate: PPL = {ppl.value:.4f} +/- {ppl.uncertainty:.5f}"


def kld_report(s: KldSummary) -> list[str]:
    """The statistics blocks, line for line in llama-perplexity's layout."""

    def pair(v: tuple[float, float]) -> str:
        return f"{v[0]:10.6f} ± {v[1]:10.6f}"

    def percent(v: tuple[float, float]) -> str:
        return f"{100 * v[0]:6.3f} ± {100 * v[1]:5.3f} %"

    lines = [
        "====== Perplexity statistics ======",
        f"Mean PPL(Q)                   : {pair(s.ppl)}",
        f"Mean PPL(base)                : {pair(s.ppl_base)}",
        f"Cor(ln(PPL(Q)), ln(PPL(base))): {100 * s.correlation:6.2f}%",
        f"Mean ln(PPL(Q)/PPL(base))     : {pair(s.ln_ratio)}",
        f"Mean PPL(Q)/PPL(base)         : {pair(s.ratio)}",
        f"Mean PPL(Q)-PPL(base)         : {pair(s.difference)}",
        "",
        "====== KL divergence statistics ======",
        f"Mean    KLD: {pair(s.kld)}",
    ]
    lines += [
        f"{label} KLD: {value:10.6f}"
        for (label, _), value in zip(KLD_PERCENTILES, s.kld_percentiles, strict=True)
    ]
    lines += [
        "",
        "====== Token probability statistics ======",
        f"Mean    Δp: {percent(s.delta_p)}",
        f"RMS Δp    : {percent(s.rms_delta_p)}",
        f"Same top p: {percent(s.same_top)}",
    ]
    return lines
