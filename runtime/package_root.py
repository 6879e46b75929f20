"""bitllm: convert and run 1-bit-class LLMs (BitNet b1.58 ternary, OneBit sign).

(Installed as bitllm/__init__.py; the sources live in runtime/ and convert/.)
Importing bitllm stays light: the native library loads on first use.
"""

from bitllm.runtime import kernels

__version__ = "0.1.0"
__all__ = ["kernels", "__version__"]
