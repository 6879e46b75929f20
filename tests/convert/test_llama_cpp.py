"""Interop: a tq2_0 / tq1_0 export of a 1bitLLM-style checkpoint (arch `bitnet`) and of an
HF1BitLLM-style one (arch `llama`) runs in llama.cpp.

Opt-in (`pytest -m slow`): it needs llama-cpp-python (`pip install llama-cpp-python` builds
llama.cpp from source, about 7 minutes). llama.cpp's `bitnet` graph is 1bitLLM's; the same
checkpoint exported densely (f32) is the reference, run by llama.cpp too, so the comparison
isolates the ternary tensors: llama.cpp quantizes activations to 8 bits per block for TQ types,
so the logits agree closely rather than bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.fixtures.checkpoints import BLOCK_ALIGNED
from tests.fixtures.plugin import Factory

pytestmark = pytest.mark.slow

PROMPT = [1, 450, 4996, 17354, 1701, 432, 17204, 975, 278, 17366, 11203, 29889]


def llama_cpp_logits(path: str) -> np.ndarray:
    llama_cpp = pytest.importorskip("llama_cpp")
    model = llama_cpp.Llama(model_path=path, n_ctx=64, logits_all=True, verbose=False, seed=0)
    model.eval(PROMPT)
    logits = np.array(model.scores[: len(PROMPT)], dtype=np.float64)
    model.close()
    return logits


@pytest.mark.parametrize("outtype", ["tq2_0", "tq1_0"])
@pytest.mark.parametrize("family", ["1bitllm", "hf-bitnet"])
def test_llama_cpp_runs_our_ternary_export(
    family: str, outtype: str, converted_gguf: Factory
) -> None:
    reference = llama_cpp_logits(str(converted_gguf(family, "f32", "f32", BLOCK_ALIGNED)))
    # f16 head for hf-bitnet: llama.cpp 0.3.36 (llama-cpp-python) crashes (SIGSEGV) evaluating
    # its untied 128256-row q8_0 head and q8_0 embedding, whatever the projections' type
    head = "q8_0" if family == "1bitllm" else "f16"
    logits = llama_cpp_logits(str(converted_gguf(family, outtype, head, BLOCK_ALIGNED)))
    assert logits.shape == reference.shape and logits.shape[0] == len(PROMPT)
    assert np.isfinite(logits).all()
    centered = logits - logits.mean(axis=1, keepdims=True)
    ref_centered = reference - reference.mean(axis=1, keepdims=True)
    cosine = (centered * ref_centered).sum(axis=1) / (
        np.linalg.norm(centered, axis=1) * np.linalg.norm(ref_centered, axis=1)
    )
    assert cosine.min() > 0.99, cosine
    agree = (logits.argmax(axis=1) == reference.argmax(axis=1)).mean()
    assert agree >= 0.75, agree
