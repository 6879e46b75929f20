"""config.json fuzz: every numeric field of every family's published config set to zeros,
negatives, huge values, wrong types, null, NaN and infinities. Each case either converts to
a file that bitllm.Model (what bit-run runs) loads, or fails with one line naming
config.json or the tensor it disagrees with, exit status 1 and no traceback.

Every case runs bit-convert in-process. Refused configs fail before any tensor is read, so
they cost little; an accepted config is converted and loaded once per distinct outcome:
cases that read to the same family and hyperparameters (a field the converter does not
read, a null where the default applies) make the same file, and token-id fields, which only
choose the special-token ids, make the same file when they yield the same ids. The Llama-3
families (about 10 s per conversion and load for 128256 tokens) have their accepted cases
converted by the SentencePiece families, which share the config reader.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest

import bitllm
from bitllm.convert import build_plan
from bitllm.convert.cli import main
from bitllm.convert.config import read_config, read_hyper
from bitllm.convert.errors import ConvertError
from bitllm.convert.families import detect_family
from tests.fixtures.checkpoints import FAMILIES, TINY, published_config
from tests.fixtures.plugin import Factory

HOSTILE = (0, -1, -5, 10**12, 1e12, 2**63, "x", None, [1], math.nan, math.inf, -math.inf)
SPM_FAMILIES = ("1bitllm", "onebit", "onebit-latent")  # quick to convert
TOKEN_ID_FAMILY = "1bitllm"  # has bos, eos and pad ids in its config
# converted with bit-convert's defaults too: for Bonsai, the group type that holds it
GROUP_SCALED = ("bonsai",)


def numeric_fields(family: str) -> list[str]:
    config = published_config(family, TINY)
    return [k for k, v in config.items() if isinstance(v, int | float) and not isinstance(v, bool)]


def cases(family: str) -> list[tuple[str, Any]]:
    """(field, value): HOSTILE, plus the field's own value as the other numeric type."""
    config = published_config(family, TINY)
    out = []
    for field in numeric_fields(family):
        flipped = float(config[field]) if isinstance(config[field], int) else int(config[field])
        out += [(field, value) for value in (*HOSTILE, flipped)]
    return out


def _one_line_failure(err: str, code: int) -> str:
    assert code == 1, err
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if "warning:" not in line]
    assert len(lines) == 1 and lines[0].startswith("bit-convert: error: "), err
    return lines[0]


def _accepted_outcome(folder: Path) -> object | None:
    """What the converter reads from the config (None: it refuses the config)."""
    config = read_config(folder)
    try:
        return detect_family(config, folder, None), read_hyper(config, folder)
    except ConvertError:
        return None


def _special_ids(folder: Path) -> dict[str, int]:
    plan = build_plan(folder, "bt2", "q8_0", None)
    plan.checkpoint.close()
    return plan.vocab.special_ids


def _file_key(folder: Path, family: str, field: str, outcome: object) -> str:
    """Equal keys make equal files."""
    if field.endswith("_token_id") and family == TOKEN_ID_FAMILY:
        return repr((outcome, _special_ids(folder)))
    return repr(outcome)


@pytest.mark.parametrize("family", (*FAMILIES, *GROUP_SCALED))
def test_config_fields_fuzz(
    family: str, checkpoint_factory: Factory, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    src = Path(shutil.copytree(checkpoint_factory(family), tmp_path / family))
    out = tmp_path / "out.gguf"
    original = json.loads((src / "config.json").read_text())
    converted: set[str] = set()
    for field, value in cases(family):
        config = dict(original, **{field: value})
        (src / "config.json").write_text(json.dumps(config))  # NaN and Infinity as json writes
        outcome = _accepted_outcome(src)
        if outcome is not None:
            key = _file_key(src, family, field, outcome)
            if key in converted or (converted and family not in SPM_FAMILIES):
                continue
            converted.add(key)
        out.unlink(missing_ok=True)
        code = main([str(src), "-o", str(out)])
        err = capsys.readouterr().err
        if outcome is None:
            line = _one_line_failure(err, code)
            assert "config.json" in line and field in line, (field, value, line)
            assert not out.exists()
        elif code == 0:
            with bitllm.Model(out, n_ctx=16) as model:
                assert model.info.n_layer == TINY.layers, (field, value)
        else:
            line = _one_line_failure(err, code)
            assert "config" in line, (field, value, line)
