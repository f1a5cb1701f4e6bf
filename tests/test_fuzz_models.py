"""Damaged model files of every format digitnet reads — seeded mutations of real ones: bytes
changed, integer fields set to extremes, files cut short or stretched, a JSON value replaced
by a hostile one. Each is a model that reads a digit into ten probabilities, or one clear
error line: never another exception, a crash (a `.h5` with 16 bytes changed ended digitnet
with a segmentation fault), a hang, or memory the file did not earn.
``benchmarks/fuzz_models.py`` runs thousands."""

import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
from modelfiles import mutations, try_model

from digitnet.nn.isolation import SECONDS

HERE = Path(__file__).parent
FILES = {
    "npz": HERE.parent / "src/digitnet/models/tutorial.npz",
    "keras": HERE / "keras_fixtures/tutorial.keras",
    "h5": HERE / "keras_fixtures/tutorial.h5",
}
COUNT = 150


@pytest.mark.slow
@pytest.mark.parametrize("kind", FILES)
def test_a_damaged_model_file_is_a_working_model_or_one_clear_error(kind):
    if kind != "npz":
        pytest.importorskip("h5py")
    content = FILES[kind].read_bytes()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    outcomes = []
    for data in mutations(content, COUNT, seed=2026):
        started = time.monotonic()
        outcomes.append(try_model(data, f"damaged.{kind}"))
        assert time.monotonic() - started < SECONDS + 5
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before < 200
    assert 0 < outcomes.count("loaded") < COUNT  # some damage is harmless, most is not


def test_an_h5_file_that_crashes_the_hdf5_library_is_one_line(tmp_path):
    """One byte changed in tutorial.h5 (found by the fuzzer): HDF5 dereferences it and the
    process dies of a segmentation fault — before, digitnet itself, exit 139 and no word."""
    pytest.importorskip("h5py")
    damaged = bytearray(FILES["h5"].read_bytes())
    damaged[1009] = 21
    path = tmp_path / "damaged.h5"
    path.write_bytes(damaged)
    ended = subprocess.run([sys.executable, "-m", "digitnet", "summary", str(path)],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert ended.returncode == 1 and ended.stdout == ""
    assert ended.stderr == (f"digitnet summary: error: {path}: reading its HDF5 part crashed"
                            " the HDF5 library (signal 11)\n")  # fmt: skip
