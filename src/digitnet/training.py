"""Training runs as the command line describes them: one dataclass of settings, one function that
builds the network and one that trains it on MNIST and records how the model was made.

The defaults are the tutorial's recipe: 784-16-16-10 with ReLU and softmax, sparse categorical
cross-entropy, plain SGD with learning rate 0.01, batch size 32, 5 epochs, validated on the test
set after every epoch.
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from digitnet.data import fingerprint, load_mnist, to_float
from digitnet.data.mnist import describe_source
from digitnet.nn import SGD, Adam, Dense, Flatten, NNError, Sequential, get_activation, get_loss
from digitnet.nn.callbacks import Callback


@dataclass
class TrainConfig:
    hidden: tuple[int, ...] = (16, 16)
    activation: str = "relu"
    loss: str = "sparse_categorical_crossentropy"
    optimizer: str = "sgd"
    lr: float | None = None  # None: the optimiser's Keras default (SGD 0.01, Adam 0.001)
    momentum: float = 0.0
    nesterov: bool = False
    batch_size: int = 32
    epochs: int = 5
    seed: int = 0
    data: str | None = None
    command: str = ""  # the command line that asked for this run, recorded in the model file
    extra: dict = field(default_factory=dict)

    def validate(self) -> None:
        if not self.hidden or any(units < 1 for units in self.hidden):
            raise NNError(f"hidden layer sizes must be positive whole numbers; got {self.hidden}")
        get_activation(self.activation)
        get_loss(self.loss)
        if self.optimizer not in ("sgd", "adam"):
            raise NNError(f"unknown optimizer {self.optimizer!r}; valid optimizers: adam, sgd")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise NNError(f"the learning rate must be a number > 0; got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise NNError(f"momentum must be in [0, 1); got {self.momentum}")
        for name in ("batch_size", "epochs"):
            if getattr(self, name) < 1:
                raise NNError(
                    f"{name.replace('_', ' ')} must be at least 1; got {getattr(self, name)}"
                )


def build_mlp(config: TrainConfig) -> Sequential:
    """Flatten(28x28) -> Dense(h, activation) for each hidden size -> Dense(10, softmax)."""
    layers = [Flatten(input_shape=(28, 28))]
    layers += [Dense(units, activation=config.activation) for units in config.hidden]
    layers.append(Dense(10, activation="softmax"))
    model = Sequential(layers, seed=config.seed, name="mlp-" + "-".join(map(str, config.hidden)))
    if config.optimizer == "sgd":
        optimizer = SGD(config.lr or 0.01, momentum=config.momentum, nesterov=config.nesterov)
    else:
        optimizer = Adam(config.lr or 0.001)
    model.compile(optimizer=optimizer, loss=config.loss, metrics=["accuracy"])
    return model


def train(
    config: TrainConfig,
    callbacks: Sequence[Callback] = (),
    verbose: bool = True,
    data=None,
) -> Sequential:
    """Build and train the model ``config`` describes on MNIST (the test set validates each
    epoch). The returned model's ``metadata`` records the settings, the command, the data's
    checksum, the test accuracy and the training time."""
    config.validate()
    (x_train, y_train), (x_test, y_test) = data or load_mnist(config.data)
    checksum = fingerprint(x_train, y_train, x_test, y_test)
    x_train, x_test = to_float(x_train), to_float(x_test)  # (N, 28, 28) float32 in [0, 1]
    model = build_mlp(config)
    start = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        epochs=config.epochs,
        batch_size=config.batch_size,
        validation_data=(x_test, y_test),
        callbacks=callbacks,
        seed=config.seed,
        verbose=verbose,
    )
    seconds = time.perf_counter() - start
    test_loss, test_accuracy = model.evaluate(x_test, y_test)
    model.metadata = {
        "config": {k: v for k, v in asdict(config).items() if k != "extra"},
        "command": config.command,
        "data": {
            "source": describe_source(config.data),
            "checksum": checksum,
            "train_samples": len(x_train),
            "test_samples": len(x_test),
        },
        "test": {"accuracy": test_accuracy, "loss": test_loss},
        "training_seconds": round(seconds, 3),
        "epochs_completed": len(history.epoch),
        "interrupted": history.interrupted,
        "trained_on": f"{platform.machine()} {platform.system()}",
    }
    return model
