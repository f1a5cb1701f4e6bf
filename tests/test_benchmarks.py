"""The benchmarks that measure on real data a new machine may not have (``../shared/data/
realworld``, the parish registers) say in one line that a set is absent and go on."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize(
    "script, arguments",
    [
        ("realworld.py", ["--root", "{absent}"]),
        ("bench_documents.py", ["--cheques", "{absent}", "--registers", "{absent}"]),
    ],
)
def test_a_benchmark_skips_an_absent_set_in_one_line(script, arguments, tmp_path):
    absent = str(tmp_path / "nothing here")
    run = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *(a.format(absent=absent) for a in arguments)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=BENCHMARKS,
    )
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    skipped = [line for line in run.stdout.splitlines() if "nothing here" in line]
    assert len(skipped) == 2 and all("skipped" in line or "absent" in line for line in skipped)
