"""Keep freed host memory in the process (glibc ``malloc`` settings for CPU training).

A Gramian step allocates a few large temporaries (``T`` per-task feature gradients, the
layers' per-task output gradients at the parameter level: megabytes each) and frees them
before the next step. glibc's ``malloc`` returns freed memory at the top of its heap to the
operating system once more than its trim threshold is free (by default about twice the
largest block freed so far), so every step page-faults the same memory in again; on the
step-cost benchmark's model at ``T = 8`` that costs the parameter level about 15% of a step
(docs/engine.md, "CPU memory allocator"). PyTorch's CPU allocator has no cache of its own;
PyTorch's performance tuning guide recommends preloading jemalloc or tcmalloc for the same
reason. :func:`keep_freed_memory` gets the same effect from glibc itself, at run time:

- ``M_MMAP_THRESHOLD``: blocks below it come from the heap (reused), not from fresh ``mmap``
  regions (page-faulted on every use);
- ``M_TRIM_THRESHOLD``: free memory at the top of the heap is kept up to this size.

Setting either one also turns off glibc's own adjustment of the other, so both are set. The
settings are process-wide and the price is that the process keeps its peak heap (plus up to
``trim_threshold``) instead of giving memory back between steps.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import warnings

# From glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# glibc refuses an mmap threshold above half its maximum heap size (32 MiB on 64-bit
# systems); ``mallopt`` takes a C ``int``.
MAX_MMAP_THRESHOLD = 32 << 20
MAX_INT = 2**31 - 1


def glibc_version() -> str | None:
    """The C library's version string (``"glibc 2.36"``) when it is GNU libc, else ``None``
    (musl, macOS, Windows)."""
    try:
        return os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):
        return None


def keep_freed_memory(
    mmap_threshold: int = MAX_MMAP_THRESHOLD, trim_threshold: int = 1 << 30
) -> bool:
    """Make glibc's ``malloc`` keep freed memory for reuse instead of returning it to the
    operating system after every step (see the module docstring for why).

    Call it once, early in a CPU training process (``Trainer.fit`` calls it on the CPU unless
    ``TrainerConfig.keep_freed_memory`` is false). It changes nothing on the GPU.

    Args:
        mmap_threshold: bytes; smaller allocations come from the reusable heap
            (at most 32 MiB, glibc's limit).
        trim_threshold: bytes of free memory kept at the top of the heap (at most
            ``2**31 - 1``).

    Returns:
        ``True`` when glibc accepted both settings; ``False`` (with a warning that names the
        alternative) when the C library is not glibc.

    Raises:
        ValueError: a threshold outside the range above.
        RuntimeError: glibc refused a setting.
    """
    if not 0 < mmap_threshold <= MAX_MMAP_THRESHOLD:
        raise ValueError(
            f"mmap_threshold must be in (0, {MAX_MMAP_THRESHOLD}] bytes (glibc's limit), "
            f"got {mmap_threshold}"
        )
    if not 0 < trim_threshold <= MAX_INT:
        raise ValueError(f"trim_threshold must be in (0, {MAX_INT}] bytes, got {trim_threshold}")
    if glibc_version() is None:
        warnings.warn(
            "keep_freed_memory: the C library is not glibc, so its malloc settings were left "
            "alone; to stop freed memory going back to the OS every step, preload jemalloc or "
            "tcmalloc (LD_PRELOAD), as PyTorch's CPU performance tuning guide recommends",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    for name, option, value in (
        ("M_MMAP_THRESHOLD", M_MMAP_THRESHOLD, mmap_threshold),
        ("M_TRIM_THRESHOLD", M_TRIM_THRESHOLD, trim_threshold),
    ):
        if libc.mallopt(ctypes.c_int(option), ctypes.c_int(value)) != 1:
            raise RuntimeError(f"glibc's mallopt refused {name} = {value}")
    return True
