"""digitnet.nn — a small neural-network engine written from scratch in NumPy.

It follows Keras' vocabulary so that a Keras tutorial translates line by line::

    model = Sequential([Flatten(input_shape=(28, 28)),
                        Dense(16, activation="relu"),
                        Dense(16, activation="relu"),
                        Dense(10, activation="softmax")])
    model.compile(optimizer=SGD(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=5, validation_data=(x_test, y_test))

Shape letters used in docstrings and comments throughout the engine:

    N  batch size (samples)          D  input features of a layer
    H  units (output features)       C  classes
    X  a batch of inputs             y  integer labels, shape (N,)

Every array the engine computes with is float32, batch first.
"""

from digitnet.nn.activations import ActivationFunction, get_activation
from digitnet.nn.callbacks import (
    Callback,
    EarlyStopping,
    History,
    ModelCheckpoint,
    ProgressBar,
)
from digitnet.nn.conv import Conv2D, MaxPool2D
from digitnet.nn.errors import ModelFileError, NNError, TrainingDiverged
from digitnet.nn.initializers import GlorotUniform, HeNormal, HeUniform, Zeros, get_initializer
from digitnet.nn.io import load_model, save_model
from digitnet.nn.layers import Activation, Dense, Dropout, Flatten, Layer, Reshape
from digitnet.nn.losses import (
    CategoricalCrossentropy,
    Loss,
    MeanSquaredError,
    SparseCategoricalCrossentropy,
    get_loss,
)
from digitnet.nn.model import Sequential
from digitnet.nn.normalization import BatchNorm
from digitnet.nn.optimizers import SGD, Adam, Optimizer, get_optimizer

__all__ = [
    "SGD",
    "Activation",
    "ActivationFunction",
    "Adam",
    "BatchNorm",
    "Callback",
    "CategoricalCrossentropy",
    "Conv2D",
    "Dense",
    "Dropout",
    "EarlyStopping",
    "Flatten",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "History",
    "Layer",
    "Loss",
    "MaxPool2D",
    "MeanSquaredError",
    "ModelCheckpoint",
    "ModelFileError",
    "NNError",
    "Optimizer",
    "ProgressBar",
    "Reshape",
    "Sequential",
    "SparseCategoricalCrossentropy",
    "TrainingDiverged",
    "Zeros",
    "get_activation",
    "get_initializer",
    "get_loss",
    "get_optimizer",
    "load_model",
    "save_model",
]
