"""bitllm: convert and run 1-bit-class LLMs (BitNet b1.58 ternary, OneBit sign).

(Installed as bitllm/__init__.py; the sources live in runtime/ and convert/.)
Importing bitllm stays light: the native library loads on first use, and bitllm.Model and
bitllm.Llama (and jinja2 behind them) are imported when first touched.
"""

from typing import TYPE_CHECKING, Any

from bitllm.runtime import kernels
from bitllm.runtime.tokenizer import Tokenizer
from bitllm.runtime.version import __version__

if TYPE_CHECKING:
    from bitllm.runtime.llama_api import Llama
    from bitllm.runtime.model import Model

__all__ = ["kernels", "Llama", "Model", "Tokenizer", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Model":
        from bitllm.runtime.model import Model

        return Model
    if name == "Llama":
        from bitllm.runtime.llama_api import Llama

        return Llama
    raise AttributeError(f"module 'bitllm' has no attribute {name!r}")
