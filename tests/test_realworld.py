"""Regression on real handwriting that is not MNIST (USPS, Semeion): a fixed sample of each
set through the image pipeline and the bundled CNN. The sets live outside the project
(../shared/data/realworld); the test skips only where they are absent."""

from pathlib import Path

import numpy as np
import pytest

from digitnet.data import read_labelled_folder
from digitnet.evaluation import evaluate_files
from digitnet.zoo import bundled_model

ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "realworld"
pytestmark = pytest.mark.skipif(not ROOT.is_dir(), reason="../shared/data/realworld is absent")


@pytest.mark.parametrize("name, floor", [("usps", 0.97), ("semeion", 0.88)])  # the targets
def test_bundled_model_on_real_handwriting(name, floor):
    paths, labels = read_labelled_folder(ROOT / name)
    sample = np.random.default_rng(0).choice(len(paths), 300, replace=False)
    result = evaluate_files(bundled_model("cnn"), [paths[i] for i in sample], labels[sample])
    assert result["rejected"] == 0
    assert result["accuracy"] >= floor
