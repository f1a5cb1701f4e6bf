"""Benchmark: many files through `digitnet predict` — one process, every core, a Dask cluster.

Writes 10,000 image files as people send them (MNIST test digits, dark on light paper, 28 to
400 px, a fifth as JPEG), then times `digitnet predict FOLDER --json` with --jobs 1 and
--jobs 2 and through a 2-worker `distributed.LocalCluster`, sampling the resident memory of
the command and of each worker process as it runs. Then 100,000 files (the 10,000 linked ten
times), streamed: the command's memory must stay flat.

Targets (the scale-out issue): --jobs 2 >= 1.8x the files/s of --jobs 1; <= 150 MB a worker;
100,000 files with flat memory; the cluster within 20 % of --jobs 2.

    python benchmarks/bench_many.py [--files 10000] [--repeats 3] [--no-dask]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import row
from PIL import Image

from digitnet.data import load_mnist

TARGET_SPEEDUP = 1.8
TARGET_WORKER_MB = 150
TARGET_CLUSTER_SHARE = 0.8  # of --jobs 2's files/s, at least


def write_files(folder: Path, count: int, seed: int = 0) -> None:
    """``count`` digit images of mixed sizes and formats, 1,000 to a sub-folder."""
    _, (x_test, _) = load_mnist()
    rng = np.random.default_rng(seed)
    for i in range(count):
        side = int(rng.integers(28, 401))
        digit = Image.fromarray(255 - x_test[i % len(x_test)]).resize((side, side))
        part = folder / f"{i // 1000:03d}"
        part.mkdir(exist_ok=True)
        out = io.BytesIO()
        jpeg = rng.random() < 0.2
        digit.save(out, "JPEG" if jpeg else "PNG", quality=90)
        (part / f"{i:06d}.{'jpg' if jpeg else 'png'}").write_bytes(out.getvalue())


def link_copies(source: Path, folder: Path, copies: int) -> None:
    """``copies`` hard-linked copies of the files under ``source``: many files, little disk."""
    for k in range(copies):
        for path in source.rglob("*.*"):
            target = folder / f"copy{k}" / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(entry.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return found


def run(args: list[str], env=None) -> dict:
    """``digitnet predict ARGS --json`` to completion, its memory sampled every 0.1 s."""
    start = time.perf_counter()
    command = [sys.executable, "-m", "digitnet", "predict", *args, "--json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    lines, main, workers = 0, [], {}
    os.set_blocking(process.stdout.fileno(), False)
    while process.poll() is None:
        lines += (process.stdout.read() or b"").count(b"\n")
        main.append(rss_mb(process.pid))
        for child in children(process.pid):
            workers[child] = max(workers.get(child, 0.0), rss_mb(child))
        time.sleep(0.1)
    lines += (process.stdout.read() or b"").count(b"\n")
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "files": lines, "files_per_second": lines / seconds,
            "main_mb": main, "worker_mb": max(workers.values(), default=0.0)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-dask", action="store_true")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args()
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        files = Path(tmp) / "files"
        files.mkdir()
        write_files(files, args.files)
        print(f"{args.files:,} image files, 28-400 px, a fifth JPEG; medians of {args.repeats}")
        runs: dict[str, list[dict]] = {"1": [], "2": [], "dask": []}
        cluster = None
        if not args.no_dask:
            from distributed import LocalCluster

            cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                   dashboard_address=None)  # fmt: skip
        try:
            for _ in range(args.repeats):  # interleaved: drift of the host hits all alike
                for jobs in ("1", "2"):
                    runs[jobs].append(run([str(files), "--jobs", jobs]))
                if cluster is not None:
                    runs["dask"].append(run([str(files), "--dask", cluster.scheduler_address]))
        finally:
            if cluster is not None:
                cluster.close()
        speed = {k: statistics.median(r["files_per_second"] for r in v)
                 for k, v in runs.items() if v}  # fmt: skip
        results["files_per_second"] = {k: [r["files_per_second"] for r in v]
                                       for k, v in runs.items()}  # fmt: skip
        print(row("--jobs 1", f"{speed['1']:.0f} files/s"))
        ratio = speed["2"] / speed["1"]
        verdict = "meets" if ratio >= TARGET_SPEEDUP else "MISSES"
        print(row("--jobs 2", f"{speed['2']:.0f} files/s",
                  f"{ratio:.2f}x --jobs 1: {verdict} the {TARGET_SPEEDUP}x target"))  # fmt: skip
        worker = max(r["worker_mb"] for r in runs["2"])
        verdict = "meets" if worker <= TARGET_WORKER_MB else "MISSES"
        results["worker_mb"] = worker
        print(row("a worker's memory", f"{worker:.0f} MB",
                  f"{verdict} the {TARGET_WORKER_MB} MB target (peak of any)"))  # fmt: skip
        if "dask" in speed:
            share = speed["dask"] / speed["2"]
            verdict = "meets" if share >= TARGET_CLUSTER_SHARE else "MISSES"
            print(row("Dask LocalCluster, 2 workers", f"{speed['dask']:.0f} files/s",
                      f"{share:.2f} of --jobs 2: {verdict} (within 20 %)"))  # fmt: skip

        many = Path(tmp) / "many"
        link_copies(files, many, 10)
        streamed = run([str(many), "--jobs", "2"])
        memory = streamed["main_mb"]
        early = max(memory[len(memory) // 10 : len(memory) // 5] or memory)
        late = max(memory[-len(memory) // 5 :] or memory)
        results["streamed"] = {"files": streamed["files"], "seconds": streamed["seconds"],
                               "main_mb_early": early, "main_mb_late": late,
                               "worker_mb": streamed["worker_mb"]}  # fmt: skip
        flat = late <= early * 1.1 + 5
        shape = "flat" if flat else "GROWS"
        print(row(f"{streamed['files']:,} files streamed", f"{streamed['seconds']:.0f} s",
                  f"the command {early:.0f} MB early, {late:.0f} MB late: {shape};"
                  f" workers {streamed['worker_mb']:.0f} MB"))  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
