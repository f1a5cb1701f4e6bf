"""Resampling images: at fractional coordinates (the augmenter's warps, a digit's deskew), and
enlarged (small writing read from a copy several times its size)."""

from __future__ import annotations

import numpy as np
from PIL import Image


def bilinear(images: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Sample images (N, H, W) at fractional (rows, cols) (N, H', W'), zero outside."""
    N, H, W = images.shape
    flat = np.pad(images, ((0, 0), (1, 1), (1, 1))).ravel()  # a zero frame: outside reads 0
    rows = np.clip(rows, -1, H) + 1  # in the framed image, [0, H + 1]
    cols = np.clip(cols, -1, W) + 1
    r0 = np.minimum(np.floor(rows), H).astype(np.intp)  # the 2x2 neighbourhood stays inside
    c0 = np.minimum(np.floor(cols), W).astype(np.intp)
    fr, fc = (rows - r0).astype(np.float32), (cols - c0).astype(np.float32)
    stride = W + 2
    top_left = (np.arange(N)[:, None, None] * (H + 2) + r0) * stride + c0  # (N, H', W')
    top = flat[top_left] * (1 - fc) + flat[top_left + 1] * fc
    bottom = flat[top_left + stride] * (1 - fc) + flat[top_left + stride + 1] * fc
    return top * (1 - fr) + bottom * fr


def enlarged(gray: np.ndarray, factor: int) -> np.ndarray:
    """``gray`` (H, W) enlarged ``factor`` times, bilinear: (factor H, factor W)."""
    H, W = gray.shape
    image = Image.fromarray(gray.astype(np.float32), "F")
    return np.asarray(image.resize((W * factor, H * factor), Image.BILINEAR))
