"""bitllm.convert: checkpoints as published (safetensors) -> bitllm GGUF files.

`bit-convert` (cli.py) and `bit-inspect` (inspect_cli.py) are the command lines; build_plan and
write_gguf are the same steps for Python callers and tests. A conversion, one module per step:

1. read: plan.py reads the checkpoint's headers (checkpoint.py), config.json (config.py) and
   tokenizer (vocab.py), checks every tensor against them and plans each output tensor;
2. decode: decode.py turns a projection as its family stores it (families.WEIGHT_FORMATS) into
   ternary or sign values with row scales;
3. encode: encode.py makes the bytes of each tensor's target type (targets.py);
4. write: writer.py writes the GGUF, metadata (metadata.py) first, one tensor at a time.

GGUF names and keys are stated once in gguf_names.py.
"""

from .errors import ConvertError
from .plan import build_plan
from .writer import write_gguf

__all__ = ["ConvertError", "build_plan", "write_gguf"]
