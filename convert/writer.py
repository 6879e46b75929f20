"""Writes a plan as GGUF v3, streaming one tensor at a time into a temporary file that is
renamed over the output only when everything is written.

gguf-py's GGUFWriter writes the header, metadata and tensor infos; the tensor data follows
from the plan's chunks, aligned the way GGUFWriter aligns its own.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from gguf import GGUFWriter
from tqdm import tqdm

from .checkpoint import Checkpoint, input_files
from .encode import tensor_chunks
from .errors import ConvertError
from .metadata import model_entries, tokenizer_entries
from .plan import Plan, PlannedTensor

# add_tensor_info derives the logical shape from a byte shape when told the data is uint8,
# which needs gguf-py to know the type; any other dtype makes it take our logical shape as is.
_LOGICAL_SHAPE_DTYPE = np.dtype(np.int8)


PARTIAL_SUFFIX = ".partial"
_PARTIAL_NAME = re.compile(r"^\.(?P<name>.+)\.(?P<pid>[0-9]+)\.partial$")


def check_output(out: Path, force: bool, inputs: Iterable[Path] = ()) -> None:
    """Refuses an output that cannot be written, that exists (without force), or that is one
    of the inputs under any name (a symlink or hard link included), force or not."""
    folder = out.parent
    if not folder.is_dir():
        raise ConvertError(f"{out}: the output folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConvertError(f"{out}: the output folder {folder} is not writable")
    if out.is_dir():
        raise ConvertError(f"{out}: is a folder; give a file name")
    for source in inputs:
        if _same_file(out, source):
            raise ConvertError(f"{out}: is the input {source}; give another output file")
    if out.exists() and not force:
        raise ConvertError(f"{out}: already exists; use --force to replace it")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def _temporary_path(out: Path) -> Path:
    return out.with_name(f".{out.name}.{os.getpid()}{PARTIAL_SUFFIX}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # someone else's process (or not a pid): leave its file alone
    return True


def remove_stale_partials(folder: Path) -> list[Path]:
    """Removes the temporary files of conversions into folder whose process is gone (killed
    with SIGKILL, or the machine stopped); returns them."""
    removed = []
    try:
        candidates = [p for p in folder.iterdir() if _PARTIAL_NAME.match(p.name)]
    except OSError:
        return removed
    for path in candidates:
        pid = int(_PARTIAL_NAME.match(path.name)["pid"])  # type: ignore[index]
        if pid != os.getpid() and not _alive(pid) and path.is_file():
            try:
                path.unlink()
            except OSError:
                continue
            removed.append(path)
    return removed


def _write_tensor(writer: GGUFWriter, ckpt: Checkpoint, tensor: PlannedTensor, bar: tqdm) -> None:
    fout = writer.fout[0]
    written = 0
    for chunk in tensor_chunks(ckpt, tensor):
        data = np.ascontiguousarray(chunk, dtype=np.uint8)
        fout.write(data.data)
        written += data.size
        bar.update(data.size)
    if written != tensor.nbytes:
        raise RuntimeError(f"{tensor.name}: wrote {written} bytes, planned {tensor.nbytes}")
    writer.write_padding(fout, written)


def _write(plan: Plan, path: Path, progress: bool) -> None:
    writer = GGUFWriter(path, plan.arch)
    for key, value, vtype, sub_type in model_entries(plan) + tokenizer_entries(plan):
        writer.add_key_value(key, value, vtype, sub_type=sub_type)
    for t in plan.tensors:
        writer.add_tensor_info(
            t.name, t.shape, _LOGICAL_SHAPE_DTYPE, t.nbytes, raw_dtype=t.target.type_id
        )
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        fout = writer.fout[0]
        writer.write_padding(fout, fout.tell())
        with tqdm(
            total=plan.nbytes,
            unit="B",
            unit_scale=True,
            desc=path.name.strip("."),
            file=sys.stderr,
            disable=not progress,
        ) as bar:
            for tensor in plan.tensors:
                _write_tensor(writer, plan.checkpoint, tensor, bar)
    finally:
        writer.close()


def write_gguf(plan: Plan, out: Path, force: bool = False, progress: bool = False) -> None:
    """Writes the plan to `out`; on any error nothing is left behind and `out` is untouched.
    `out` may not be one of the plan's input files."""
    check_output(out, force, [*input_files(plan.folder), *plan.checkpoint.files])
    tmp = _temporary_path(out)
    try:
        _write(plan, tmp, progress)
        if out.exists() and not force:
            raise ConvertError(f"{out}: already exists; use --force to replace it")
        os.replace(tmp, out)
    except OSError as e:
        raise ConvertError(f"{out}: cannot write: {e.strerror or e}") from None
    finally:
        tmp.unlink(missing_ok=True)
