"""The C allocator tuned for a server that takes big requests over and over.

By default glibc gives a block past 128 KB fresh pages from the kernel (mmap), raises that
line as such blocks are freed, and hands the top of its heap back past twice the line.
A turn at 100k tokens of history makes and frees several blocks of about 400 KB (its
body, its parsed text, the provider's request), and each time the kernel faulted their
pages in anew: about 700 page faults, 1.4 ms of CPU, per request (benchmarks/README.md).
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_BELOW = 16 * 2**20  # blocks under this come from the heap
KEEP_FREED = 64 * 2**20  # freed heap kept for reuse, not handed back


def keep_freed_memory() -> bool:
    """Serve blocks under 16 MB from the heap and keep up to 64 MB of it freed for reuse;
    whether the C library is glibc and took both (musl's mallopt does nothing, macOS has
    none)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_BELOW)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_FREED))
