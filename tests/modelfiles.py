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


# --------------------------------------------------------------------------------- fuzzing

HOSTILE_VALUES = [-1, 0, 1, 2**31, 2**63, -(2**63), 1e308, -1e308, 0.5, "x", "", None, True,
                  [], {}, [[[[]]]], {"class": "Dense"}, [7] * 1000, "Dense", "relu"]  # fmt: skip
EXTREME_FIELDS = [0, 1, 2**15, 2**16 - 1, 2**31 - 1, 2**31, 2**32 - 1, 2**63, 2**64 - 1]


def mutations(content: bytes, count: int, seed: int):
    """``count`` damaged copies of a model file's bytes, the same for the same seed: bytes
    changed at random places (1 to 16 of them), an integer field set to an extreme value,
    the file cut short, a stretch of it repeated — and, for a zip (.npz, .keras), its JSON
    with one value replaced by a hostile one (``HOSTILE_VALUES``), re-packed so the zip's
    checksums hold and the change reaches the reader."""
    import random

    rng = random.Random(seed)
    for _ in range(count):
        kind = rng.randrange(5 if content.startswith(b"PK") else 4)
        data = bytearray(content)
        if kind == 0:
            for _ in range(rng.randint(1, 16)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif kind == 1:
            width = rng.choice((2, 4, 8))
            value = rng.choice(EXTREME_FIELDS) % 2 ** (8 * width)
            at = rng.randrange(len(data) - width)
            data[at : at + width] = value.to_bytes(width, rng.choice(("little", "big")))
        elif kind == 2:
            del data[rng.randrange(len(data)) :]
        elif kind == 3:
            start = rng.randrange(len(data))
            piece = data[start : start + rng.randint(1, 4096)]
            at = rng.randrange(len(data))
            data[at:at] = piece * rng.randint(1, 3)
        else:
            data = bytearray(_json_mutated(bytes(data), rng))
        yield bytes(data)


def _json_mutated(content: bytes, rng) -> bytes:
    """A zip's JSON member (a digitnet description or a Keras config) with one value replaced,
    the zip written again."""
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    name = f"{META_KEY}.npy" if f"{META_KEY}.npy" in members else "config.json"
    raw = members[name]
    stored = name.endswith(".npy")  # the description is a uint8 array holding the JSON
    if stored:
        raw = np.lib.format.read_array(io.BytesIO(raw)).tobytes()
    document = json.loads(raw)
    nodes = []  # (container, key) of every value
    stack = [document]
    while stack:
        value = stack.pop()
        keys = value.keys() if isinstance(value, dict) else range(len(value))
        for key in keys:
            nodes.append((value, key))
            if isinstance(value[key], (dict, list)):
                stack.append(value[key])
    container, key = rng.choice(nodes)
    container[key] = rng.choice(HOSTILE_VALUES)
    text = json.dumps(document).encode()
    if stored:
        out = io.BytesIO()
        np.lib.format.write_array(out, np.frombuffer(text, dtype=np.uint8))
        members[name] = out.getvalue()
    else:
        members[name] = text
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return out.getvalue()


def try_model(content: bytes, name: str) -> str:
    """What digitnet makes of a model file's bytes, as its tools use a model: "loaded" — it
    reads a digit into ten probabilities that are numbers summing to 1 — or "refused" with
    one ModelFileError (or NNError) line ("absorbed" when the HDF5 reader's own process
    crashed or ran out of time). Anything else (another exception) is raised."""
    from digitnet.nn import NNError, load_model
    from digitnet.reading.recognizer import Recognizer

    try:
        recognizer = Recognizer(load_model(name, content=content))
    except NNError as err:
        said = str(err)
        assert "\n" not in said, said
        absorbed = "crashed the HDF5 library" in said or "took more than" in said
        return "absorbed" if absorbed else "refused"
    digit = np.zeros((1, 28, 28), np.float32)
    digit[0, 6:22, 12:16] = 1
    probabilities = recognizer.predict_inputs(digit)
    assert probabilities.shape == (1, 10) and np.isfinite(probabilities).all()
    assert abs(float(probabilities.sum()) - 1) < 1e-3
    return "loaded"
