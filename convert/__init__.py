"""bitllm.convert: checkpoints as published (safetensors) -> bitllm GGUF files.

`bit-convert` (cli.py) and `bit-inspect` (inspect_cli.py) are the command lines; build_plan and
write_gguf are the same steps for Python callers and tests.
"""

from .errors import ConvertError
from .plan import build_plan
from .writer import write_gguf

__all__ = ["ConvertError", "build_plan", "write_gguf"]
