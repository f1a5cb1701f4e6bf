"""Opening a person's image: any format Pillow reads, as a grayscale float array.

Accepts a path, bytes, a file object, a PIL image or a NumPy array. Applies the EXIF
orientation, flattens transparency onto a background that contrasts with the ink, reads 16-bit
images at full depth, and refuses images too large to decode safely before decoding them.

Only the raster formats digitnet documents are opened (FORMATS: never Pillow's PostScript path,
which runs Ghostscript); a path is read only if it is a regular file, at most MAX_BYTES; any
colour mode Pillow can turn into grayscale is read, and one it cannot, or a float image holding
NaN or infinity, is an ImageError like any other unreadable image.
"""

from __future__ import annotations

import io
import os
import warnings
from typing import Any

import numpy as np
from PIL import (  # the plugins of FORMATS, registered for Image.open(formats=...)
    BmpImagePlugin,  # noqa: F401
    GifImagePlugin,  # noqa: F401
    Image,
    ImageOps,
    JpegImagePlugin,  # noqa: F401
    PngImagePlugin,  # noqa: F401
    TiffImagePlugin,  # noqa: F401
    UnidentifiedImageError,
    WebPImagePlugin,  # noqa: F401
)

from digitnet.nn.files import read_file_as

MAX_PIXELS = 40_000_000  # ~ a 7,000 x 6,000 photo; larger is refused before decoding
MAX_BYTES = 50 * 1024 * 1024
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP")  # JPEG's opener takes MPO (phones') too


class ImageError(ValueError):
    """An image that cannot be read: not an image, truncated, empty, or too large.

    ``reason`` says what is wrong; ``source`` names the file the image came from, when it
    came from one, and the message then reads "source: reason". (Bytes, as the web page
    uploads, have no name: their message is the reason alone.)"""

    def __init__(self, reason: str, source: str | None = None):
        super().__init__(f"{source}: {reason}" if source else reason)
        self.reason, self.source = reason, source


class NotAnImage(ImageError):
    """The bytes are not in any image format Pillow reads."""


class ImageTooLarge(ImageError):
    """Too many bytes or pixels to decode safely (refused before decoding)."""


def open_image(source: Any) -> Image.Image:
    """A decoded, EXIF-oriented PIL image from a path, bytes, file object or PIL image."""
    if isinstance(source, Image.Image):
        return ImageOps.exif_transpose(source)  # a copy: the caller's image stays as it is
    name = None  # the file's, when the image is one
    if isinstance(source, (str, os.PathLike)):
        name = str(source)
        source = read_image_file(name)
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) > MAX_BYTES:
            raise ImageTooLarge(f"larger than {MAX_BYTES // 2**20} MB", name)
        source = io.BytesIO(bytes(source))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(source, formats=FORMATS)
            width, height = image.size
            if width * height > MAX_PIXELS:  # checked from the header, before decoding
                raise ImageTooLarge(
                    f"{width}x{height} pixels is more than the {MAX_PIXELS:,} accepted", name
                )
            if width == 0 or height == 0:
                raise ImageError(f"the image is empty ({width}x{height})", name)
            if image.format == "PNG" and _png_cannot_hold(width, height, source):
                raise ImageError(
                    f"corrupt or truncated image ({source.getbuffer().nbytes} bytes"
                    f" cannot hold {width}x{height} pixels)",
                    name,
                )
            image.load()
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise NotAnImage(
            f"not an image file in a format digitnet reads ({', '.join(FORMATS[:-1])} or"
            f" {FORMATS[-1]})",
            name,
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLarge(
            f"refused as a decompression bomb: more than the {MAX_PIXELS:,} pixels accepted", name
        ) from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"corrupt or truncated image ({err})", name) from None
    ImageOps.exif_transpose(image, in_place=True)  # a copy would double a 40 MP photo's memory
    return image


DEFLATE_MAX_RATIO = 1032  # zlib's best: 1,032 bytes out for each byte in


