"""Tokenizer metadata for the GGUF, with llama.cpp's keys and conventions.

Three sources, tried in this order in the checkpoint's folder:
- tokenizer.model (SentencePiece, LLaMA style): pieces, scores and types as the model holds them;
- tokenizer.json with a byte-level BPE (Llama-3, Qwen2 style): tokenizer.ggml.model "gpt2", the
  merges, and the tokenizer.ggml.pre of the runtime's pre-tokenizer that splits the same way;
- tokenizer.json converted from SentencePiece (BPE with byte fallback and "▁" for spaces):
  tokenizer.ggml.model "llama"; the merge ranks become the scores SentencePiece merges by.
Special tokens, add_bos/add_eos and the chat template come from tokenizer_config.json (and
chat_template.jinja), falling back to config.json's token ids.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..runtime.tokenizer_pre import PRE_TOKENIZERS, spelled_out
from .errors import ConvertError

# llama.cpp's token types (the same numbers as SentencePiece's piece types)
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

# The tokenizer.ggml.pre names written: a tokenizer.json that splits text with the same
# regexes as one of these runtime pre-tokenizers gets its name
WRITTEN_PRE_NAMES = (
    "llama-bpe",
    "qwen2",
    "qwen35",
    "gpt-2",
    "starcoder",
    "deepseek-llm",
    "deepseek-coder",
)
END_OF_TURN_TOKENS = ("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|eot|>")
BYTE_TOKEN = re.compile(r"<0x[0-9A-Fa-f]{2}>")


@dataclass
class Vocab:
    model: str  # "gpt2" (byte-level BPE) or "llama" (SentencePiece)
    pre: str
    tokens: list[str]
    token_types: list[int]
    scores: list[float] | None
    merges: list[str] | None
    source: Path
    special_ids: dict[str, int] = field(default_factory=dict)  # bos, eos, eot, pad, unk
    add_bos: bool = False
    add_eos: bool = False
    chat_template: str | None = None
    warnings: list[str] = field(default_factory=list)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConvertError(f"{path}: cannot read: {e.strerror or e}") from None
    except ValueError as e:
        raise ConvertError(f"{path}: not valid JSON ({e})") from None


def _token_text(value: Any) -> str | None:
    """tokenizer_config writes special tokens as strings or as {"content": ...} objects."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def _sentencepiece_vocab(path: Path) -> Vocab:
    try:
        import sentencepiece
    except ImportError:
        raise ConvertError(
            f"{path}: reading tokenizer.model needs sentencepiece: pip install 'bitllm[convert]'"
        ) from None
    try:
        sp = sentencepiece.SentencePieceProcessor(model_file=str(path))
    except (OSError, RuntimeError) as e:
        raise ConvertError(f"{path}: not a SentencePiece model ({e})") from None
    tokens, scores, types = [], [], []
    for i in range(sp.vocab_size()):
        tokens.append(sp.id_to_piece(i))
        scores.append(float(sp.get_score(i)))
        if sp.is_unknown(i):
            types.append(UNKNOWN)
        elif sp.is_control(i):
            types.append(CONTROL)
        elif sp.is_unused(i):
            types.append(UNUSED)
        elif sp.is_byte(i):
            types.append(BYTE)
        else:
            types.append(NORMAL)
    vocab = Vocab("llama", "default", tokens, types, scores, None, path, add_bos=True)
    for key, token_id in (("bos", sp.bos_id()), ("eos", sp.eos_id()), ("unk", sp.unk_id())):
        if token_id >= 0:
            vocab.special_ids[key] = token_id
    return vocab


def _is_sentencepiece_json(tokenizer: dict) -> bool:
    model = tokenizer.get("model") or {}
    steps = [tokenizer.get("pre_tokenizer"), tokenizer.get("normalizer")]
    pre = json.dumps(steps, ensure_ascii=False)
    return bool(model.get("byte_fallback")) or "\u2581" in pre


def _merge_strings(merges: list) -> list[str]:
    """Merges as "a b" strings (tokenizers writes either strings or [a, b] pairs)."""
    return [m if isinstance(m, str) else " ".join(m) for m in merges]


