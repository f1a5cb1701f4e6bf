import numpy as np
import pytest


@pytest.fixture(scope="session")
def mnist():
    """The bundled MNIST as uint8 arrays: ((x_train, y_train), (x_test, y_test))."""
    from digitnet.data import load_mnist

    return load_mnist()


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
