"""Opening a person's image: any format Pillow reads, as a grayscale float array.

Accepts a path, bytes, a file object, a PIL image or a NumPy array. Applies the EXIF
orientation, flattens transparency onto a background that contrasts with the ink, reads 16-bit
images at full depth, and refuses images too large to decode safely before decoding them.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 40_000_000  # ~ a 7,000 x 6,000 photo; larger is refused before decoding
MAX_BYTES = 50 * 1024 * 1024


class ImageError(ValueError):
    """An image that cannot be read: not an image, truncated, empty, or too large."""


class NotAnImage(ImageError):
    """The bytes are not in any image format Pillow reads."""


class ImageTooLarge(ImageError):
    """Too many bytes or pixels to decode safely (refused before decoding)."""


def open_image(source: Any) -> Image.Image:
    """A decoded, EXIF-oriented PIL image from a path, bytes, file object or PIL image."""
    if isinstance(source, Image.Image):
        return ImageOps.exif_transpose(source)
    name = "image"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = str(path)
        if not path.exists():
            raise ImageError(f"{name}: no such file")
        if path.is_dir():
            raise ImageError(f"{name}: is a folder, not an image")
        if path.stat().st_size > MAX_BYTES:
            raise ImageTooLarge(f"{name}: file larger than {MAX_BYTES // 2**20} MB")
        try:
            source = path.read_bytes()
        except OSError as err:
            raise ImageError(f"{name}: cannot read: {err.strerror or err}") from None
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) > MAX_BYTES:
            raise ImageTooLarge(f"{name}: larger than {MAX_BYTES // 2**20} MB")
        source = io.BytesIO(bytes(source))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(source)
            width, height = image.size
            if width * height > MAX_PIXELS:  # checked from the header, before decoding
                raise ImageTooLarge(
                    f"{name}: {width}x{height} pixels is more than the {MAX_PIXELS:,} accepted"
                )
            if width == 0 or height == 0:
                raise ImageError(f"{name}: the image is empty ({width}x{height})")
            image.load()
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise NotAnImage(f"{name}: not an image file Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageTooLarge(f"{name}: refused as a decompression bomb ({err})") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"{name}: corrupt or truncated image ({err})") from None
    return ImageOps.exif_transpose(image)


OPAQUE = 127  # alpha above this (of 255) is an opaque pixel


def to_gray(image: Image.Image) -> np.ndarray:
    """Luminance in [0, 1] (0 black, 1 white), float32 (H, W). Transparent areas become a
    background opposite to the opaque strokes, so ink stays visible whatever its colour."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        return np.clip(values / top, 0, 1).astype(np.float32)
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float32)
        return np.clip(values / max(float(values.max()), 1e-12), 0, 1)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if not has_alpha:
        return np.asarray(image.convert("L"), dtype=np.float32) / 255
    rgba = image if image.mode == "RGBA" else image.convert("RGBA")
    gray = np.asarray(rgba.convert("L"), dtype=np.float32) / 255
    channel = rgba.getchannel("A")
    lowest, highest = channel.getextrema()
    if lowest > OPAQUE or highest <= OPAQUE:  # all opaque (a canvas) or all transparent
        return gray
    opaque = np.asarray(channel) > OPAQUE
    alpha = np.asarray(channel, dtype=np.float32) / 255
    strokes_are_light = gray[opaque].mean() > 0.5
    background = 0.0 if strokes_are_light else 1.0
    return gray * alpha + background * (1 - alpha)


def load_gray(source: Any) -> np.ndarray:
    """Any image (path, bytes, file object, PIL image, or array) as grayscale float32 (H, W) in
    [0, 1]. A NumPy array may be (H, W) or (H, W, 3|4), uint8/uint16 or float in [0, 1]."""
    if isinstance(source, np.ndarray):
        return array_to_gray(source)
    return to_gray(open_image(source))


def array_to_gray(array: np.ndarray) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] in (3, 4):
        mode = "RGBA" if array.shape[2] == 4 else "RGB"
        return to_gray(Image.fromarray(np.asarray(_to_uint8(array)), mode))
    if array.ndim != 2:
        raise ImageError(
            f"expected an image array of shape (H, W) or (H, W, 3|4); got {array.shape}"
        )
    if array.size == 0:
        raise ImageError(f"the image is empty ({array.shape[1]}x{array.shape[0]})")
    if array.size > MAX_PIXELS:
        raise ImageTooLarge(f"{array.shape[1]}x{array.shape[0]} pixels is more than {MAX_PIXELS:,}")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535
    values = np.asarray(array, dtype=np.float32)
    if not np.isfinite(values).all():
        raise ImageError("the image array contains NaN or infinite values")
    if values.min() < 0 or values.max() > 1:
        raise ImageError("a float image array must hold values in [0, 1]")
    return values


def _to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        return (array // 257).astype(np.uint8)
    return np.clip(np.asarray(array, np.float64) * 255 + 0.5, 0, 255).astype(np.uint8)
