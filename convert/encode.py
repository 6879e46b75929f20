"""Step 3 of a conversion: one planned tensor's bytes in the target type, read and decoded
from the checkpoint (steps 1 and 2) a piece at a time, so the writer holds about one tensor.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..runtime import tensor_types
from .checkpoint import Checkpoint
from .decode import decode_linear
from .errors import ConvertError
from .plan import PlannedTensor
from .targets import (
    DEFAULT_HEAD,
    GROUP_OUTTYPES,
    GROUP_TYPE_VALUES,
    encode_floats,
    encode_linear,
    group_type_holding,
    holds_exactly,
)

ROW_CHUNK_ELEMENTS = 1 << 22  # float matrices are encoded 4 M weights (16 MB f32) at a time


def tensor_chunks(ckpt: Checkpoint, tensor: PlannedTensor) -> Iterator[np.ndarray]:
    """The tensor's bytes in GGUF order, in one or more chunks."""
    if tensor.linear is not None:
        values, scale = decode_linear(ckpt, tensor.linear)
        yield encode_linear(tensor.target.name, values, scale)
    elif len(tensor.shape) == 1:
        yield encode_floats(tensor.target.name, ckpt.floats(tensor.sources[0].name))
    else:
        yield from _float_row_chunks(ckpt, tensor)


def _float_row_chunks(ckpt: Checkpoint, tensor: PlannedTensor) -> Iterator[np.ndarray]:
    """A float matrix (the embedding, the head) encoded a block of rows at a time."""
    rows, cols = tensor.shape
    step = max(1, ROW_CHUNK_ELEMENTS // cols)
    for start in range(0, rows, step):
        chunk = ckpt.float_rows(tensor.sources[0].name, start, min(rows, start + step))
        _check_group_head(tensor, chunk, start)
        yield encode_floats(tensor.target.name, chunk)


def _check_group_head(tensor: PlannedTensor, rows: np.ndarray, start: int) -> None:
    """A sign or trit head type holds only values that already are sign or trit x a block
    scale; rounding anything else to it (a trit embedding to signs, say) loses most of the
    head, so it is refused rather than written."""
    name, type_name = tensor.sources[0].name, tensor.target.name
    if type_name not in GROUP_OUTTYPES or holds_exactly(type_name, rows, name):
        return
    held = group_type_holding(rows, name)
    block = tensor_types.tensor_type(type_name).block_weights
    raise ConvertError(
        f"--head-type {type_name}: tensor {name!r} rows {start} to {start + len(rows) - 1} are "
        f"not {GROUP_TYPE_VALUES[type_name]} x one scale per {block} columns; "
        f"use {held or DEFAULT_HEAD}"
    )
