"""The CUDA path's kernel API: whether this library and machine can use an NVIDIA GPU,
and matrix products on it (checked against bitllm.kernels.matmul by the tests)."""

from __future__ import annotations

import numpy as np

from .kernels import PackedMatrix, activations_for, matrix_args, pointer
from .native import library

_ERR_UNSUPPORTED = -3


class CudaUnavailableError(RuntimeError):
    """The library was built without CUDA, or no GPU or driver is present."""


def _last_error() -> str:
    ffi, lib = library()
    return ffi.string(lib.bl_last_error()).decode(errors="replace")


def available() -> bool:
    """True when the library has the CUDA path and a GPU with a working driver is present."""
    _, lib = library()
    return bool(lib.bl_cuda_available())


def reason() -> str:
    """Why the GPU cannot be used ("" when it can)."""
    _, lib = library()
    return "" if lib.bl_cuda_available() else _last_error()


def _check(status: int) -> None:
    if status == _ERR_UNSUPPORTED:
        raise CudaUnavailableError(_last_error())
    if status < 0:
        raise ValueError(_last_error())


def matmul(matrix: PackedMatrix, x: np.ndarray, act_bits: int = 8) -> np.ndarray:
    """y [n, rows] = x [n, cols] . W^T on the GPU (copies in and out).

    Ternary/sign types give bit for bit what bitllm.kernels.matmul gives; quant types take
    the CPU's int8 32-block activations and float types float32 ones, both summing in
    another order than the CPU. Raises CudaUnavailableError without a GPU.
    """
    ffi, lib = library()
    x = activations_for(matrix, x)
    y = np.empty((x.shape[0], matrix.rows), dtype=np.float32)
    _check(
        lib.bl_cuda_matmul(
            *matrix_args(ffi, matrix),
            pointer(ffi, x, "float *"),
            x.shape[0],
            pointer(ffi, y, "float *"),
            act_bits,
        )
    )
    return y


def bench_matmul(
    matrix: PackedMatrix, n: int = 1, act_bits: int = 8, copies: int = 1, iters: int = 100
) -> float:
    """Seconds per product with the weights resident on the GPU (activations already there
    and quantized); copies > 1 rotates over that many copies to read them from memory."""
    ffi, lib = library()
    seconds = ffi.new("double *")
    _check(
        lib.bl_cuda_bench_matmul(
            *matrix_args(ffi, matrix),
            n,
            act_bits,
            copies,
            iters,
            seconds,
        )
    )
    return float(seconds[0])


def bench_copy(nbytes: int, iters: int = 20) -> float:
    """Seconds per device-to-device copy of nbytes (it reads and writes nbytes each)."""
    ffi, lib = library()
    seconds = ffi.new("double *")
    _check(lib.bl_cuda_bench_copy(nbytes, iters, seconds))
    return float(seconds[0])
