"""Test images made on the fly: MNIST digits as people's PNGs, written numbers, a pixel bomb."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def digit_png(digit: np.ndarray, size: int = 280) -> bytes:
    """An MNIST digit (28, 28) uint8 as a dark-on-white drawing of size x size pixels."""
    return png_bytes(np.asarray(Image.fromarray(255 - digit).resize((size, size), Image.BILINEAR)))


def number_png(digits: list[np.ndarray], gap: int = 6) -> bytes:
    """MNIST digits side by side, dark on white, as one PNG."""
    width = len(digits) * (28 + gap) + 24
    canvas = np.zeros((48, width), np.uint8)
    for k, digit in enumerate(digits):
        x = 12 + k * (28 + gap)
        canvas[10:38, x : x + 28] = digit
    return png_bytes(255 - canvas)


def cropped(digit: np.ndarray) -> np.ndarray:
    """An MNIST digit (28, 28) uint8 cut to the rows and columns where its ink passes 30."""
    rows, cols = np.flatnonzero(digit.max(axis=1) > 30), np.flatnonzero(digit.max(axis=0) > 30)
    return digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def written_close(digits: list[np.ndarray], gap: int = 3) -> np.ndarray:
    """MNIST digits cropped to their ink and written ``gap`` pixels apart (a negative gap: over
    each other, their strokes crossing), as people write a number: dark on white (H, W) uint8."""
    crops = [cropped(digit) for digit in digits]
    height = max(c.shape[0] for c in crops)
    canvas = np.zeros(
        (height + 16, sum(c.shape[1] + gap for c in crops) + 24 + max(0, -gap)), np.uint8
    )
    x = 12
    for crop in crops:
        here = canvas[8 : 8 + crop.shape[0], x : x + crop.shape[1]]
        np.maximum(here, crop, out=here)
        x += crop.shape[1] + gap
    return 255 - canvas


def big_digit_on_a_line(digit: np.ndarray, width: int) -> np.ndarray:
    """An MNIST digit (28, 28) uint8 enlarged to 112 px at the left of a line 160 px high and
    ``width`` wide, as ink (160, width) float32 in [0, 1], for more writing to be added."""
    ink = np.zeros((160, width), np.float32)
    big = Image.fromarray(digit).resize((112, 112), Image.BILINEAR)
    ink[24:136, 20:132] = np.asarray(big, np.float32) / 255
    return ink


def on_grey_paper(ink: np.ndarray, noise: float = 0.0, rng=None) -> np.ndarray:
    """Ink (H, W) in [0, 1] written at 80 % of black on paper at 90 % white, with the paper's
    Gaussian ``noise`` (a deviation, drawn from ``rng``): (H, W) uint8."""
    page = 0.9 - 0.8 * ink
    if noise:
        page = page + rng.normal(0, noise, ink.shape)
    return (np.clip(page, 0, 1) * 255).astype(np.uint8)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height pixels and holds no image data: a pixel bomb's header,
    refused before anything is decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def photo_of(digit: np.ndarray, size=(2400, 1800)) -> bytes:
    """A large JPEG 'photo': the digit written big on grey, unevenly lit, grainy paper."""
    width, height = size
    page = np.full((height, width), 200.0) + np.linspace(-25, 25, width)[None, :]
    page += np.random.default_rng(0).normal(0, 6, page.shape)  # a camera's grain
    ink = np.asarray(Image.fromarray(digit).resize((height // 2, height // 2), Image.BILINEAR))
    top, left = height // 4, (width - height // 2) // 2
    page[top : top + height // 2, left : left + height // 2] -= 0.7 * ink
    buffer = io.BytesIO()
    Image.fromarray(np.clip(page, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()
