"""A guard against runs that cannot fit in memory: estimate the peak, compare it with what the
machine (or the accelerator) has free, and raise before anything is compiled.

Without it, a dense fit of a matrix that does not fit is killed by the operating system (or
fails inside XLA's allocator) minutes into compilation, with nothing that says why.
"""

from __future__ import annotations

import os

import jax
import numpy as np


class MemoryEstimateError(MemoryError, ValueError):
    """The estimated peak memory of a run exceeds what is available (raised before compiling).

    A ``MemoryError`` that is also a ``ValueError``: the request, not the machine, is at fault.
    """


def available_bytes(device=None) -> int | None:
    """Free memory of ``device`` (default: the first device): the accelerator's allocator
    limit minus what is in use, or on the CPU the host's ``MemAvailable``. None if unknown."""
    device = jax.devices()[0] if device is None else device
    if device.platform != "cpu":
        try:
            stats = device.memory_stats() or {}
        except Exception:  # not every backend reports
            stats = {}
        if "bytes_limit" in stats:
            return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
        return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def dense_fit_bytes(m: int, n: int, k: int, dtype, *, masked: bool, beta_two: bool) -> int:
    """Estimated peak bytes of one dense fit of an ``(m, n)`` V at rank ``k``.

    Counted: V on the host and on the device (2 m n), the mask likewise, the m × n temporaries
    of an iteration (WH and the ratios: about 4 m n for β ≠ 2 or a mask, 1 m n for the Gram
    form of Frobenius), and the factors with their gradients (about 8 (m + n) k).
    """
    item = np.dtype(dtype).itemsize
    entries = m * n
    copies = 2 + (2 if masked else 0) + (1 if beta_two and not masked else 4)
    return item * (copies * entries + 8 * (m + n) * k)


def check(estimate: int, what: str, *, device=None, available=None) -> None:
    """Raise :class:`MemoryEstimateError` if ``estimate`` bytes exceed the free memory."""
    free = available_bytes(device) if available is None else available
    if free is None or estimate <= free:
        return
    raise MemoryEstimateError(
        f"{what} needs an estimated {estimate / 2**30:.3g} GiB, but only {free / 2**30:.3g} "
        "GiB is free on this device. Pass V as a scipy.sparse matrix if most of it is zeros "
        "(never densified), split it across devices with devices=..., or for a sweep lower "
        "batch_size (fewer members per compiled call)."
    )


# XLA's CPU client aliases a host buffer aligned to this many bytes instead of copying it.
_XLA_CPU_ALIGNMENT = 64


def aligned_zeros(shape, dtype) -> np.ndarray:
    """``np.zeros(shape, dtype)`` in a buffer aligned for XLA's CPU client, whose
    ``jax.device_put`` then aliases it instead of copying (a 5 MB copy took 2 ms here; the
    25 online steps of a MiniBatchNMF fit of that size take about 6 ms). The array must not
    be written after it has been put on the device."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.zeros(nbytes + _XLA_CPU_ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % _XLA_CPU_ALIGNMENT
    return raw[start : start + nbytes].view(dtype).reshape(shape)
