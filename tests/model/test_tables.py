"""The GGUF keys and tensor names both languages spell (convert/gguf_names.py and
native/src/model/gguf_names.h) agree, and the converter's families fit the library's
architectures (native/src/model/arch.c, which the converter reads through bl_arch_info_at)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bitllm.convert import gguf_names
from bitllm.convert.families import FAMILIES, Family, archs
from bitllm.runtime.native import check, library

NAMES_HEADER = Path(__file__).parents[2] / "native" / "src" / "model" / "gguf_names.h"
DEFINE = re.compile(r'^#define (BL_\w+) "([^"]*)"$', re.MULTILINE)


def c_names() -> dict[str, str]:
    """The header's names spelled out as gguf_names.py spells them, by gguf_names' id."""
    defines = dict(DEFINE.findall(NAMES_HEADER.read_text()))
    layer_prefix = defines.pop("BL_LAYER_PREFIX").replace("%d", "{bid}")
    kinds = {  # macro prefix -> how its text becomes the whole name
        "BL_KEY_": lambda text: text,
        "BL_ARCH_KEY_": lambda text: "{arch}." + text,
        "BL_TENSOR_": lambda text: text,
        "BL_LAYER_TENSOR_": lambda text: layer_prefix + text,
        "BL_SUFFIX_": lambda text: text.removeprefix("."),
    }
    names = {}
    for macro, text in defines.items():
        prefix = next((p for p in kinds if macro.startswith(p)), None)
        assert prefix is not None, f"{NAMES_HEADER.name}: {macro} is of no known kind"
        names[macro.removeprefix(prefix)] = kinds[prefix](text)
    return names


def test_c_names_are_the_converters() -> None:
    names = c_names()
    assert len(names) >= 30  # the header was read
    for ident, spelled in names.items():
        assert getattr(gguf_names, ident, None) == spelled, ident


# architectures the library runs from llama.cpp's files but bit-convert does not write
LLAMA_CPP_ONLY: set[str] = set()


def test_every_architecture_the_converter_writes_is_the_librarys() -> None:
    written = {f.arch for f in FAMILIES.values()}
    assert written == set(archs()) - LLAMA_CPP_ONLY


@pytest.mark.parametrize("index", [-1, 4096])
def test_arch_index_out_of_range_is_an_error(index: int) -> None:
    ffi, lib = library()
    with pytest.raises(ValueError, match="not in"):
        check(lib.bl_arch_info_at(index, ffi.new("bl_arch_info *")))


@pytest.mark.parametrize("family", FAMILIES.values(), ids=lambda f: f.name)
def test_families_fit_their_graph(family: Family) -> None:
    """A family names HF sub-norms exactly when its graph has them, and stores signs exactly
    when its graph scales projections (OneBit's g and h)."""
    assert (family.sub_norms is not None) == family.graph.sub_norms
    assert (family.weight_format.values == "sign") == family.graph.scaled_projections
