"""Keep freed memory inside the process while a model trains (glibc only; elsewhere a no-op).

glibc serves every allocation above its mmap threshold (at most 32 MB) with a fresh ``mmap`` and hands it
back to the kernel on ``free``. A training step allocates and frees the same large tensors every time
(a full-softmax logit matrix is ``batch x n_items`` floats, hundreds of MB), so each step page-faulted them
in again: measured on Gowalla with the full softmax, system time equalled user time (2.9 s each per step)
and fell to 0.19 s with this heap policy, user time unchanged. Inside :func:`retained_heap` large blocks
come from the heap and freed ones stay there for the next step; on exit the defaults come back and the
free memory is returned to the kernel (``malloc_trim``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Iterator
from contextlib import contextmanager

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
DEFAULT_TRIM_THRESHOLD = 128 * 1024
DEFAULT_MMAP_MAX = 65536
"""glibc's documented defaults, restored on exit."""


def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (it has ``mallopt`` and ``malloc_trim``), else None."""
    try:
        library = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    if not (hasattr(library, "mallopt") and hasattr(library, "malloc_trim")):
        return None
    return library


@contextmanager
def retained_heap() -> Iterator[bool]:
    """Within the block, large allocations come from the heap and freed memory is kept; yields whether
    the policy applies (False where the C library is not glibc)."""
    library = _glibc()
    if library is None:
        yield False
        return
    library.mallopt(M_MMAP_MAX, 0)
    library.mallopt(M_TRIM_THRESHOLD, -1)  # -1: never trim
    try:
        yield True
    finally:
        library.mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
        library.mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
        library.malloc_trim(0)
