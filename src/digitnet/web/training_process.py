"""A training started from the web page, in the process of its own it runs in: its settings
(``TrainSettings``, as ``digitnet train``'s options), and ``run_training``, which trains with
``digitnet.training.train`` — the very code of ``digitnet train`` — and a ``Reporter`` that
sends what happens through a pipe: ``progress`` every PROGRESS_STEPS steps (running loss and
accuracy, speed, time left, the first layer's weights as pictures), ``epoch``, then ``done``
with the saved model or ``error`` with the reason.
"""

from __future__ import annotations

import base64
import json
import signal
import time
from multiprocessing.connection import Connection
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from digitnet.nn import NNError, save_model
from digitnet.nn.callbacks import Callback
from digitnet.training import TrainConfig, train

PROGRESS_STEPS = 100  # a progress event every this many steps (ten an epoch at least)
PICTURED_NEURONS = 64  # at most this many first-layer neurons are drawn


class TrainSettings(BaseModel):
    """A training, named as ``digitnet train``'s options; every field optional: the
    tutorial's recipe (784-16-16-10, ReLU, cross-entropy, SGD 0.01, batch 32, 5 epochs)."""

    model_config = ConfigDict(extra="forbid")

    hidden: list[int] = Field(
        [16, 16], min_length=1, max_length=4, description="1-4 hidden layers of 1-512 neurons"
    )
    activation: Literal["relu", "sigmoid", "tanh"] = "relu"
    loss: Literal["sparse_categorical_crossentropy", "mean_squared_error"] = (
        "sparse_categorical_crossentropy"
    )
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(0.01, gt=0, le=10, description="learning rate")
    momentum: float = Field(0.0, description="SGD momentum, in [0, 1)")
    batch_size: int = Field(32, ge=1, le=1024)
    epochs: int = Field(5, ge=1, le=20)
    samples: int = Field(60_000, ge=100, le=60_000, description="training digits used")
    seed: int = Field(0, ge=0, le=2**31 - 1)

    def check(self) -> None:
        """What the field types cannot say, and what the engine checks (``digitnet.training``):
        raises ValueError with the reason."""
        if any(not 1 <= units <= 512 for units in self.hidden):
            raise ValueError(f"hidden layer sizes must be 1-512 neurons; got {self.hidden}")
        self.config().validate()

    def config(self, command: str = ""):
        """The ``digitnet.training.TrainConfig`` of these settings."""

        return TrainConfig(model="tutorial", hidden=tuple(self.hidden), activation=self.activation,
                           loss=self.loss, optimizer=self.optimizer, lr=self.lr,
                           momentum=self.momentum, batch_size=self.batch_size, epochs=self.epochs,
                           samples=self.samples, seed=self.seed, command=command)  # fmt: skip


class Reporter(Callback):
    """Sends a training's progress through ``connection`` and stops it when asked."""

    def __init__(self, connection: Connection):
        self.connection = connection
        self.step = 0  # steps done in all epochs
        self.epoch = 0
        self.sums: tuple[dict[str, float], int] = ({}, 0)  # at the last report: sums, rows

    def on_train_begin(self, logs=None):
        params = self.model.fit_params
        self.steps, self.epochs = params["steps"], params["epochs"]
        self.batch_size, self.samples = params["batch_size"], params["samples"]
        self.every = max(1, min(PROGRESS_STEPS, self.steps // 10))  # >= 10 an epoch
        self.started = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, step, logs=None):
        self.step += 1
        if step % self.every == self.every - 1 or step == self.steps - 1:
            self.send("progress", self.progress(step))
        if self.connection.poll():  # the server's only message: stop
            self.connection.recv()
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.send("epoch", {"epoch": epoch + 1, "epochs": self.epochs,
                            **{k: float(v) for k, v in logs.items() if k != "lr"}})  # fmt: skip

    def progress(self, step: int) -> dict[str, Any]:
        """Loss and accuracy over the steps since the last report (the epoch's running mean
        would jump back at each epoch's start), speed, time left, the first layer's weights."""
        seconds = time.perf_counter() - self.started
        total = self.steps * self.epochs
        rate = self.step / max(seconds, 1e-9)
        rows = min((step + 1) * self.batch_size, self.samples)
        running = self.model.running_logs(rows)  # means over the epoch's first ``rows``
        sums = {k: v * rows for k, v in running.items()}
        before, before_rows = self.sums if step >= self.every else ({}, 0)
        window = {k: (v - before.get(k, 0.0)) / (rows - before_rows) for k, v in sums.items()}
        self.sums = (sums, rows)
        return {
            "epoch": self.epoch + 1,
            "epochs": self.epochs,
            "step": self.step,
            "steps": total,
            "loss": float(window["loss"]),
            "accuracy": float(window["accuracy"]),  # compiled with metrics=["accuracy"]
            "steps_per_second": rate,
            "seconds_left": (total - self.step) / max(rate, 1e-9),
            "weights": first_layer_pictures(self.model),
        }

    def send(self, kind: str, data: dict[str, Any]) -> None:
        self.connection.send((kind, data))


def first_layer_pictures(model) -> dict[str, Any]:
    """The first dense layer's incoming weights, one 28x28 picture per neuron (the first
    PICTURED_NEURONS): uint8, 128 for a weight of 0, 0 and 255 for the layer's largest
    negative and positive weights; ``pixels`` is their bytes in base64, neuron after neuron."""
    W = model.layers[1].params["W"]  # (784, H): layers[0] is the Flatten
    shown = W[:, :PICTURED_NEURONS]
    scale = float(np.abs(shown).max()) or 1.0
    pictures = np.round(128 + 127 * shown.T / scale).astype(np.uint8)  # (k, 784)
    pixels = base64.b64encode(pictures.tobytes()).decode("ascii")
    return {"neurons": int(shown.shape[1]), "of": int(W.shape[1]), "size": [28, 28],
            "scale": scale, "pixels": pixels}  # fmt: skip


def run_training(connection: Connection, settings: dict[str, Any], out: str) -> None:
    """A training process's life: train as ``settings`` say, reporting through ``connection``,
    save the model to ``out`` and say ``done`` — or ``error`` with the reason."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group: the server stops us
    try:
        command = "POST /api/train " + json.dumps(settings, sort_keys=True)
        config = TrainSettings(**settings).config(command)
        started = time.perf_counter()
        model = train(config, callbacks=[Reporter(connection)], verbose=False)
        save_model(model, out)
        card = model.metadata["scorecard"]
        connection.send(("done", {
            "test_accuracy": model.metadata["test"]["accuracy"],
            "test_loss": model.metadata["test"]["loss"],
            "confusion": card["confusion_matrix"],
            "seconds": time.perf_counter() - started,
            "fit_seconds": model.metadata["training_seconds"],  # as digitnet train records it
            "stopped": bool(model.stop_training),
        }))  # fmt: skip
    except NNError as err:  # a diverged loss says to lower the learning rate
        connection.send(("error", {"error": str(err)}))
    except Exception as err:  # a bug: said, not hidden
        connection.send(("error", {"error": f"training failed: {type(err).__name__}: {err}"}))
