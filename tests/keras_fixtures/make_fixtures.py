"""Make the Keras model files that tests/test_keras_files.py reads — with real Keras.

    pip install keras h5py torch      # torch: the CPU wheel is enough, TensorFlow is not needed
    KERAS_BACKEND=torch python tests/keras_fixtures/make_fixtures.py

Writes, beside this script, each model as Keras 3's ``.keras`` and as the legacy ``.h5``, and
``expected.npz``: the inputs each model was given and Keras' own predictions for them. The
weights are Keras' initial ones, with batch-norm statistics set away from 0 and 1 so that they
matter; what is tested is that digitnet computes what Keras computes with them.
"""

import os
from pathlib import Path

import keras
import numpy as np
from keras import layers

HERE = Path(__file__).parent
keras.utils.set_random_seed(0)


def tutorial():
    """The tutorial's network, as its Keras program builds it."""
    return keras.Sequential(
        [
            keras.Input((28, 28)),
            layers.Flatten(),
            layers.Dense(16, activation="relu"),
            layers.Dense(16, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ]
    )


def cnn():
    """A small CNN with every other layer digitnet reads: channels-last images (28, 28, 1)."""
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(8, 3, activation="relu"),
            layers.BatchNormalization(),
            layers.MaxPooling2D(2),
            layers.Conv2D(12, (3, 2), strides=2, padding="same", use_bias=False),
            layers.Activation("tanh"),
            layers.Dropout(0.25),
            layers.Reshape((7 * 7 * 12,)),
            layers.Dense(24, activation="sigmoid"),
            layers.BatchNormalization(epsilon=0.01),
            layers.Dense(10),
            layers.Activation("softmax"),
        ]
    )


def branching():
    """A functional model with two branches: refused."""
    inputs = keras.Input((28, 28))
    flat = layers.Flatten()(inputs)
    added = layers.Add()([layers.Dense(10)(flat), layers.Dense(10)(flat)])
    return keras.Model(inputs, layers.Activation("softmax")(added))


def unknown_layer():
    """A layer digitnet does not have: refused, by name."""
    return keras.Sequential(
        [keras.Input((28, 28)), layers.Rescaling(1 / 255), layers.Flatten(), layers.Dense(10)]
    )


def unknown_activation():
    return keras.Sequential(
        [keras.Input((28, 28)), layers.Flatten(), layers.Dense(10, activation="gelu")]
    )


def main():
    rng = np.random.default_rng(0)
    expected = {}
    for make in (tutorial, cnn):
        model = make()
        for layer in model.layers:
            if isinstance(layer, layers.BatchNormalization):
                n = layer.moving_mean.shape[0]
                layer.moving_mean.assign(rng.normal(0, 0.5, n).astype("float32"))
                layer.moving_variance.assign(rng.uniform(0.5, 2, n).astype("float32"))
                layer.gamma.assign(rng.uniform(0.5, 1.5, n).astype("float32"))
                layer.beta.assign(rng.normal(0, 0.5, n).astype("float32"))
        x = rng.random((16, *model.input_shape[1:]), dtype=np.float32)
        expected[f"{make.__name__}_x"] = x
        expected[f"{make.__name__}_probabilities"] = np.asarray(model.predict(x, verbose=0))
        model.save(HERE / f"{make.__name__}.keras")
        model.save(HERE / f"{make.__name__}.h5")
    for make in (branching, unknown_layer, unknown_activation):
        make().save(HERE / f"{make.__name__}.keras")
    np.savez_compressed(HERE / "expected.npz", **expected)
    print("wrote", sorted(p.name for p in HERE.iterdir() if p.suffix != ".py"))


if __name__ == "__main__":
    assert os.environ.get("KERAS_BACKEND") == "torch", "run with KERAS_BACKEND=torch"
    main()
