"""glibc malloc settings for long CPU runs that generate and train in worker threads.

Each thread's malloc arena keeps the large blocks it freed, and glibc's adaptive mmap
threshold moves big tensors from mmap into those arenas after the first frees; on CPU a
training run's RSS then grew by GBs per step until the OOM killer ended it. Two arenas at
most and a fixed mmap threshold bound that. The threshold is a trade-off: at 1 MiB every
decoding step's KV-cache and logits tensors were fresh mmaps, page-faulted and zeroed
again (generation ran 1.8x slower, mostly in the kernel); at 32 MiB those small tensors are
reused from the arena and only the large ones (logit chunks, embedding gradients) are
mapped. :func:`release_free_memory` hands the arenas' free pages back between phases, so
one phase's leftovers do not add to the next one's peak.
"""

from __future__ import annotations

import ctypes
import functools

MMAP_THRESHOLD = 32 << 20
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


@functools.cache
def _libc():
    """glibc, or None on other C libraries (musl, macOS), where both functions are no-ops.

    Loaded on first use, by its usual name: ``ctypes.util.find_library`` runs ``ldconfig`` in
    a subprocess, which the CLI would pay on every command.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def limit_malloc_growth(mmap_threshold: int = MMAP_THRESHOLD) -> None:
    """Fix glibc's mmap threshold and cap the number of arenas (a no-op off glibc)."""
    libc = _libc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))
        libc.mallopt(_M_ARENA_MAX, 2)


def release_free_memory() -> None:
    """Return free heap pages to the OS (``malloc_trim``); cheap, call it between phases."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
