"""A native context's lifetime, shared by the one-sequence Context (runtime.model) and the
many-sequence BatchContext (runtime.batch): creation from bl_context_params, the KV cache's
types and bytes, a lock that serializes calls, and a close() that waits for a call in
progress. The cache type names come from the library (bl_kv_type_name), not from a copy."""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

from .native import check, library


@cache
def cache_types() -> tuple[str, ...]:
    """KV cache type names, index = bl_kv_type: ("f32", "f16", "q8_0")."""
    ffi, lib = library()
    return tuple(ffi.string(lib.bl_kv_type_name(t)).decode() for t in range(lib.BL_KV_TYPE_COUNT))


def cache_type_index(name: str, value: object) -> int:
    """bl_kv_type of a cache type name; BL_KV_DEFAULT (the device's default) for None."""
    if value is None:
        return int(library()[1].BL_KV_DEFAULT)
    names = cache_types()
    if value not in names:
        raise ValueError(
            f"{name} must be one of {', '.join(map(repr, names))} or None, got {value!r}"
        )
    return names.index(str(value))


class NativeContext:
    """n_seq KV caches of n_ctx positions on a model. Calls hold self._lock (a GPU model's
    contexts share one); calls after close() raise ValueError."""

    def __init__(
        self,
        model: Any,
        n_ctx: int,
        n_seq: int,
        cache_type_k: str | None,
        cache_type_v: str | None,
        lock: threading.RLock | None,
    ) -> None:
        ffi, lib = library()
        params = ffi.new(
            "bl_context_params *",
            {
                "n_ctx": n_ctx,
                "n_seq": n_seq,
                "type_k": cache_type_index("cache_type_k", cache_type_k),
                "type_v": cache_type_index("cache_type_v", cache_type_v),
            },
        )
        out = ffi.new("bl_context **")
        check(lib.bl_context_new_with(model, params, out))
        self._ptr = out[0]
        self._lock = lock or threading.RLock()
        self.n_ctx = int(lib.bl_context_n_ctx(self._ptr))
        self.n_seq = n_seq
        type_k, type_v = ffi.new("int *"), ffi.new("int *")
        check(lib.bl_context_kv_types(self._ptr, type_k, type_v))
        self.cache_type_k, self.cache_type_v = cache_types()[type_k[0]], cache_types()[type_v[0]]
        self.cache_bytes = int(lib.bl_context_kv_bytes(self._ptr))
        """Bytes of the KV caches when every position of every sequence is filled."""

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        lock = getattr(self, "_lock", None)
        if lock is None:
            return
        with lock:
            ptr, self._ptr = self._ptr, None
            if ptr is not None:
                library()[1].bl_context_free(ptr)
                self._closed()

    def _closed(self) -> None:
        """What a subclass forgets when its native context is freed."""

    @property
    def closed(self) -> bool:
        return self._ptr is None

    def _live(self) -> Any:
        """The native pointer; ValueError once closed. Call with self._lock held."""
        if self._ptr is None:
            raise ValueError("context is closed (or its model was closed)")
        return self._ptr