def _ordered_tokens(path: Path, tokenizer: dict) -> tuple[list[str | None], dict[int, dict]]:
    """Tokens by id (None for ids nobody names) and the added tokens by id."""
    model = tokenizer.get("model") or {}
    vocab = model.get("vocab")
    if model.get("type") != "BPE" or not isinstance(vocab, dict):
        raise ConvertError(
            f"{path}: tokenizer model {model.get('type')!r} is not supported "
            "(BPE or SentencePiece tokenizers only)"
        )
    added = {t["id"]: t for t in tokenizer.get("added_tokens", [])}
    size = max([*vocab.values(), *added.keys()], default=-1) + 1
    tokens: list[str | None] = [None] * size
    for text, token_id in vocab.items():
        tokens[token_id] = text
    for token_id, token in added.items():
        tokens[token_id] = token["content"]
    return tokens, added


def _json_types(tokens: list[str | None], added: dict[int, dict], unk: str | None) -> list[int]:
    types = []
    for token_id, text in enumerate(tokens):
        if token_id in added:
            types.append(CONTROL if added[token_id].get("special") else USER_DEFINED)
        elif text is None:
            types.append(UNUSED)
        elif text == unk:
            types.append(UNKNOWN)
        elif BYTE_TOKEN.fullmatch(text):
            types.append(BYTE)
        else:
            types.append(NORMAL)
    return types


def _merge_rank_scores(
    tokens: list[str | None], types: list[int], merges: list[str]
) -> list[float]:
    """SentencePiece merges the adjacent pair whose joined piece scores highest; a BPE merges
    the pair of lowest rank. Scoring each piece by minus the rank of the first merge that makes
    it gives SentencePiece the same order. Pieces no merge makes are never a merge result, so
    their scores only have to sit below all of those."""
    rank: dict[str, int] = {}
    for r, merge in enumerate(merges):
        left, _, right = merge.partition(" ")
        rank.setdefault(left + right, r)
    scores = []
    for token_id, text in enumerate(tokens):
        if text is not None and text in rank:
            scores.append(-float(rank[text]))
        elif types[token_id] == NORMAL:
            scores.append(-float(len(merges) + token_id))
        else:
            scores.append(0.0)
    return scores


def _split_regexes(tokenizer: dict) -> tuple[str, ...] | None:
    """The regexes a byte-level tokenizer.json splits text with, in order; None when it
    splits in some other way (e.g. a Punctuation or Digits step)."""
    pre = tokenizer.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    regexes = []
    for step in steps:
        kind = step.get("type")
        pattern = (step.get("pattern") or {}).get("Regex")
        if kind == "Split" and step.get("behavior") == "Isolated" and not step.get("invert"):
            if not pattern:
                return None
            regexes.append(spelled_out(pattern))
        elif kind == "ByteLevel":
            if step.get("use_regex", True):  # GPT-2's own split
                regexes += PRE_TOKENIZERS["gpt-2"].regexes
        else:
            return None
    return tuple(regexes)


def _pre_tokenizer_name(tokenizer: dict) -> str | None:
    """llama.cpp's tokenizer.ggml.pre for a byte-level tokenizer.json, None if unknown."""
    regexes = _split_regexes(tokenizer)
    return next((n for n in WRITTEN_PRE_NAMES if PRE_TOKENIZERS[n].regexes == regexes), None)


def _template_adds(tokenizer: dict) -> tuple[bool | None, bool | None]:
    """(adds BOS, adds EOS) according to a TemplateProcessing post-processor, if any."""
    post = tokenizer.get("post_processor") or {}
    steps = post.get("processors", [post]) if post.get("type") == "Sequence" else [post]
    for step in steps:
        if step.get("type") == "TemplateProcessing":
            single = step.get("single") or []
            return (
                bool(single) and "SpecialToken" in single[0],
                len(single) > 1 and "SpecialToken" in single[-1],
            )
    return None, None


def _tokenizer_json_vocab(path: Path) -> Vocab:
    tokenizer = _read_json(path)
    if not isinstance(tokenizer, dict):
        raise ConvertError(f"{path}: not a tokenizers JSON file")
    tokens, added = _ordered_tokens(path, tokenizer)
    model = tokenizer["model"]
    merges = _merge_strings(model.get("merges") or [])
    unk = model.get("unk_token")
    types = _json_types(tokens, added, unk)
    texts = [t if t is not None else f"[PAD{i}]" for i, t in enumerate(tokens)]
    if _is_sentencepiece_json(tokenizer):
        scores = _merge_rank_scores(tokens, types, merges)
        vocab = Vocab("llama", "default", texts, types, scores, None, path, add_bos=True)
    else:
        pre = _pre_tokenizer_name(tokenizer)
        vocab = Vocab("gpt2", pre or "default", texts, types, None, merges, path)
        if pre is None:
            vocab.warnings.append(
                f"{path}: unknown pre-tokenizer; wrote tokenizer.ggml.pre = 'default'"
            )
    adds_bos, adds_eos = _template_adds(tokenizer)
    vocab.add_bos = vocab.add_bos if adds_bos is None else adds_bos
    vocab.add_eos = vocab.add_eos if adds_eos is None else adds_eos
    if unk is not None and unk in texts:
        vocab.special_ids["unk"] = texts.index(unk)
    return vocab


