"""Random distortions of digit images for training: shifts, rotations, scaling, elastic warps.

Every image of a batch gets its own random affine map (and, optionally, a smooth random
displacement field — Simard, Steinkraus & Platt, 2003), applied by bilinear resampling with
zeros outside the image. Vectorised over the batch; the same generator state gives the same
batch. Images are (N, H, W) or (N, H, W, 1) float arrays, ink bright on dark; labels never change.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


@dataclass(frozen=True)
class Augment:
    max_shift: float = 2.0  # pixels, each axis
    max_rotation: float = 10.0  # degrees, either way
    min_scale: float = 0.9
    max_scale: float = 1.1
    elastic_alpha: float = 0.0  # mean displacement scale in pixels; 0 turns elastic warps off
    elastic_sigma: float = 4.0  # smoothness of the displacement field, in pixels

    def __call__(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A randomly distorted copy of the batch X, same shape and dtype."""
        images = X.reshape(X.shape[0], X.shape[1], X.shape[2])  # (N, H, W)
        rows, cols = self.sample_coordinates(images.shape, rng)
        return bilinear(images, rows, cols).astype(X.dtype, copy=False).reshape(X.shape)

    def sample_coordinates(self, shape, rng) -> tuple[np.ndarray, np.ndarray]:
        """For each output pixel, where to read in the input: rows, cols (N, H, W)."""
        N, H, W = shape
        f32 = np.float32  # coordinates to a hundredth of a pixel need no more
        angle = np.deg2rad(rng.uniform(-self.max_rotation, self.max_rotation, N)).astype(f32)
        scale = rng.uniform(self.min_scale, self.max_scale, N).astype(f32)
        shift = rng.uniform(-self.max_shift, self.max_shift, (N, 2)).astype(f32)
        centre_r, centre_c = (H - 1) / 2, (W - 1) / 2
        r, c = np.meshgrid(
            np.arange(H, dtype=f32) - centre_r, np.arange(W, dtype=f32) - centre_c, indexing="ij"
        )
        # The inverse map: undo the shift, then rotate by -angle and divide by the scale.
        cos, sin = (np.cos(angle) / scale)[:, None, None], (np.sin(angle) / scale)[:, None, None]
        r = r[None] - shift[:, 0, None, None]  # (N, H, W)
        c = c[None] - shift[:, 1, None, None]
        rows = cos * r - sin * c + centre_r
        cols = sin * r + cos * c + centre_c
        if self.elastic_alpha:
            rows += self.elastic_alpha * smooth_noise((N, H, W), self.elastic_sigma, rng)
            cols += self.elastic_alpha * smooth_noise((N, H, W), self.elastic_sigma, rng)
        return rows, cols

    def to_dict(self) -> dict:
        return asdict(self)


def gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, math.ceil(3 * sigma))
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-(x**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def smooth_noise(shape, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Uniform noise in [-1, 1] blurred by a Gaussian of ``sigma`` along both image axes and
    rescaled to unit mean absolute value: a smooth random displacement field (N, H, W)."""
    field = rng.uniform(-1, 1, shape).astype(np.float32)
    kernel = gaussian_kernel(sigma).astype(np.float32)
    radius = len(kernel) // 2
    for axis in (1, 2):
        pad = [(0, 0), (0, 0), (0, 0)]
        pad[axis] = (radius, radius)
        padded = np.pad(field, pad)
        field = sliding_window_view(padded, len(kernel), axis=axis) @ kernel
    return field / (np.abs(field).mean(axis=(1, 2), keepdims=True) + 1e-12)


def bilinear(images: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Sample images (N, H, W) at fractional (rows, cols) (N, H', W'), zero outside."""
    N, H, W = images.shape
    flat = images.reshape(N, H * W)
    r0, c0 = np.floor(rows), np.floor(cols)
    fr, fc = rows - r0, cols - c0
    r0, c0 = r0.astype(np.intp), c0.astype(np.intp)
    out = np.zeros(rows.shape, dtype=np.float32)
    for dr, dc, weight in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc),
                           (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):  # fmt: skip
        r, c = r0 + dr, c0 + dc
        inside = (r >= 0) & (r < H) & (c >= 0) & (c < W)
        index = (np.clip(r, 0, H - 1) * W + np.clip(c, 0, W - 1)).reshape(N, -1)
        values = np.take_along_axis(flat, index, axis=1).reshape(rows.shape)
        out += weight * values * inside
    return out
