"""digitnet.vision: people's images -> the 28x28 input of an MNIST network."""

from digitnet.vision.loading import ImageError, load_gray, open_image
from digitnet.vision.preprocess import Prepared, prepare

__all__ = ["ImageError", "Prepared", "load_gray", "open_image", "prepare"]