def _png_cannot_hold(width: int, height: int, source: Any) -> bool:
    """Whether a PNG of this many bytes is too short to hold width x height pixels even at
    one bit each and deflate's best ratio: then it is truncated or lying, and decoding it
    would allocate the whole image first (a 104-byte file claiming 6324x6324 cost 450 MB)."""
    if not isinstance(source, io.BytesIO):
        return False
    least = height * (1 + -(-width // 8))  # a filter byte and 1 bit a pixel, each row
    return least > DEFLATE_MAX_RATIO * source.getbuffer().nbytes


OPAQUE = 127  # alpha above this (of 255) is an opaque pixel


def image_pixels(data: bytes) -> int:
    """How many pixels an image's header declares (0 when it is not an image), read without
    decoding: how much the decoding will cost."""
    try:
        with Image.open(io.BytesIO(data), formats=FORMATS) as image:
            width, height = image.size
    except Exception:  # anything Pillow cannot read now will be refused when it is decoded
        return 0
    return width * height


def read_image_file(name: str) -> bytes:
    """The bytes of an image file: a regular file of at most MAX_BYTES, or an ImageError."""
    return read_file_as(name, MAX_BYTES, ImageError, "file", too_large=ImageTooLarge, apart=True)


def to_gray(image: Image.Image, release: bool = False) -> np.ndarray:
    """Luminance in [0, 1] (0 black, 1 white), float32 (H, W). Transparent areas become a
    background opposite to the opaque strokes, so ink stays visible whatever its colour.
    ImageError for a colour mode without a grayscale, or float values that are not finite.
    ``release``: close ``image`` once its grayscale is made (a large photo's colours are freed
    before the float copy is made)."""
    try:
        return _luminance(image, release)
    except ImageError:
        raise
    except (ValueError, OSError) as err:  # Pillow: "conversion from LAB to L not supported"
        raise ImageError(f"cannot read {image.mode} images ({err})") from None


BLOCK_ROWS = 256  # rows converted at a time: a block's copies stay small whatever the image


def _luminance(image: Image.Image, release: bool) -> np.ndarray:
    """The grayscale in [0, 1] as float32, made block by block: whatever the image's depth or
    mode, its memory is the decoded image and one float32 (H, W), never a float64 or RGBA
    copy of the whole (a 40-megapixel 16-bit PNG took 1.1 GB, an RGBA one 530 MB)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        low, high = image.getextrema()
        top = 65535.0 if image.mode.startswith("I;16") or high > 255 else 255.0
        return _by_blocks(image, release, lambda block: np.clip(block / top, 0, 1))
    if image.mode == "F":
        low, high = image.getextrema()
        if not (np.isfinite(low) and np.isfinite(high)):
            raise ImageError("the image's values include NaN or infinity")
        peak = max(float(high), 1e-12)
        return _by_blocks(image, release, lambda block: np.clip(block / peak, 0, 1))
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if not has_alpha:
        return _by_blocks(_as(image, "L", release), True, lambda block: block / 255)
    with_alpha = image if image.mode in ("RGBA", "LA") else _as(image, "LA", release)
    channel = with_alpha.getchannel("A")
    gray = _as(with_alpha, "L", release or with_alpha is not image)
    lowest, highest = channel.getextrema()
    if lowest > OPAQUE or highest <= OPAQUE:  # all opaque (a canvas) or all transparent
        return _by_blocks(gray, True, lambda block: block / 255)
    background = 0.0 if _mean_where_opaque(gray, channel) > 0.5 else 1.0  # opposite the ink
    alpha = iter(_blocks(channel))

    def composite(block: np.ndarray) -> np.ndarray:
        a = next(alpha) / 255  # (rows, W)
        return block / 255 * a + background * (1 - a)

    return _by_blocks(gray, True, composite)


def _as(image: Image.Image, mode: str, release: bool) -> Image.Image:
    """``image`` in ``mode``; with ``release``, the original closed as soon as it is not
    needed (a photo's colours are freed before the float copy is made)."""
    converted = image if image.mode == mode else image.convert(mode)
    if release and converted is not image:
        image.close()
    return converted


def _blocks(image: Image.Image):
    """The image's rows as float32 arrays, BLOCK_ROWS at a time."""
    width, height = image.size
    for top in range(0, height, BLOCK_ROWS):
        box = (0, top, width, min(height, top + BLOCK_ROWS))
        yield np.asarray(image.crop(box), dtype=np.float32)


def _by_blocks(image: Image.Image, release: bool, convert) -> np.ndarray:
    """float32 (H, W) of ``convert(block)`` for each block of rows; ``image`` closed after
    with ``release``."""
    width, height = image.size
    out = np.empty((height, width), np.float32)
    for top, block in zip(range(0, height, BLOCK_ROWS), _blocks(image), strict=True):
        out[top : top + len(block)] = convert(block)
    if release:
        image.close()
    return out


def _mean_where_opaque(gray: Image.Image, alpha: Image.Image) -> float:
    """The mean grayscale (0-255) of the opaque pixels."""
    total = count = 0.0
    for g, a in zip(_blocks(gray), _blocks(alpha), strict=True):
        opaque = a > OPAQUE
        total += float(g[opaque].sum())
        count += int(opaque.sum())
    return total / max(count, 1)


def load_gray(source: Any) -> np.ndarray:
    """Any image (path, bytes, file object, PIL image, or array) as grayscale float32 (H, W) in
    [0, 1]. A NumPy array may be (H, W) or (H, W, 3|4), uint8/uint16 or float in [0, 1]."""
    if isinstance(source, np.ndarray):
        return array_to_gray(source)
    return to_gray(open_image(source), release=not isinstance(source, Image.Image))


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
