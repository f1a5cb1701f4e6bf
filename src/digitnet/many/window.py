"""Keeping a few chunks out at once, whoever works on them (this machine's processes or a Dask
cluster): enough to keep every worker busy, few enough that a million files stay flat."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from digitnet.many.task import Entry

WINDOW = 4  # chunks out per worker at once


def windowed(workers, pending: Iterator[list[Entry]], window: int, ordered: bool):
    """Keep ``window`` chunks out at once; hand back each one's answers as it is done (in
    order when ``ordered``)."""
    out: deque = deque()  # (future, chunk)
    for chunk in pending:
        out.append((workers.submit(chunk), chunk))
        if len(out) >= window:
            yield from workers.collect(out, ordered)
    while out:
        yield from workers.collect(out, ordered)


def next_out(out: deque, ordered: bool, first_done) -> tuple:
    """Take (future, chunk) from ``out``: the oldest, or (not ``ordered``) one that is done —
    ``first_done(futures)`` waits for one and returns (done, not done), as both
    ``concurrent.futures.wait`` and ``distributed.wait`` do."""
    if not ordered:
        done, _ = first_done([f for f, _ in out])
        out.rotate(-next(i for i, (f, _) in enumerate(out) if f in done))
    return out.popleft()
