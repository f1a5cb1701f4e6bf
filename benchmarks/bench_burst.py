"""Benchmark: twenty 39-megapixel scans uploaded at once to a fresh `digitnet serve`: the peak
and final resident memory of each of its processes (the first hardening issue's report: 10.4
GB at the peak and 3.7 GB kept, with one worker; the second's, with 16-bit PNGs: 1,167 MB).

    python benchmarks/bench_burst.py [--workers 1] [--uploads 20] [--kind gray|16-bit|...]
"""

from __future__ import annotations

from digitnet.blas import short_blas_spin

short_blas_spin()  # as the digitnet command does, before NumPy loads OpenBLAS

import argparse
import asyncio
import time

from bench_soak import PAGE_KINDS, ask, big_page, http, processes, status_mb
from bench_web import free_port, start_server
from common import row

from digitnet.data import load_mnist


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, help="default: digitnet serve's (one per core)")
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--kind", choices=PAGE_KINDS, default="gray", help="of the scans")
    args = parser.parse_args()
    _, (x_test, _) = load_mnist()
    request = http("POST", "/api/predict", big_page(x_test[0], args.kind))
    port = free_port()
    server, workers = start_server(port, args.workers)
    try:
        pids = processes(server.pid)

        async def burst():
            return await asyncio.gather(*(ask(port, request) for _ in range(args.uploads)))

        start = time.perf_counter()
        statuses = asyncio.run(burst())
        seconds = time.perf_counter() - start
        time.sleep(1)
        names = ["server"] + [f"worker {i + 1}" for i in range(len(pids) - 1)]
        answers = sorted(set(statuses))
        print(f"{args.uploads} uploads of a 39-MP {args.kind} scan at once to digitnet serve"
              f" ({workers} worker(s)): answers {answers}, {seconds:.1f} s")  # fmt: skip
        for name, pid in zip(names, pids, strict=True):
            peak, now = status_mb(pid, "VmHWM"), status_mb(pid)
            print(row(f"  {name}: peak / after", f"{peak:.0f} / {now:.0f} MB"))
    finally:
        server.terminate()
        server.wait(20)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
