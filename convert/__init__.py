"""bitllm.convert: checkpoints as published (safetensors) -> bitllm GGUF files.

`bit-convert` (cli.py) and `bit-inspect` (inspect_cli.py) are the command lines; build_plan and
write_gguf are the same steps for Python callers and tests.
"""

from bitllm.convert.errors import ConvertError
from bitllm.convert.plan import build_plan
from bitllm.convert.writer import write_gguf

__all__ = ["ConvertError", "build_plan", "write_gguf"]
