"""Crafting model files for the tests: change what a saved file holds."""

import json

import numpy as np

from digitnet.nn.io import META_KEY


def rewrite(path, change):
    """Apply ``change(description, arrays)`` to a saved model file."""
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    description = json.loads(arrays[META_KEY].tobytes())
    change(description, arrays)
    arrays[META_KEY] = np.frombuffer(json.dumps(description).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
