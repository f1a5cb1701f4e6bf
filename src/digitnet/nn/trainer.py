"""Training: ``Sequential.fit``'s epochs and steps — mini-batch backpropagation.

Each step takes a batch, runs the model's plan forward, the loss gradient back through it, and
one optimiser step on the flat parameter vector. An epoch's loss and accuracy are those of each
batch before its update (as Keras reports them), computed in bulk from the outputs the steps
kept, off the per-step path (``EpochRecord``). A non-finite output stops training with
``TrainingDiverged`` and the weights of the epoch's start; Ctrl-C stops it cleanly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from digitnet.nn.callbacks import Callback, History, ProgressBar
from digitnet.nn.errors import TrainingDiverged
from digitnet.nn.layers import Dropout

DIVERGENCE_CHECK_STEPS = 64  # how often fit looks for a non-finite loss
Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


class EpochRecord:
    """The outputs (N, C) each batch of an epoch produced before its update, and the running
    means of loss (and accuracy) over the samples seen so far."""

    def __init__(self, model, Y: np.ndarray, order: np.ndarray):
        self.model, self.Y, self.order = model, Y, order
        self.outputs = np.empty((len(order), model.layers[-1].output_shape[-1]), model.dtype)
        self.done = 0  # samples already summed into ``sums``
        self.sums = {"loss": 0.0, "accuracy": 0.0}

    def logs(self, rows: int | None = None) -> dict[str, float]:
        """Mean loss (and accuracy) over the first ``rows`` samples of the epoch (all of them
        by default), summed incrementally from the stored outputs."""
        end = len(self.order) if rows is None else min(rows, len(self.order))
        if end > self.done:
            picked = self.order[self.done : end]
            chunk = self.model.metrics_of(self.Y[picked], self.outputs[self.done : end])
            for key, value in chunk.items():
                self.sums[key] += value * (end - self.done)
            self.done = end
        count = max(self.done, 1)
        keys = ("loss", "accuracy") if self.model.metrics else ("loss",)
        return {key: self.sums[key] / count for key in keys}


def train(
    model,
    data: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray] | None,
    *,
    epochs: int,
    initial_epoch: int,
    batch_size: int,
    shuffle: bool,
    validation_freq: int,
    validation_batch_size: int | None,
    rng: np.random.Generator,
    bars: Sequence[Callback],
    callbacks: Sequence[Callback],
    augment: Augment | None,
) -> History:
    """``model.fit`` on checked arrays: ``data`` (X, Y), ``validation`` (X_val, Y_val) or None."""
    X, Y = data
    for layer in model.layers:
        if isinstance(layer, Dropout):
            layer.rng = rng
    N = len(X)
    model.history = History()
    everyone = [model.history, *bars, *callbacks]
    for callback in everyone:
        callback.set_model(model)
    per_step = [cb for cb in everyone if type(cb).on_batch_end is not Callback.on_batch_end]
    steps = math.ceil(N / batch_size)
    model.fit_params = {"epochs": epochs, "steps": steps, "batch_size": batch_size, "samples": N}
    model.stop_training = False
    for callback in everyone:
        callback.on_train_begin()

    # Non-finite values are caught by check_finite, with a useful message, not warnings.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        try:
            for epoch in range(initial_epoch, epochs):
                for callback in everyone:
                    callback.on_epoch_begin(epoch)
                start = time.perf_counter()
                order = rng.permutation(N) if shuffle else np.arange(N)
                model.epoch = EpochRecord(model, Y, order)
                logs = one_epoch(model, X, Y, batch_size, rng, per_step, epoch, augment)
                if validation is not None and (epoch + 1) % validation_freq == 0:
                    X_val, Y_val = validation
                    out = model.raw_outputs(X_val, validation_batch_size)
                    logs.update(model.metrics_of(Y_val, out, "val_"))
                logs["time"] = time.perf_counter() - start
                logs["lr"] = model.optimizer.learning_rate
                for callback in everyone:
                    callback.on_epoch_end(epoch, logs)
                if model.stop_training:
                    break
        except KeyboardInterrupt:
            model.history.interrupted = True
    for callback in everyone:
        callback.on_train_end()
    return model.history


def progress_bars(shown: int) -> list[Callback]:
    """fit's display for ``verbose`` 0, 1 or 2: nothing, a progress bar, a line per epoch."""
    return {0: [], 1: [ProgressBar()], 2: [ProgressBar(dynamic=False)]}[shown]


def one_epoch(model, X, Y, batch_size, rng, per_step, epoch, augment) -> dict[str, float]:
    """One pass over the samples in the epoch's order; returns the epoch's running logs."""
    record, plan, optimizer = model.epoch, model.plan, model.optimizer
    start_weights = model.flat_params.copy()
    pairs = [(model.flat_params, model.flat_grads)]
    masks = [model.decay_mask] if optimizer.weight_decay else None
    checked = done = step = 0
    for step, i in enumerate(range(0, len(X), batch_size)):
        batch = record.order[i : i + batch_size]
        X_batch = X[batch] if augment is None else augment(X[batch], rng)
        out = plan.forward(X_batch, training=True)
        record.outputs[i : i + len(batch)] = out
        plan.backward(plan.loss.gradient(Y[batch], out))
        optimizer.step(pairs, masks)
        done = i + len(batch)
        if step % DIVERGENCE_CHECK_STEPS == DIVERGENCE_CHECK_STEPS - 1:
            checked = check_finite(model, start_weights, checked, done, epoch, step)
        for callback in per_step:
            callback.on_batch_end(step)
        if model.stop_training:  # a callback asked to stop now (Keras checks each step too)
            break
    check_finite(model, start_weights, checked, done, epoch, step)
    return record.logs(done)


def check_finite(model, start_weights, begin, end, epoch, step) -> int:
    """Raise TrainingDiverged if any output in [begin, end) of this epoch is not finite."""
    if np.isfinite(model.epoch.outputs[begin:end]).all():
        return end
    model.flat_params[...] = start_weights
    lr: Any = getattr(model.optimizer, "learning_rate", None)
    raise TrainingDiverged(
        f"the loss became NaN or infinite in epoch {epoch + 1}, step {step + 1}: training"
        f" diverged. Try a lower learning rate (now {lr:g}; try {lr / 10:g})."
        " The weights from the start of that epoch were restored."
    )
