"""Thin access to the C model API (bl_model_* / bl_context_*) for the tests, straight
through cffi; the product's bitllm.Model is built on the same calls elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bitllm import kernels
from bitllm.runtime.native import check, library

DEVICES = ("cpu", "cuda")  # index = bl_device
CACHE_TYPES = ("f32", "f16", "q8_0")  # index = bl_kv_type


class NativeModel:
    def __init__(
        self,
        path: Path | str,
        threads: int = 1,
        isa: str | None = None,
        act_bits: int = 0,
        device: str = "cpu",
        i2s_packing: int = 0,
    ) -> None:
        ffi, lib = library()
        params = ffi.new("bl_model_params *")
        params.i2s_packing = i2s_packing
        params.threads = threads
        params.isa = kernels.isa_index(isa)
        params.act_bits = act_bits
        params.device = DEVICES.index(device)
        out = ffi.new("bl_model **")
        check(lib.bl_model_open(str(path).encode(), params, out))
        self._ptr = ffi.gc(out[0], lib.bl_model_free)

    @property
    def info(self) -> dict[str, Any]:
        ffi, lib = library()
        info = ffi.new("bl_model_info *")
        check(lib.bl_model_get_info(self._ptr, info))
        fields = (
            "n_vocab",
            "n_ctx_train",
            "n_embd",
            "n_layer",
            "n_head",
            "n_head_kv",
            "n_ff",
            "file_bytes",
            "repacked_bytes",
        )
        out: dict[str, Any] = {f: getattr(info, f) for f in fields}
        out["arch"] = ffi.string(info.arch).decode()
        return out

    def context(
        self, n_ctx: int = 0, type_k: str | None = None, type_v: str | None = None
    ) -> NativeContext:
        """A context; cache types None: the backend's default."""
        return NativeContext(self, n_ctx, type_k, type_v)


class NativeContext:
    def __init__(
        self, model: NativeModel, n_ctx: int, type_k: str | None, type_v: str | None
    ) -> None:
        ffi, lib = library()
        params = ffi.new("bl_context_params *")
        params.n_ctx = n_ctx
        params.n_seq = 1
        params.type_k = -1 if type_k is None else CACHE_TYPES.index(type_k)
        params.type_v = -1 if type_v is None else CACHE_TYPES.index(type_v)
        out = ffi.new("bl_context **")
        check(lib.bl_context_new_with(model._ptr, params, out))
        self.model = model  # keeps the model alive while the context is
        self.n_vocab = model.info["n_vocab"]
        self._ptr = ffi.gc(out[0], lib.bl_context_free)

    @property
    def n_ctx(self) -> int:
        return library()[1].bl_context_n_ctx(self._ptr)

    @property
    def cache_types(self) -> tuple[str, str]:
        ffi, lib = library()
        type_k, type_v = ffi.new("int *"), ffi.new("int *")
        check(lib.bl_context_kv_types(self._ptr, type_k, type_v))
        return CACHE_TYPES[type_k[0]], CACHE_TYPES[type_v[0]]

    @property
    def kv_bytes(self) -> int:
        return int(library()[1].bl_context_kv_bytes(self._ptr))

    @property
    def n_past(self) -> int:
        return library()[1].bl_context_n_past(self._ptr)

    def eval(
        self, tokens: list[int], pos: int | None = None, all_logits: bool = True
    ) -> np.ndarray:
        """Logits [len(tokens), n_vocab] (all_logits) or [n_vocab] of the last token."""
        ffi, lib = library()
        ids = np.ascontiguousarray(tokens, dtype=np.int32)
        shape = (len(ids), self.n_vocab) if all_logits else (self.n_vocab,)
        logits = np.empty(shape, dtype=np.float32)
        check(
            lib.bl_context_eval(
                self._ptr,
                ffi.cast("int32_t *", ffi.from_buffer(ids)),
                len(ids),
                self.n_past if pos is None else pos,
                ffi.cast("float *", ffi.from_buffer(logits)),
                int(all_logits),
            )
        )
        return logits
