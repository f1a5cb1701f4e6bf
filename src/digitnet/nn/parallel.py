"""Element-wise passes split over the batch and run on a few threads at once.

NumPy releases the GIL inside its loops, so the samples of a large batch can go through an
element-wise pass (ReLU, pooling, copying windows) on every core at the same time. BLAS already
threads the GEMMs; these are the passes between them, which would otherwise run on one core.
Each sample's numbers are computed exactly as in one pass: results do not depend on the split.

``DIGITNET_THREADS`` sets the number of threads (default: the cores available, at most 4).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import numpy as np

from digitnet.blas import available_cores

MIN_ELEMENTS = 1 << 18  # smaller passes run in the calling thread: a hand-off costs ~20 µs


def _thread_count() -> int:
    setting = os.environ.get("DIGITNET_THREADS", "")
    if setting.isdigit() and int(setting) >= 1:
        return int(setting)
    return available_cores(at_most=4)


THREADS = _thread_count()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def over_batch(work: Callable[[slice], object], n: int, elements: int) -> None:
    """Call ``work(rows)`` on slices of ``range(n)`` that together cover it once — at the same
    time on THREADS threads when the pass touches at least MIN_ELEMENTS numbers, else once
    with all rows. ``work`` must only write the rows it is given."""
    parts = min(THREADS, n)
    if parts < 2 or elements < MIN_ELEMENTS:
        work(slice(0, n))
        return
    global _pool, _pool_size
    if _pool_size < parts - 1:  # created on first use, with a helper per extra part
        _pool, _pool_size = ThreadPoolExecutor(parts - 1, thread_name_prefix="digitnet"), parts - 1
    bounds = [n * k // parts for k in range(parts + 1)]
    slices = [slice(a, b) for a, b in pairwise(bounds)]
    futures = [_pool.submit(work, rows) for rows in slices[1:]]
    work(slices[0])  # the calling thread takes a share too
    for future in futures:
        future.result()


def by_rows(function: Callable[..., object], *arguments) -> None:
    """``function(*arguments)``, where the arrays among the arguments share their first axis
    (the batch) and ``function`` writes only into them, row by row: called once on the whole
    arrays when the first holds fewer than MIN_ELEMENTS numbers (no slicing, no hand-off: the
    small batches of the tutorial's network pay nothing), else on row slices of every array
    at the same time (``over_batch``)."""
    first = arguments[0]
    if THREADS < 2 or first.size < MIN_ELEMENTS:
        function(*arguments)
        return

    def part(rows: slice) -> None:
        function(*(a[rows] if isinstance(a, np.ndarray) else a for a in arguments))

    over_batch(part, len(first), first.size)
