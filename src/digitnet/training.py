"""Training runs as the command line describes them: one dataclass of settings, one function that
builds the compiled network from a zoo preset, and one that trains it on MNIST and records how
the model was made.

With the defaults this is the tutorial's recipe: 784-16-16-10 with ReLU and softmax, sparse
categorical cross-entropy, plain SGD with learning rate 0.01, batch size 32, 5 epochs,
validated on the test set after every epoch. Every field left as None takes the preset's value.
"""

from __future__ import annotations

import math
import platform
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from digitnet.data import fingerprint, load_mnist, to_float
from digitnet.data.mnist import describe_source
from digitnet.modelcard import record_scorecard
from digitnet.nn import SGD, Adam, NNError, Optimizer, Sequential, get_activation, get_loss
from digitnet.nn.callbacks import Callback
from digitnet.writing import written_alone
from digitnet.zoo import Preset, get_preset


@dataclass
class TrainConfig:
    model: str = "tutorial"  # a zoo preset: tutorial, mlp, cnn
    hidden: tuple[int, ...] | None = None  # MLP presets only
    activation: str | None = None  # MLP presets only
    loss: str = "sparse_categorical_crossentropy"
    optimizer: str | None = None  # "sgd" or "adam" instead of the preset's optimiser
    lr: float | None = None
    momentum: float = 0.0
    nesterov: bool = False
    batch_size: int | None = None
    epochs: int | None = None
    samples: int | None = None  # train on the first this many training digits (default: all)
    augment: bool | None = None  # distort training digits (the cnn preset does by default)
    written: int = 0  # also train on the first this many training digits as written on paper
    seed: int = 0
    data: str | None = None
    command: str = ""  # the command line that asked for this run, recorded in the model file

    def validate(self) -> Preset:
        preset = get_preset(self.model)
        if not preset.mlp and (self.hidden is not None or self.activation is not None):
            raise NNError(f"hidden sizes and activation apply to MLP presets, not {self.model!r}")
        if self.hidden is not None and (not self.hidden or min(self.hidden) < 1):
            raise NNError(f"hidden layer sizes must be positive whole numbers; got {self.hidden}")
        if self.activation is not None:
            get_activation(self.activation)
        get_loss(self.loss)
        if self.optimizer not in (None, "sgd", "adam"):
            raise NNError(f"unknown optimizer {self.optimizer!r}; valid optimizers: adam, sgd")
        if self.momentum and (self.optimizer or "sgd") != "sgd":
            raise NNError("momentum applies to the sgd optimizer only")
        optimizer_for(self, preset, total_steps=1)  # the engine checks lr and momentum
        for name in ("batch_size", "epochs", "samples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise NNError(f"{name.replace('_', ' ')} must be at least 1; got {value}")
        self.check_written(self.samples)
        return preset

    def describe(self, preset: Preset) -> str:
        """What is trained, in words: the preset's own description, unless a setting changes
        the network or its optimiser — then the network and the optimiser as changed."""
        name = self.optimizer or ("sgd" if self.momentum or self.nesterov else None)
        changed = (self.hidden, self.activation, name, self.lr) != (None,) * 4
        if not changed and self.loss == TrainConfig.loss:
            return f"{preset.name} ({preset.description})"
        network = build_model(self).name.removeprefix("mlp-")
        if preset.mlp:
            network += f" {self.activation or 'relu'}"
        if name == "sgd":
            momentum = f" momentum {self.momentum:g}" if self.momentum else ""
            nesterov = " Nesterov" if self.nesterov else ""
            optimizer = f"SGD lr {self.lr or 0.01:g}{momentum}{nesterov}"
        elif name == "adam":
            optimizer = f"Adam lr {self.lr or 0.001:g}"
        else:  # the preset's recipe: "SGD lr 0.01, batch 32" less its batch, at this lr
            optimizer = re.sub(r", batch \d+$", "", preset.description.split(": ", 1)[-1])
            if self.lr and "lr " in optimizer:
                optimizer = re.sub(r"lr [0-9.e-]+", f"lr {self.lr:g}", optimizer)
            elif self.lr:
                optimizer += f", lr {self.lr:g}"
        loss = f", {self.loss} loss" if self.loss != TrainConfig.loss else ""
        return f"{preset.name} changed ({network}: {optimizer}{loss})"

    def check_written(self, digits: int | None) -> None:
        """``written`` is 0 to ``digits``, the number of training digits (None: not known yet,
        until the data are loaded)."""
        if self.written < 0 or (digits is not None and self.written > digits):
            known = f" ({digits:,})" if digits is not None else ""
            raise NNError(f"written must be 0 to the number of training digits{known};"
                          f" got {self.written:,}")  # fmt: skip


def build_model(config: TrainConfig, samples: int = 60_000) -> Sequential:
    """The compiled, untrained model of ``config`` for a training set of ``samples`` digits."""
    preset = config.validate()
    options = {}
    if config.hidden is not None:
        options["hidden"] = tuple(config.hidden)
    if config.activation is not None:
        options["activation"] = config.activation
    model = preset.build(seed=config.seed, **options)
    batch_size = config.batch_size or preset.batch_size
    total_steps = math.ceil(samples / batch_size) * (config.epochs or preset.epochs)
    optimizer = optimizer_for(config, preset, total_steps)
    model.compile(optimizer=optimizer, loss=config.loss, metrics=["accuracy"])
    return model


def optimizer_for(config: TrainConfig, preset: Preset, total_steps: int) -> Optimizer:
    """The optimiser ``config`` asks for (the preset's own unless told), for ``total_steps``."""
    name = config.optimizer or ("sgd" if config.momentum or config.nesterov else None)
    if name == "sgd":
        return SGD(config.lr or 0.01, momentum=config.momentum, nesterov=config.nesterov)
    if name == "adam":
        return Adam(config.lr or 0.001)
    return preset.optimizer(config.lr, total_steps)


def train(
    config: TrainConfig,
    callbacks: Sequence[Callback] = (),
    verbose: bool = True,
    data=None,
) -> Sequential:
    """Build and train the model ``config`` describes on MNIST (the test set validates each
    epoch). The returned model's ``metadata`` records the settings, the command, the data's
    checksum, the test accuracy and the training time."""
    preset = config.validate()
    (x_train, y_train), (x_test, y_test) = data or load_mnist(config.data)
    checksum = fingerprint(x_train, y_train, x_test, y_test)
    if config.samples is not None:
        x_train, y_train = x_train[: config.samples], y_train[: config.samples]
    config.check_written(len(x_train))  # samples may ask for more than the data have
    x_test_digits = x_test
    x_written, writing_seconds = written_digits(x_train, config, verbose)
    x_train, x_test = to_float(x_train), to_float(x_test)  # (N, 28, 28) float32 in [0, 1]
    if config.written:  # the first ``written`` digits once more, as written on paper
        x_train = np.concatenate([x_train, x_written])
        y_train = np.concatenate([y_train, y_train[: config.written]])
    model = build_model(config, samples=len(x_train))
    epochs = config.epochs or preset.epochs
    batch_size = config.batch_size or preset.batch_size
    use_augment = preset.augment is not None if config.augment is None else config.augment
    augment = (preset.augment or get_preset("cnn").augment) if use_augment else None
    start = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=(x_test, y_test),
        callbacks=callbacks,
        seed=config.seed,
        verbose=verbose,
        augment=augment,
    )
    seconds = time.perf_counter() - start
    test_loss, test_accuracy = test_figures(model, history, epochs, x_test, y_test)
    settings = {**asdict(config), "epochs": epochs, "batch_size": batch_size}
    settings["augment"] = augment.to_dict() if augment else None
    model.metadata = {
        "preset": config.model,
        "config": settings,
        "optimizer": model.optimizer.get_config(),
        "command": config.command,
        "data": {
            "source": describe_source(config.data),
            "checksum": checksum,
            "train_samples": len(x_train),
            "written_on_paper": config.written,  # of them: the first this many digits again
            "test_samples": len(x_test),
        },
        "test": {"accuracy": test_accuracy, "loss": test_loss},
        "training_seconds": round(seconds, 3),
        "epochs_completed": len(history.epoch),
        "interrupted": history.interrupted,
        "trained_on": f"{platform.machine()} {platform.system()}, {platform.python_version()}",
    }
    if config.written:
        model.metadata["writing_seconds"] = writing_seconds  # before the training
    if verbose:
        print(f"Scoring the {len(y_test):,} test digits for the model page...", flush=True)
    record_scorecard(model, x_test_digits, y_test)  # for the model page, at once
    return model


