"""The package as users get it: run by .ci/run with the python of a fresh environment where only
the built wheel is installed, from a folder outside the source tree. A file missing from the
wheel (a bundled model, the page's static files, MNIST) fails here."""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

import digitnet
from digitnet.data import load_mnist

assert "site-packages" in digitnet.__file__, f"not the installed package: {digitnet.__file__}"
_, (x_test, y_test) = load_mnist()
folder = Path(tempfile.mkdtemp())
Image.fromarray(255 - x_test[0]).resize((112, 112)).save(folder / "digit.png")
number = np.hstack([np.pad(255 - x_test[i], ((4, 4), (6, 6)), constant_values=255)
                    for i in (1, 2, 3)])  # fmt: skip
Image.fromarray(number).resize((number.shape[1] * 3, number.shape[0] * 3)).save(folder / "n.png")
digitnet_command = [str(Path(sys.executable).with_name("digitnet"))]


def run(*args: str) -> str:
    done = subprocess.run([*digitnet_command, *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


predicted = json.loads(run("predict", "--json", str(folder / "digit.png")))
assert predicted["digit"] == y_test[0], predicted
read = run("read", str(folder / "n.png")).strip().rsplit(": ", 1)[1]
assert read == "".join(str(y_test[i]) for i in (1, 2, 3)), read
assert "digitnet serve" in run("serve", "--help")
print(f"wheel: predict {predicted['digit']}, read {read}, from {Path(digitnet.__file__).parent}")
