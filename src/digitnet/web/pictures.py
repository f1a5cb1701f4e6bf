"""Arrays as small PNG pictures the page can show directly (``data:`` URLs): feature maps,
weights, digits."""

from __future__ import annotations

import base64
import io
import math

import numpy as np
from PIL import Image


def png_data_url(pixels: np.ndarray) -> str:
    """A uint8 picture (h, w) gray or (h, w, 3) colour as a data URL."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def gray(values: np.ndarray, top: float | None = None) -> np.ndarray:
    """Non-negative values -> uint8, 0 black and ``top`` (default: the maximum) white."""
    top = float(values.max()) if top is None else top
    scaled = values / top if top > 0 else np.zeros_like(values)
    return (np.clip(scaled, 0, 1) * 255 + 0.5).astype(np.uint8)


def diverging(values: np.ndarray) -> np.ndarray:
    """Signed values -> uint8 RGB (h, w, 3): blue for positive, red for negative, white for
    zero, scaled by the largest magnitude."""
    top = float(np.abs(values).max())
    v = values / top if top > 0 else np.zeros_like(values)
    fade = (1 - np.abs(v))[..., None]  # 1 at zero -> white
    colour = np.where((v >= 0)[..., None], [[37, 99, 235]], [[220, 38, 38]])
    rgb = colour * (1 - fade) + 255 * fade
    return (rgb + 0.5).astype(np.uint8)


def sheet(maps: np.ndarray, gap: int = 1) -> tuple[np.ndarray, tuple[int, int]]:
    """Feature maps (h, w, channels) tiled into one picture, row by row, with a ``gap`` of
    black between them: the picture and its (rows, columns) of tiles."""
    h, w, channels = maps.shape
    cols = math.ceil(math.sqrt(channels))
    rows = math.ceil(channels / cols)
    # Each map with its gap below and to the right, the missing tiles black:
    tiles = np.zeros((rows * cols, h + gap, w + gap), maps.dtype)
    tiles[:channels, :h, :w] = maps.transpose(2, 0, 1)  # (channels, h, w)
    grid = tiles.reshape(rows, cols, h + gap, w + gap).transpose(0, 2, 1, 3)  # (r, h+g, c, w+g)
    picture = grid.reshape(rows * (h + gap), cols * (w + gap))
    return picture[: rows * (h + gap) - gap, : cols * (w + gap) - gap], (rows, cols)
