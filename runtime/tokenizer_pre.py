"""Pre-tokenizers of byte-level BPE vocabularies (tokenizer.ggml.pre), as llama.cpp runs them.

A pre-tokenizer is a list of regexes: each splits the pieces the one before it left, and every
match becomes a piece of its own. The regexes are those of llama.cpp's src/llama-vocab.cpp,
which follow each family's tokenizer.json (case-insensitive groups spelled out).

Only pre-tokenizers whose regexes are checked against llama.cpp's own vocab test vectors
(tests/runtime/test_tokenizer.py) are run; llama.cpp's other names are refused rather than
guessed. A file without tokenizer.ggml.pre gets the "default" one with a warning, as in
llama.cpp; a name llama.cpp does not know is an error, as in llama.cpp.

As in llama.cpp, no normalizer runs before the split: Qwen2's tokenizer.json normalizes to
NFC first, so text not in NFC may tokenize differently from transformers there.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass


@dataclass(frozen=True)
class PreTokenizer:
    """How llama.cpp treats one tokenizer.ggml.pre value."""

    regexes: tuple[str, ...]  # each splits the pieces the one before it left
    ignore_merges: bool = False  # a piece that is a whole vocabulary entry is taken as is
    add_bos: bool = False  # the default when tokenizer.ggml.add_bos_token is absent


def _char_class(ranges: tuple[tuple[int, int], ...]) -> str:
    return "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in ranges)


# English contractions, spelled case-insensitively without an inline flag
_CONTRACTIONS = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
# GPT-2's word pattern, which many families reuse as one of their steps
_GPT2_WORDS = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"


def _tiktoken_style(letters: str, digits: str, other: str) -> str:
    """The Llama-3 / Qwen2 pattern shape: letters may take one leading non-letter, digits
    come in groups, other symbols take one leading space and trailing newlines."""
    return (
        rf"{_CONTRACTIONS}|[^\r\n\p{{L}}\p{{N}}]?{letters}+|{digits}| ?{other}+[\r\n]*"
        r"|\s*[\r\n]+|\s+(?!\S)|\s+"
    )


_LLAMA3_WORDS = _tiktoken_style(r"\p{L}", r"\p{N}{1,3}", r"[^\s\p{L}\p{N}]")
_QWEN2_WORDS = _tiktoken_style(r"\p{L}", r"\p{N}", r"[^\s\p{L}\p{N}]")
_QWEN35_WORDS = _tiktoken_style(r"[\p{L}\p{M}]", r"\p{N}", r"[^\s\p{L}\p{M}\p{N}]")

# DeepSeek's (v1) letters: the cased letters of Latin, Greek, Cyrillic, Armenian, Georgian,
# Cherokee, Glagolitic, Coptic, Deseret, Osage, Old Hungarian, Warang Citi and Adlam, and
# the letterlike symbols among them
_DEEPSEEK_CASED_LETTERS = (
    (0x41, 0x5A), (0x61, 0x7A), (0xB5, 0xB5), (0xC0, 0xD6), (0xD8, 0xF6), (0xF8, 0x1BA),
    (0x1BC, 0x1BF), (0x1C4, 0x293), (0x295, 0x2AF), (0x370, 0x373), (0x376, 0x377),
    (0x37B, 0x37D), (0x37F, 0x37F), (0x386, 0x386), (0x388, 0x38A), (0x38C, 0x38C),
    (0x38E, 0x3A1), (0x3A3, 0x3F5), (0x3F7, 0x481), (0x48A, 0x52F), (0x531, 0x556),
    (0x10A0, 0x10C5), (0x13A0, 0x13F5), (0x13F8, 0x13FD), (0x1C90, 0x1CBA), (0x1CBD, 0x1CBF),
    (0x1D00, 0x1D2B), (0x1D6B, 0x1D77), (0x1D79, 0x1D9A), (0x1E00, 0x1F15), (0x1F18, 0x1F1D),
    (0x1F20, 0x1F45), (0x1F48, 0x1F4D), (0x1F50, 0x1F57), (0x1F59, 0x1F59), (0x1F5B, 0x1F5B),
    (0x1F5D, 0x1F5D), (0x1F5F, 0x1F7D), (0x1F80, 0x1FB4), (0x1FB6, 0x1FBC), (0x1FBE, 0x1FBE),
    (0x1FC2, 0x1FC4), (0x1FC6, 0x1FCC), (0x1FD0, 0x1FD3), (0x1FD6, 0x1FDB), (0x1FE0, 0x1FEC),
    (0x1FF2, 0x1FF4), (0x1FF6, 0x1FFC), (0x2102, 0x2102), (0x2107, 0x2107), (0x210A, 0x2113),
    (0x2115, 0x2115), (0x2119, 0x211D), (0x2124, 0x2124), (0x2126, 0x2126), (0x2128, 0x2128),
    (0x212A, 0x212D), (0x212F, 0x2134), (0x2139, 0x2139), (0x213C, 0x213F), (0x2145, 0x2149),
    (0x214E, 0x214E), (0x2183, 0x2184), (0x2C00, 0x2C7B), (0x2C7E, 0x2CE4), (0x2CEB, 0x2CEE),
    (0x2CF2, 0x2CF3), (0xA640, 0xA66D), (0xA680, 0xA69B), (0xA722, 0xA76F), (0xA771, 0xA787),
    (0xA78B, 0xA78E), (0xAB70, 0xABBF), (0xFB00, 0xFB06), (0xFB13, 0xFB17), (0xFF21, 0xFF3A),
    (0xFF41, 0xFF5A), (0x10400, 0x1044F), (0x104B0, 0x104D3), (0x104D8, 0x104FB),
    (0x10C80, 0x10CB2), (0x10CC0, 0x10CF2), (0x118A0, 0x118DF), (0x1E900, 0x1E943),
)  # fmt: skip
# ASCII punctuation and symbols, their full-width forms, curly quotes, CJK space to full stop
_DEEPSEEK_PUNCTUATION = (
    (0x21, 0x2F), (0x3A, 0x7E), (0xFF01, 0xFF0F), (0xFF1A, 0xFF5E), (0x2018, 0x201F),
    (0x3000, 0x3002),
)  # fmt: skip
# CJK ideographs (as far as U+9FA5), everything from Samaritan up to them, and Hangul
_DEEPSEEK_CJK = ((0x4E00, 0x9FA5), (0x0800, 0x4E00), (0xAC00, 0xD7FF))

_GPT2 = PreTokenizer((_GPT2_WORDS,))
_LLAMA3 = PreTokenizer((_LLAMA3_WORDS,), ignore_merges=True, add_bos=True)
_DBRX = PreTokenizer((_LLAMA3_WORDS,))  # Llama-3's regex without its merge and BOS rules
_QWEN2 = PreTokenizer((_QWEN2_WORDS,))
_QWEN35 = PreTokenizer((_QWEN35_WORDS,))
_STARCODER = PreTokenizer((r"\p{N}", _GPT2_WORDS))
_FALCON = PreTokenizer((r"[\p{P}\$\+<=>\^~\|`]+", _GPT2_WORDS, r"[0-9][0-9][0-9]"))
_DEEPSEEK_LLM = PreTokenizer(
    (
        r"[\r\n]",
        rf"\s?[{_char_class(_DEEPSEEK_CASED_LETTERS)}]+",
        rf"\s?[{_char_class(_DEEPSEEK_PUNCTUATION)}]+",
        r"\s+$",
        f"[{_char_class(_DEEPSEEK_CJK)}]+",
        r"\p{N}+",
    )
)
_DEEPSEEK_CODER = PreTokenizer(
    (r"[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", f"[{_char_class(_DEEPSEEK_CJK)}]+", r"\p{N}")
)
_DEFAULT = PreTokenizer((r"[\p{P}\$\+<=>\^~\|]+", _GPT2_WORDS, r"\p{N}+", r"[0-9][0-9][0-9]"))

# tokenizer.ggml.pre -> pre-tokenizer, for every name llama.cpp gives one of these
PRE_TOKENIZERS: dict[str, PreTokenizer] = {
    "default": _DEFAULT,
    **dict.fromkeys(
        ("llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0"),
        _LLAMA3,
    ),
    **dict.fromkeys(("lfm2", "jina-v5-nano"), _LLAMA3),
    **dict.fromkeys(("dbrx", "smaug-bpe"), _DBRX),
    **dict.fromkeys(
        ("gpt-2", "phi-2", "mpt", "olmo", "jais", "trillion", "granite-docling", "exaone4"),
        _GPT2,
    ),
    **dict.fromkeys(
        ("jina-es", "jina-de", "jina-v2-es", "jina-v2-de", "gigachat", "a.x-4.0", "mellum"),
        _GPT2,
    ),
    "modern-bert": _GPT2,
    **dict.fromkeys(
        ("starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"),
        _STARCODER,
    ),
    "mellum2": _STARCODER,
    **dict.fromkeys(
        ("qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "stablelm2", "hunyuan"),
        _QWEN2,
    ),
    **dict.fromkeys(("solar-open", "grok-2"), _QWEN2),
    "qwen35": _QWEN35,
    "falcon": _FALCON,
    "deepseek-llm": _DEEPSEEK_LLM,
    "deepseek-coder": _DEEPSEEK_CODER,
}

# Names llama.cpp knows whose regexes no test vector here checks, or that need more than
# regexes (their own splitting code, no byte encoding, a separator token, no BOS token)
NOT_SUPPORTED = frozenset(
    (
        "afmoe", "bailingmoe", "bailingmoe2", "bloom", "chameleon", "chatglm-bpe", "cohere2moe",
        "deepseek-v3", "exaone-moe", "gemma4", "glm4", "glm5", "gpt-4o", "gpt3-finnish",
        "granite-embed-multi-311m", "granite-embed-multi-97m", "hunyuan-dense", "hy_v4",
        "jais-2", "jina-v1-en", "jina-v2-code", "joyai-llm", "kanana2", "kimi-k2", "laguna",
        "llada-moe", "llama4", "minicpm5", "minimax-m2", "poro-chat", "roberta-bpe",
        "sarvam-moe", "seed-coder", "spark2_5", "superbpe", "talkie", "tekken", "tiny_aya",
        "ufakzeka", "viking", "whitespace", "youtu",
    )
)  # fmt: skip


def pre_tokenizer(pre: str | None, source: str = "tokenizer") -> PreTokenizer:
    """The pre-tokenizer for a tokenizer.ggml.pre value; source names the file in messages."""
    if pre is None:
        warnings.warn(
            f"{source}: no tokenizer.ggml.pre; using llama.cpp's 'default' pre-tokenizer, "
            "which splits text differently from most models (reconvert the file to fix this)",
            stacklevel=3,
        )
        return _DEFAULT
    found = PRE_TOKENIZERS.get(pre)
    if found is not None:
        return found
    if pre in NOT_SUPPORTED:
        raise ValueError(
            f"{source}: tokenizer.ggml.pre {pre!r} is a llama.cpp pre-tokenizer that bitllm "
            "does not support yet"
        )
    raise ValueError(
        f"{source}: unknown tokenizer.ggml.pre {pre!r} (llama.cpp does not know it either; "
        "bitllm knows e.g. 'llama-bpe', 'qwen2', 'gpt-2', 'default')"
    )


def spelled_out(pattern: str) -> str:
    """A tokenizer.json split pattern with its case-insensitive contractions group written
    the way the regexes above write it, so that the two can be compared."""
    return pattern.replace("(?i:'s|'t|'re|'ve|'m|'ll|'d)", _CONTRACTIONS)
