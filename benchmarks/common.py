"""Helpers shared by the benchmarks: timing with medians, peak memory, optional PyTorch, the
BLAS kernels NumPy runs on."""

from __future__ import annotations

import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

# Runs the CLI in a fresh interpreter and reports that process's own high-water mark (VmHWM).
# RUSAGE_CHILDREN would count the forked copy of the (large) benchmark process instead.
_PEAK_PROBE = """
import sys
from digitnet.cli import main
code = main(sys.argv[1:])
status = open("/proc/self/status").read()
peak_kb = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))
print(f"PEAK_KB={peak_kb}", file=sys.stderr)
sys.exit(code)
"""


def median_time(run: Callable[[], object], repeats: int = 3) -> tuple[float, list[float]]:
    """Median wall time of ``repeats`` calls of ``run`` and the individual times (seconds)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def peak_memory_of_cli(args: list[str]) -> tuple[float, float]:
    """Run ``digitnet ARGS`` to completion; return (wall seconds, its peak resident memory MB)."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", _PEAK_PROBE, *args],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seconds = time.perf_counter() - start
    peak_kb = int(result.stderr.rsplit("PEAK_KB=", 1)[1].split()[0])
    return seconds, peak_kb / 1024


def torch_installed() -> bool:
    """Whether PyTorch can be imported — without importing it: it is loaded only in the
    processes that time it, never beside digitnet's runs."""
    return importlib.util.find_spec("torch") is not None


def json_of_fresh_process(args: list[str], env: dict[str, str] | None = None) -> dict:
    """Run ``python ARGS`` in a fresh interpreter (nothing of this one's loaded libraries or
    warmed-up state) and return the JSON object its last line of output prints."""
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          check=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def blas_kernels() -> str:
    """The BLAS NumPy runs on and the kernels it picked for this CPU (``threadpoolctl``), and
    whether the environment forced them: every GEMM's speed depends on it. (Some machines set
    OPENBLAS_CORETYPE for older OpenBLAS builds' sake; on this project's AVX-512 machine it
    names Haswell, where NumPy 2's OpenBLAS picks SkylakeX itself, and GEMMs run 1.5-1.8x
    slower. To measure NumPy as it runs elsewhere, unset it and OPENBLAS_L2_SIZE for the
    benchmark's command alone: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python ...``.)"""
    forced = os.environ.get("OPENBLAS_CORETYPE")
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        found = "unknown (pip install threadpoolctl to see)"
    else:
        blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
        wheel = Path(np.__file__).parent.parent / "numpy.libs"  # NumPy's own, not OpenCV's
        found = ", ".join(f"{i['internal_api']} {i['version']} {i.get('architecture', '')}, "
                          f"{i['num_threads']} threads" for i in
                          [i for i in blas if Path(i["filepath"]).parent == wheel] or blas
                          ) or "none found"  # fmt: skip
    return found + (f"; forced by OPENBLAS_CORETYPE={forced}" if forced else "")


def row(label: str, value: str, note: str = "") -> str:
    return f"  {label:<46} {value:>14}  {note}"
