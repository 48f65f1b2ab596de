"""Matmul precision of the torch trainers: fp32, or bfloat16 autocast where the CPU multiplies bf16 natively.

On CPUs with AMX or AVX512-BF16 (Intel Sapphire Rapids and later, AMD Zen 4 and later) a bf16 matrix
product runs ~5x faster than fp32 (measured here: 1,084 vs 192 GFLOP/s, one thread, 15,360 x 128 @ 128 x 128).
Elsewhere bf16 is emulated and slower, so ``"auto"`` uses it only where the CPU flags say it is native.
Under ``autocast`` the hidden layers' products run in bf16 (accumulated in fp32 by oneDNN); the
networks keep their output layers, the losses, the optimizer state and the weights in fp32
(``p2penv.agents.vector_ppo.GroupMLP``).
"""
from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch

PRECISIONS = ("auto", "fp32", "bf16")
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags of a native bf16 dot product


def cpuinfo_has_native_bf16(cpuinfo: str) -> bool:
    """Whether a /proc/cpuinfo text's first ``flags`` line names a native bf16 dot product (``NATIVE_BF16_FLAGS``)."""
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), [])
    return any(f in flags for f in NATIVE_BF16_FLAGS)


@functools.cache
def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (Linux: its /proc/cpuinfo flags; elsewhere False)."""
    try:
        return cpuinfo_has_native_bf16(Path("/proc/cpuinfo").read_text())
    except OSError:
        return False


def resolve_precision(precision: str) -> str:
    """``"auto"`` -> ``"bf16"`` where ``native_bf16()``, else ``"fp32"``; the others as given."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision: must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return "bf16" if native_bf16() else "fp32"
    return precision


def autocast(precision: str):
    """The context the trainer's forward passes run in: bf16 CPU autocast for ``"bf16"``, nothing for ``"fp32"``."""
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def full_precision():
    """A block that runs in fp32 even inside ``autocast`` (output layers, losses)."""
    return torch.autocast("cpu", enabled=False)