def _add_config_tokens(vocab: Vocab, tokenizer_config: dict) -> None:
    """Added tokens that tokenizer_config.json lists beyond the SentencePiece model."""
    decoder = tokenizer_config.get("added_tokens_decoder") or {}
    for key, token in sorted(decoder.items(), key=lambda kv: int(kv[0])):
        token_id, text = int(key), _token_text(token)
        if text is None:
            continue
        token_type = CONTROL if token.get("special") else USER_DEFINED
        while len(vocab.tokens) <= token_id:
            vocab.tokens.append(f"[PAD{len(vocab.tokens)}]")
            vocab.token_types.append(UNUSED)
            if vocab.scores is not None:
                vocab.scores.append(0.0)
        if vocab.tokens[token_id] == text or vocab.tokens[token_id].startswith("[PAD"):
            vocab.tokens[token_id] = text
            if vocab.token_types[token_id] in (NORMAL, UNUSED):
                vocab.token_types[token_id] = token_type


def _chat_template(folder: Path, tokenizer_config: dict) -> str | None:
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    template = tokenizer_config.get("chat_template")
    if isinstance(template, list):
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default")
    return template if isinstance(template, str) else None


def _first_id(value: Any) -> int | None:
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, int) else None


def _special_ids(vocab: Vocab, tokenizer_config: dict, config: dict) -> None:
    index = {}
    for token_id, text in enumerate(vocab.tokens):
        index.setdefault(text, token_id)
    for key in ("bos", "eos", "unk", "pad"):
        text = _token_text(tokenizer_config.get(f"{key}_token"))
        if text is not None and text in index:
            vocab.special_ids[key] = index[text]
        elif key not in vocab.special_ids and _first_id(config.get(f"{key}_token_id")) is not None:
            vocab.special_ids[key] = _first_id(config.get(f"{key}_token_id"))
    for text in END_OF_TURN_TOKENS:
        if text in index:
            vocab.special_ids["eot"] = index[text]
            break


def load_vocab(folder: Path, config: dict, rows: int) -> Vocab:
    """The tokenizer of the checkpoint in `folder`, padded to the embedding's `rows`."""
    model_path, json_path = folder / "tokenizer.model", folder / "tokenizer.json"
    config_path = folder / "tokenizer_config.json"
    tokenizer_config = _read_json(config_path) if config_path.is_file() else {}
    if not model_path.is_file() and not json_path.is_file():
        raise ConvertError(f"{folder}: no tokenizer (expected tokenizer.json or tokenizer.model)")
    try:
        vocab = _sentencepiece_vocab(model_path) if model_path.is_file() else None
    except ConvertError:
        if not json_path.is_file():
            raise
        vocab = None  # e.g. a tiktoken tokenizer.model next to the tokenizer.json
    if vocab is not None:
        _add_config_tokens(vocab, tokenizer_config)
    else:
        vocab = _tokenizer_json_vocab(json_path)
    for key in ("add_bos_token", "add_eos_token"):
        if isinstance(tokenizer_config.get(key), bool):
            setattr(vocab, key.removesuffix("_token"), tokenizer_config[key])
    if len(vocab.tokens) > rows:
        raise ConvertError(
            f"{vocab.source}: the tokenizer has {len(vocab.tokens)} tokens but the embedding "
            f"has {rows} rows"
        )
    for token_id in range(len(vocab.tokens), rows):
        vocab.tokens.append(f"[PAD{token_id}]")
        vocab.token_types.append(UNUSED)
        if vocab.scores is not None:
            vocab.scores.append(0.0)
    _special_ids(vocab, tokenizer_config, config)
    vocab.special_ids = {k: v for k, v in vocab.special_ids.items() if 0 <= v < rows}
    if vocab.model == "llama" and "unk" in vocab.special_ids:
        vocab.token_types[vocab.special_ids["unk"]] = UNKNOWN
    vocab.chat_template = _chat_template(folder, tokenizer_config)
    return vocab
