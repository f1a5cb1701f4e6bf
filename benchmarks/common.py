"""Helpers shared by the benchmarks: timing with medians, peak memory, optional PyTorch."""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable


def median_time(run: Callable[[], object], repeats: int = 3) -> tuple[float, list[float]]:
    """Median wall time of ``repeats`` calls of ``run`` and the individual times (seconds)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def peak_rss_of_command(argv: list[str]) -> tuple[float, float]:
    """Run a command to completion; return (wall seconds, its peak resident memory in MB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak_kb <= before:
        print(
            "warning: an earlier child used more memory; peak may be understated", file=sys.stderr
        )
    return seconds, peak_kb / 1024


def try_import_torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def row(label: str, value: str, note: str = "") -> str:
    return f"  {label:<46} {value:>14}  {note}"
