"""Keep freed memory for reuse instead of handing it back to the OS after every step.

Training allocates the same large temporaries (im2col windows, activations, gradients) at every
step. glibc's malloc serves blocks above its mmap threshold with fresh mmap()s and returns them
on free(), so each step pays the page faults of touching new memory again — about a fifth of a
CNN step here. Raising the thresholds lets the heap keep and reuse those blocks. This changes
process-wide malloc settings, so only the application (the ``digitnet`` command, benchmarks)
calls it, never the library on import.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
KEEP_BYTES = 1 << 30


def reuse_freed_memory() -> bool:
    """Tune glibc malloc to reuse large freed blocks; True if it applied (Linux with glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    applied = [
        mallopt(M_MMAP_THRESHOLD, KEEP_BYTES),
        mallopt(M_TRIM_THRESHOLD, KEEP_BYTES),
        mallopt(M_TOP_PAD, 64 << 20),
    ]
    return all(applied)


def give_back_freed_memory() -> None:
    """Hand the heap's free pages back to the OS (glibc's malloc_trim; elsewhere nothing):
    after a large image, worked on in a thread of its own whose malloc arena kept ~170 MB of
    a 40-megapixel RGBA scan for good."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass
