"""Process pools that stop at once: what ``many`` (answering files), the writing of training
pages (``writing``) and the training of the reader's networks run their work on.

``concurrent.futures.ProcessPoolExecutor`` waits for the work it has out when it is shut down,
and a worker killed while it wrote a result leaves the pool's thread waiting for the rest of
it — and the interpreter, which joins that thread at exit, with it (CPython 3.11).
``stop_now`` ends a pool without either wait; ``in_processes`` maps a function over jobs and
stops the pool so on Ctrl-C or a failure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

STOP_SECONDS = 5  # a terminated worker has this long to end before it is killed


def in_processes(function: Callable[[Any], Any], jobs: Sequence[Any], workers: int) -> list:
    """``function(job)`` for each job (a module-level function: it runs in ``workers`` worker
    processes), the results in the jobs' order. Ctrl-C or a failure stops the workers at once
    (``stop_now``), not after every job sent out."""
    pool = ProcessPoolExecutor(max(1, min(workers, len(jobs))))
    try:
        results = list(pool.map(function, jobs))
    except BaseException:
        stop_now(pool)
        raise
    pool.shutdown()
    return results


def stop_now(pool) -> None:
    """Shut a ProcessPoolExecutor down without waiting for the work it has out: its workers
    are terminated. A worker killed while it was writing a result leaves half a message in
    the results pipe, and the pool's own thread would wait for the rest forever — and the
    interpreter, which joins that thread at exit, with it (CPython 3.11). Once the
    workers are gone, this process's end of the pipe is closed too: the thread reads the end
    of the pipe instead, and finishes."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    results = getattr(pool, "_result_queue", None)  # shutdown forgets it
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(STOP_SECONDS)
        if process.is_alive():
            process.kill()
            process.join()
    if results is not None:
        results._writer.close()
