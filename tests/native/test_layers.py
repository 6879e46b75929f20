"""The C library's folders are layers that only point down (native/README.md, "Layers").

Every `#include "..."` under native/src is resolved as the compiler resolves it (the
including file's folder first, then the include directories of CMakeLists.txt) and must
land in the including file's own layer or one below it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NATIVE = REPO / "native"

# One numbered line per layer in native/README.md, lowest first: "2. `types/`: ...".
LAYER_LINE = re.compile(r"^\d+\. ((?:`\w+/`(?:, )?)+):", re.MULTILINE)
INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]+"([^"]+)"', re.MULTILINE)
SOURCE_SUFFIXES = {".c", ".h", ".cu", ".cuh"}

# Includes that still run upward, each with the reason it is not fixed yet. The test fails
# when one of them is gone, so this list only shrinks.
KNOWN_UPWARD: dict[tuple[str, str], str] = {}  # (source, target): why it is allowed for now

# Extra include folders of one layer's target, as CMakeLists.txt gives them: the CUDA sources
# include base/error.h and types/types.h by bare name until they can change on a GPU.
EXTRA_INCLUDE_DIRS = {"cuda": ("base", "types")}


@dataclass(frozen=True)
class Include:
    source: str  # path under native/src of the including file
    name: str  # as written between the quotes
    target: str | None  # path under native/src, "include/..." for the public header, or None


def layer_ranks(readme: str) -> dict[str, int]:
    """Folder -> rank (0 lowest) from the numbered list of native/README.md."""
    ranks: dict[str, int] = {}
    for rank, match in enumerate(LAYER_LINE.finditer(readme)):
        for folder in re.findall(r"`(\w+)/`", match.group(1)):
            ranks[folder] = rank
    return ranks


def resolve(src: Path, include_dir: Path, including: Path, name: str) -> str | None:
    """Where the compiler finds a quoted include: beside the file, then -I native/src,
    -I native/include and the layer's EXTRA_INCLUDE_DIRS (CMakeLists.txt); None when nowhere."""
    top = including.relative_to(src).parts[0]
    extra = tuple((src / folder, None) for folder in EXTRA_INCLUDE_DIRS.get(top, ()))
    folders = ((including.parent, None), (src, None), (include_dir, "include"), *extra)
    for folder, label in folders:
        candidate = (folder / name).resolve()
        if not candidate.is_file():
            continue
        if label:
            return f"{label}/{candidate.relative_to(include_dir.resolve()).as_posix()}"
        try:
            return candidate.relative_to(src.resolve()).as_posix()
        except ValueError:
            return None  # found outside native/src: not a header of the library
    return None


def includes(native: Path) -> list[Include]:
    src, include_dir = native / "src", native / "include"
    found = []
    for path in sorted(src.rglob("*")):
        if path.suffix not in SOURCE_SUFFIXES or not path.is_file():
            continue
        source = path.relative_to(src).as_posix()
        for name in INCLUDE.findall(path.read_text()):
            found.append(Include(source, name, resolve(src, include_dir, path, name)))
    return found


def layer_of(path: str, ranks: dict[str, int]) -> int | None:
    """The public header is below every layer; a file's layer is its top folder's."""
    top = path.split("/", 1)[0]
    return -1 if top == "include" else ranks.get(top)


def problems(native: Path) -> list[str]:
    """One line per include that is unresolved, in no layer, or runs upward."""
    ranks = layer_ranks((native / "README.md").read_text())
    if not ranks:
        return ["native/README.md lists no layers (lines like '1. `base/`: ...')"]
    lines = []
    for inc in includes(native):
        here = layer_of(inc.source, ranks)
        if here is None:
            lines.append(f"{inc.source}: its folder is in no layer of native/README.md")
        elif inc.target is None:
            lines.append(f'{inc.source}: #include "{inc.name}" resolves to no file')
        elif layer_of(inc.target, ranks) is None:
            lines.append(f"{inc.source}: includes {inc.target}, whose folder is in no layer")
        elif layer_of(inc.target, ranks) > here and (inc.source, inc.target) not in KNOWN_UPWARD:
            lines.append(f"{inc.source}: includes {inc.target}, a layer above its own")
    return sorted(set(lines))


def test_native_includes_point_down() -> None:
    found = problems(NATIVE)
    assert not found, "layering broken (native/README.md, Layers):\n" + "\n".join(found)


def test_known_upward_includes_still_exist() -> None:
    edges = {(inc.source, inc.target) for inc in includes(NATIVE)}
    gone = [f"{a} -> {b}" for a, b in KNOWN_UPWARD if (a, b) not in edges]
    assert not gone, f"fixed, drop from KNOWN_UPWARD: {gone}"


def test_every_layer_folder_exists() -> None:
    ranks = layer_ranks((NATIVE / "README.md").read_text())
    folders = {p.name for p in (NATIVE / "src").iterdir() if p.is_dir()}
    assert set(ranks) == folders


README = """Layers:

1. `base/`: lowest.
2. `ops/`: above.
"""


def _tree(root: Path, files: dict[str, str]) -> Path:
    (root / "README.md").write_text(README)
    (root / "include").mkdir(parents=True)
    (root / "include" / "bitllm.h").write_text("")
    for name, text in files.items():
        path = root / "src" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"base/a.h": '#include "ops/b.h"\n', "ops/b.h": ""}, "a layer above its own"),
        ({"base/a.c": '#include "../ops/b.h"\n', "ops/b.h": ""}, "a layer above its own"),
        ({"base/a.c": '#include "error.h"\n'}, "resolves to no file"),
        ({"misc/a.c": '#include "bitllm.h"\n'}, "in no layer"),
    ],
)
def test_checker_reports(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    found = problems(_tree(tmp_path, files))
    assert len(found) == 1 and expected in found[0], found


def test_checker_accepts_downward_includes(tmp_path: Path) -> None:
    files = {
        "base/a.h": '#include "bitllm.h"\n',
        "ops/b.c": '#include "base/a.h"\n#include "b.h"\n',
        "ops/b.h": '#include "../base/a.h"\n',
    }
    assert problems(_tree(tmp_path, files)) == []
