"""The models a server offers: loaded once at start-up, looked up by name — never by a path that
arrives with a request."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from digitnet import insight
from digitnet.modelcard import Scorecard, scorecard
from digitnet.nn import load_model
from digitnet.nn.errors import NNError
from digitnet.reading.checker import bundled_checker
from digitnet.reading.pairs import bundled_pair_reader
from digitnet.reading.recognizer import Recognizer
from digitnet.zoo import BEST, names_bundled_model, resolve_model

DEFAULT_MODELS = (BEST, "tutorial")  # the best bundled model first: the default


@dataclass
class ServedModel:
    """One model of the catalogue. ``load`` makes a fresh copy (for work done off the event
    loop, which must not share layer caches with the requests being served)."""

    name: str
    source: str  # as named at start-up: a bundled model's name or a file path
    recognizer: Recognizer
    load: Callable[[], object]
    trained: bool = False  # made by a training started on this server
    _results: Scorecard | None = field(default=None, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    @property
    def model(self):
        return self.recognizer.model

    @property
    def ref(self) -> tuple[str, str]:
        """What a worker process needs to find it: its name and where it was loaded from."""
        return self.name, self.source

    @property
    def kind(self) -> str:
        """ "cnn" when any stage convolves, else "mlp" (the tutorial's picture applies)."""
        return "cnn" if any(s.kind == "conv" for s in insight.stages(self.model)) else "mlp"

    async def results(self) -> Scorecard:
        """The test-set scores, computed once (seconds for a CNN) on a copy in a worker thread,
        so predictions keep being served meanwhile."""
        async with self._lock:
            if self._results is None:
                self._results = await asyncio.to_thread(lambda: scorecard(self.load()))
        return self._results


class Catalog:
    """Models by name, in the order given; the first is the default."""

    def __init__(self, models: list[ServedModel]):
        if not models:
            raise NNError("no models to serve")
        self.models = {m.name: m for m in models}
        self.default = models[0].name
        self.trained: list[str] = [m.name for m in models if m.trained]  # oldest first

    def get(self, name: str | None) -> ServedModel:
        """The model called ``name`` (the default for None); KeyError with the names known."""
        served = self.models.get(self.default if name is None else name)
        if served is None:
            known = ", ".join(self.models)
            raise KeyError(f"unknown model {name!r}; this server has: {known}")
        return served

    def add_trained(self, name: str, path: Path) -> list[str]:
        """Serve the model file a training wrote (a path the server made, never a request's);
        beyond MAX_TRAINED trained models, the oldest are forgotten: their names."""
        self.models[name] = trained_model(name, path)
        self.trained.append(name)
        forgotten = self.trained[: max(0, len(self.trained) - MAX_TRAINED)]
        for old in forgotten:
            self.forget(old)
        return forgotten

    def forget(self, name: str) -> None:
        """Serve the trained model ``name`` no more."""
        self.models.pop(name, None)
        self.trained.remove(name)

    def ensure(self, name: str, source: str) -> ServedModel:
        """The model ``name``, loaded from ``source`` first if this catalogue has not got it
        (a worker process meeting a model trained after it started)."""
        if name not in self.models:
            self.add_trained(name, Path(source))
        return self.models[name]


MAX_TRAINED = 8  # trained models served at once (a tutorial-sized model: ~60 KB)


def trained_model(name: str, path: Path) -> ServedModel:
    model = load_model(path)
    return ServedModel(name, str(path), Recognizer(model), lambda: load_model(path), trained=True)


def load_catalog(specs: list[str] | None = None) -> Catalog:
    """Load each model named on the command line (bundled names or files; default: the bundled
    best model and the tutorial network). Names are the bundled name or the file's stem."""
    bundled_checker()  # reading's own networks, loaded with the models: the first number
    bundled_pair_reader()  # read waits for nothing
    models: list[ServedModel] = []
    for spec in specs or DEFAULT_MODELS:
        model = resolve_model(spec)
        name = spec if names_bundled_model(spec) else Path(spec).stem
        taken = {m.name for m in models}
        unique, n = name, 2
        while unique in taken:
            unique, n = f"{name}-{n}", n + 1
        models.append(ServedModel(unique, spec, Recognizer(model), lambda s=spec: resolve_model(s)))
    return Catalog(models)
