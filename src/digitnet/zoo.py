"""Named models: each preset is an architecture and the recipe that trains it well.

``tutorial`` is exactly the tutorial's network and recipe; ``mlp`` a wider multilayer
perceptron; ``cnn`` the strongest: a small VGG-style convolutional network with batch
normalisation, trained with a one-cycle schedule on randomly distorted digits. Trained weights
ship with the package: ``bundled_model("cnn")``, ``bundled_model("tutorial")``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from digitnet.augment import Augment
from digitnet.nn import (
    SGD,
    Activation,
    Adam,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    NNError,
    Optimizer,
    Reshape,
    Sequential,
    load_model,
)
from digitnet.nn.errors import lookup
from digitnet.nn.schedules import CosineDecay, OneCycle

BUNDLED_DIR = Path(__file__).with_name("models")
BEST = "cnn"  # the preset whose bundled weights predict and serve use by default


@dataclass(frozen=True)
class Preset:
    """A named architecture with its training recipe. ``optimizer(lr, total_steps)`` builds the
    optimiser (``lr`` None: the recipe's own); ``mlp`` tells whether --hidden/--activation apply.
    """

    name: str
    description: str
    build: Callable[..., Sequential]  # (seed, **mlp options) -> uncompiled model
    optimizer: Callable[[float | None, int], Optimizer]
    epochs: int
    batch_size: int
    augment: Augment | None = None
    mlp: bool = False


def mlp(
    seed: int | None = None,
    hidden: tuple[int, ...] = (16, 16),
    activation: str = "relu",
    dropout: float = 0.0,
) -> Sequential:
    """Flatten(28x28) -> Dense(h, activation) [-> Dropout] per hidden size -> Dense(10, softmax)."""
    layers = [Flatten(input_shape=(28, 28))]
    for units in hidden:
        layers.append(Dense(units, activation=activation))
        if dropout:
            layers.append(Dropout(dropout))
    layers.append(Dense(10, activation="softmax"))
    return Sequential(layers, seed=seed, name="mlp-784-" + "-".join(map(str, hidden)) + "-10")


def conv_bn_relu(filters: int) -> list:
    return [Conv2D(filters, 3, kernel_initializer="he_uniform"), BatchNorm(), Activation("relu")]


def cnn(seed: int | None = None) -> Sequential:
    """28x28x1 -> conv 32 -> pool -> conv 64 -> conv 64 -> pool -> dense 256 -> 10.

    Each conv is 3x3 'valid' + BatchNorm + ReLU. Spatial sizes 28 -> 26 -> 13 -> 11 -> 9 -> 4;
    the dense layer sees 4 * 4 * 64 = 1024 features. About 5.7 M multiply-adds per digit.
    """
    layers = [
        Reshape((28, 28, 1), input_shape=(28, 28)),
        *conv_bn_relu(32),
        MaxPool2D(2),
        *conv_bn_relu(64),
        *conv_bn_relu(64),
        MaxPool2D(2),
        Flatten(),
        Dense(256, kernel_initializer="he_uniform"),
        BatchNorm(),
        Activation("relu"),
        Dropout(0.4),
        Dense(10, activation="softmax"),
    ]
    return Sequential(layers, seed=seed, name="cnn-32-64-64-256")


PRESETS: dict[str, Preset] = {
    "tutorial": Preset(
        "tutorial",
        "the tutorial's 784-16-16-10 network: SGD lr 0.01, batch 32",
        build=mlp,
        optimizer=lambda lr, steps: SGD(lr or 0.01),
        epochs=5,
        batch_size=32,
        mlp=True,
    ),
    "mlp": Preset(
        "mlp",
        "784-512-256-10 with dropout: Adam with cosine decay, batch 128",
        build=lambda seed=None, hidden=(512, 256), activation="relu": mlp(
            seed, hidden, activation, dropout=0.2
        ),
        optimizer=lambda lr, steps: Adam(CosineDecay(lr or 1e-3, steps)),
        epochs=20,
        batch_size=128,
        mlp=True,
    ),
    "cnn": Preset(
        "cnn",
        "CNN with batch norm: one-cycle AdamW on randomly distorted digits, batch 128",
        build=cnn,
        optimizer=lambda lr, steps: Adam(OneCycle(lr or 3e-3, steps), weight_decay=5e-3),
        epochs=20,
        batch_size=128,
        augment=Augment(max_shift=2.0, max_rotation=10.0, min_scale=0.9, max_scale=1.1),
    ),
}


def get_preset(name: str) -> Preset:
    """A preset by name; an unknown name gets an error listing the presets."""
    return lookup(PRESETS, name, "model preset")


def bundled_path(name: str = BEST) -> Path:
    path = BUNDLED_DIR / f"{name}.npz"
    if not path.is_file():
        raise NNError(f"no bundled model {name!r}; bundled models: {bundled_names()}")
    return path


def bundled_names() -> str:
    """The bundled models' names, "cnn, tutorial", for a message."""
    return ", ".join(sorted(p.stem for p in BUNDLED_DIR.glob("*.npz"))) or "none"


def bundled_model(name: str = BEST) -> Sequential:
    """The pretrained model shipped with digitnet: "cnn" (the best) or "tutorial"."""
    return load_model(bundled_path(name))


def names_bundled_model(spec: str) -> bool:
    """Whether ``spec`` on a command line means a bundled model ("cnn", "tutorial"): it does
    unless a file of that name exists."""
    return not Path(spec).exists() and (BUNDLED_DIR / f"{spec}.npz").is_file()


def model_path(spec: str) -> Path:
    """The file of a model named on a command line (see ``resolve_model``)."""
    if names_bundled_model(spec):
        return bundled_path(spec)
    if not Path(spec).exists() and not Path(spec).is_symlink():  # a name mistyped, most likely
        raise NNError(f"{spec}: no such model file, nor a bundled model ({bundled_names()})")
    return Path(spec)


def resolve_model(spec: str | None) -> Sequential:
    """A model named on a command line: None for the best bundled model, a bundled model's name
    (see ``names_bundled_model``), else a model file's path."""
    if spec is None:
        return bundled_model(BEST)
    if names_bundled_model(spec):
        return bundled_model(spec)
    return load_model(model_path(spec))
