"""What every file gets: a ``Task`` (predict or read, with a model), and ``answer_chunk``, which
answers a chunk of files wherever the work is done — this process, a worker, a Dask worker."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from digitnet.nn import load_model
from digitnet.nn.io import read_model_bytes
from digitnet.reading.lattice import read_with
from digitnet.reading.recognizer import Recognizer
from digitnet.vision import ImageError
from digitnet.zoo import BEST, model_path

CHUNK = 32  # files per task: one forward pass for a predict chunk
WORKER_DIED = "a worker process died reading it"
ANSWERED = "answered already"  # an entry of a resumed run: its answer is in the output
KINDS = ("predict", "read")

Entry = tuple[str, str | None]  # a file's name, and why it cannot be read (None: try it)


@dataclass(frozen=True)
class Task:
    """What every file gets: ``kind`` "predict" (the digit, ``top`` most probable too) or
    "read" (the number), with the model whose file content is ``model``."""

    kind: str
    model_name: str
    model: bytes = field(repr=False)
    top: int = 0
    digest: str = ""  # of the model's bytes: a worker keeps one loaded model per digest

    @classmethod
    def of(cls, kind: str, model: str | None = None, top: int = 0) -> Task:
        """The task for a model named as on the command line: None (the best bundled one), a
        bundled model's name, or a model file (digitnet or Keras). The model is read as any
        model file is, and loaded here once: a file that is no model is one ModelFileError
        before any image is answered (in workers it failed each one's start, file by file)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
        content = read_model_bytes(model_path(model or BEST))
        task = cls(kind, model or BEST, content, top, hashlib.sha256(content).hexdigest())
        recognizer_for(task)  # kept for the answers given in this process
        return task


_loaded: dict[str, Any] = {}  # a worker's recognisers, by model digest


def recognizer_for(task: Task):
    """The task's model, loaded once per process."""
    if task.digest not in _loaded:
        _loaded[task.digest] = Recognizer(load_model(task.model_name, content=task.model))
    return _loaded[task.digest]


def answer_chunk(task: Task, chunk: Sequence[Entry]) -> list[dict]:
    """Each file's answer: ``{"file": name, ...}`` with the prediction or the reading, or
    with ``error``. Runs wherever the work is done."""
    recognizer = recognizer_for(task)
    readable = [(row, name) for row, (name, problem) in enumerate(chunk) if problem is None]
    names = [name for _, name in readable]
    if task.kind == "predict":  # each file in its chunk's row: its answer, to the last bit
        places = [row for row, _ in readable]
        results = iter(recognizer.recognize_many(names, batch=CHUNK, rows=places))
    else:
        results = iter(_read_each(recognizer, names))
    records = []
    for name, problem in chunk:
        if problem == ANSWERED:
            continue
        result = next(results) if problem is None else ImageError(problem)
        if isinstance(result, ImageError):  # the record names the file; the reason need not
            records.append({"file": name, "error": result.reason})
        elif task.kind == "predict":
            records.append({"file": name, **result.to_dict(task.top)})
        else:
            records.append({"file": name, **result.to_dict()})
    return records


def _read_each(recognizer, names) -> Iterator[Any]:
    for name in names:
        try:
            yield read_with(recognizer, name)
        except ImageError as err:
            yield err
        except Exception as err:  # a bug, but one file's: the others keep their answers
            yield ImageError(f"could not be read ({type(err).__name__}: {err})")
