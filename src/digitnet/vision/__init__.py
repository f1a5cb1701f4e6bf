"""digitnet.vision: people's images -> the 28x28 input of an MNIST network."""

from digitnet.vision.loading import ImageError, ImageTooLarge, NotAnImage, load_gray, open_image
from digitnet.vision.preprocess import Prepared, prepare

__all__ = [
    "ImageError",
    "ImageTooLarge",
    "NotAnImage",
    "Prepared",
    "load_gray",
    "open_image",
    "prepare",
]