GUESSING = {"mean_squared_error": 0.09, "mse": 0.09}  # a loss's value for 1/10 each: else
# cross-entropy's ln 10
DIVERGED = 10  # a training loss this many times guessing's: the network learnt nothing


def divergence_advice(model, config: TrainConfig) -> str | None:
    """A word when the training loss ended far above what guessing gives (DIVERGED times):
    the learning rate was too high, though no NaN came (``lr 50``: a loss of 2e7)."""
    losses = model.history.history.get("loss") or [0.0]
    guessing = GUESSING.get(config.loss, math.log(10))
    if not losses[-1] > DIVERGED * guessing:
        return None
    lr = getattr(model.optimizer, "learning_rate", None)
    now = f" (now {lr:g}; try {lr / 10:g})" if isinstance(lr, float | int) else ""
    return (
        f"The training loss ended at {losses[-1]:.3g}, far above guessing's {guessing:.2f}:"
        f" training diverged. Try a lower learning rate{now}."
    )


def test_figures(model, history, epochs: int, x_test, y_test) -> tuple[float, float]:
    """The test loss and accuracy of the trained ``model``: its last epoch's validation, when
    training ran every epoch to its end (the same pass over the same weights), else a pass."""
    logs = history.history
    if not history.interrupted and len(history.epoch) == epochs and "val_loss" in logs:
        return logs["val_loss"][-1], logs["val_accuracy"][-1]
    return model.evaluate(x_test, y_test, verbose=0)


def written_digits(x_train, config: TrainConfig, verbose: bool) -> tuple[np.ndarray | None, float]:
    """The first ``config.written`` training digits (uint8) written on paper and read back
    (``written_alone``), and the seconds that took; (None, 0) when none are asked for."""
    if not config.written:
        return None, 0.0
    if verbose:
        print(f"Writing {config.written:,} training digits on paper ...", end=" ", flush=True)
    start = time.perf_counter()
    written = written_alone(x_train[: config.written], config.seed)  # (written, 28, 28)
    seconds = round(time.perf_counter() - start, 3)
    if verbose:
        print(f"{seconds:.1f} s", flush=True)
    return written, seconds
