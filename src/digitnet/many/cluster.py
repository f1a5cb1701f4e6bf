"""The chunks of a run answered on a Dask cluster (``distributed``): the model sent to every
worker once, the files read by the workers from a path they share."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator

from digitnet.many.task import Entry, Task, answer_chunk
from digitnet.many.window import WINDOW, next_out, windowed

CONNECT_SECONDS = 10  # to reach a Dask scheduler


def answer_on_cluster(pending: Iterator[list[Entry]], task: Task, address: str,
                       ordered: bool) -> Iterator[dict]:  # fmt: skip
    """The chunks ``pending`` answered on the Dask cluster whose scheduler is at ``address``."""
    try:
        from distributed import Client
    except ImportError:
        raise ImportError(
            "--dask needs the distributed package: pip install 'digitnet[dask]'"
        ) from None
    client = connect_to_scheduler(Client, address)
    with client:
        shipped = client.scatter(task, broadcast=True)  # the model, once to every worker
        workers = len(client.scheduler_info()["workers"]) or 1
        cluster = Cluster(client, shipped)
        yield from windowed(cluster, pending, workers * WINDOW, ordered)


def connect_to_scheduler(Client, address: str):
    """A ``distributed.Client`` of the scheduler at ``address``, or one ConnectionError that
    says why not, within CONNECT_SECONDS whatever answers there: Client's
    own timeout covered the connection, not the handshake after it (a listener that never
    spoke hung digitnet for good), a server that is not Dask's made it allocate 3.07 EiB, and
    an address it cannot use (ucx://) was a TypeError traceback."""
    outcome: list = []

    def connect() -> None:
        try:
            outcome.append(Client(address, timeout=CONNECT_SECONDS))
        except BaseException as err:  # said in the caller's thread, as one line
            outcome.append(err)

    thread = threading.Thread(target=connect, daemon=True, name="dask-connect")
    thread.start()
    thread.join(CONNECT_SECONDS)
    if not outcome:
        raise ConnectionError(
            f"nothing at {address} answered as a Dask scheduler within {CONNECT_SECONDS} s;"
            " start one with `dask scheduler`"
        )
    found = outcome[0]
    if isinstance(found, (OSError, TimeoutError)):  # a wrong address, or no scheduler there
        raise ConnectionError(
            f"no Dask scheduler answers at {address} ({found}); start one with `dask scheduler`"
        )
    if isinstance(found, ValueError):
        raise ConnectionError(
            f"{address!r} is not a Dask scheduler's address ({found}); e.g. tcp://host:8786"
        )
    if isinstance(found, BaseException):  # MemoryError, TypeError...: not Dask talking
        raise ConnectionError(
            f"{address} does not answer as a Dask scheduler ({type(found).__name__}); give"
            " the address `dask scheduler` prints, e.g. tcp://host:8786"
        )
    return found


class Cluster:
    """The chunks as tasks of a Dask cluster (``distributed``)."""

    def __init__(self, client, task_future):
        self.client, self.task = client, task_future

    def submit(self, chunk: list[Entry]):
        return self.client.submit(answer_chunk, self.task, chunk, pure=False)

    def collect(self, out: deque, ordered: bool) -> list[dict]:
        from distributed import wait

        future, _ = next_out(out, ordered, lambda fs: wait(fs, return_when="FIRST_COMPLETED"))
        return future.result()
