"""digitnet: read handwritten digits with a neural network built and trained from scratch.

The engine lives in ``digitnet.nn``; the MNIST data in ``digitnet.data``; the command line in
``digitnet.cli``. The most used names are re-exported here, lazily, so that ``import digitnet``
(and ``digitnet --help``) stay fast.
"""

__version__ = "0.1.0"

_LAZY = {
    "load_model": "digitnet.nn.io",
    "save_model": "digitnet.nn.io",
    "Sequential": "digitnet.nn.model",
    "load_mnist": "digitnet.data",
    "recognize": "digitnet.reading",
    "read_number": "digitnet.reading",
    "Prediction": "digitnet.reading",
    "recognize_many": "digitnet.many",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'digitnet' has no attribute {name!r}")


__all__ = ["__version__", *_LAZY]
