"""Every kernel is named bl_<gemv|gemm>_<type>_<act>_<algo>__<isa> (native/src/kernels/kernels.h)
and sits in its ISA's one table of rows, native/src/kernels/<isa>/register.c."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

KERNELS = Path(__file__).resolve().parents[2] / "native" / "src" / "kernels"

ROW = re.compile(
    r"\{BL_TYPE_(\w+),\s*BL_ACT_(\w+),\s*BL_ALGO_(\w+),\s*(\w+),\s*(\w+)\}", re.MULTILINE
)
TABLE = re.compile(r"static const bl_kernel_row rows\[\] = \{(.*?)\n\};", re.DOTALL)
# Functions with external linkage defined at the start of a line (macro-made ones are
# checked through the tables that name them).
DEFINED = re.compile(r"^(?:void|int|float) (bl_\w+)\(", re.MULTILINE)
# An ISA's table may hold kernels compiled for an ISA it extends.
ALSO_RUNS = {"neon_dotprod": {"neon"}, "avx_vnni": {"avx2"}, "amx": {"avx512"}}


def isa_folders() -> list[str]:
    return sorted(p.parent.name for p in KERNELS.glob("*/register.c"))


def row_problems(register_c: str, isa: str) -> list[str]:
    """Rows whose kernels are not named after the row's (type, act, algo) and the ISA."""
    table = TABLE.search(register_c)
    if not table:
        return [f"{isa}: no `static const bl_kernel_row rows[]` table"]
    rows = ROW.findall(table.group(1))
    problems = []
    if not rows or len(rows) != table.group(1).count("{"):
        problems.append(f"{isa}: {len(rows)} rows parsed of {table.group(1).count('{')}")
    isas = "|".join(sorted({isa} | ALSO_RUNS.get(isa, set())))
    for type_, act, algo, gemv, gemm in rows:
        slot = f"{type_}_{act}_{algo}".lower()
        # A GEMM kernel takes any number of rows, so it may fill the GEMV slot too.
        if not re.fullmatch(rf"bl_gem[mv]_{slot}__(?:{isas})", gemv):
            problems.append(f"{isa}: {slot} GEMV slot holds {gemv}")
        if not re.fullmatch(rf"bl_gemm_{slot}__(?:{isas})", gemm):
            problems.append(f"{isa}: {slot} GEMM slot holds {gemm}")
    return problems


def definition_problems(source: str, isa: str) -> list[str]:
    """External functions of kernels/<isa>/ that are neither kernels nor bl_<isa>_ helpers."""
    allowed = re.compile(
        rf"bl_gem[mv]_[a-z0-9]+(?:_[a-z0-9]+)*__{isa}|bl_attn_chunk__{isa}|bl_{isa}_\w+"
    )
    return [f"{isa}: {name}" for name in DEFINED.findall(source) if not allowed.fullmatch(name)]


@pytest.mark.parametrize("isa", isa_folders())
def test_table_rows_name_their_slot(isa: str) -> None:
    assert row_problems((KERNELS / isa / "register.c").read_text(), isa) == []


@pytest.mark.parametrize("isa", isa_folders())
def test_functions_of_an_isa_folder_follow_the_scheme(isa: str) -> None:
    found = []
    for path in sorted((KERNELS / isa).glob("*.[ch]")):
        found += definition_problems(path.read_text(), isa)
    assert found == []


@pytest.mark.parametrize("isa", isa_folders())
def test_one_table_per_isa(isa: str) -> None:
    text = (KERNELS / isa / "register.c").read_text()
    assert text.count("static const bl_kernel_row rows[]") == 1
    assert f"const bl_isa_kernels bl_kernels_{isa} = " in text


ATTENTION = re.compile(r"\.attn_chunk = (\w+),")


@pytest.mark.parametrize("isa", isa_folders())
def test_attention_kernel_is_named_after_its_isa(isa: str) -> None:
    # One attention chunk kernel per ISA, bl_attn_chunk__<isa>; an ISA that extends
    # another may leave it out and keep that one's.
    found = ATTENTION.findall((KERNELS / isa / "register.c").read_text())
    assert found == [f"bl_attn_chunk__{isa}"] or (isa in ALSO_RUNS and found == []), found


def test_every_isa_folder_has_a_table() -> None:
    folders = {p.name for p in KERNELS.iterdir() if p.is_dir()}
    assert folders == set(isa_folders())


def test_rows_are_filled_only_from_the_tables() -> None:
    users = [p.name for p in KERNELS.rglob("*.[ch]") if "bl_kernel_set" in p.read_text()]
    assert users == []


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("{BL_TYPE_BT2, BL_ACT_I8, BL_ALGO_MAD, bl_gemv_bt2_i16_mad__avx2, "
         "bl_gemm_bt2_i8_mad__avx2}", "GEMV slot holds bl_gemv_bt2_i16_mad__avx2"),
        ("{BL_TYPE_BT2, BL_ACT_I8, BL_ALGO_MAD, bl_gemv_bt2_i8_mad__avx2, "
         "bl_gemm_bt2_i8_lut__avx2}", "GEMM slot holds bl_gemm_bt2_i8_lut__avx2"),
        ("{BL_TYPE_BT2, BL_ACT_I8, BL_ALGO_MAD, bl_gemv_bt2_i8_mad__avx512, "
         "bl_gemm_bt2_i8_mad__avx2}", "GEMV slot holds bl_gemv_bt2_i8_mad__avx512"),
        ("{BL_TYPE_BT2, BL_ACT_I8, BL_ALGO_MAD, bt2_gemm, bt2_gemm}", "GEMV slot holds bt2_gemm"),
    ],
)  # fmt: skip
def test_checker_reports_misnamed_rows(row: str, expected: str) -> None:
    problems = row_problems(f"static const bl_kernel_row rows[] = {{\n    {row},\n}};\n", "avx2")
    assert any(expected in p for p in problems), problems


def test_checker_reports_misnamed_functions() -> None:
    source = "void bl_gemv_bt2_i8_mad__avx2(x) {}\nvoid bt2_gemm_avx2(x) {}\nvoid bl_foo(x) {}\n"
    assert definition_problems(source, "avx2") == ["avx2: bl_foo"]
    assert definition_problems("void bl_gemv_bt2_i8_mad__neon(x) {}\n", "avx2") != []
