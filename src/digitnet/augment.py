"""Random distortions of digit images for training: shifts, rotations, scaling, slant, width,
elastic warps and stroke thickness.

Every image of a batch gets its own random affine map (and, optionally, a smooth random
displacement field — Simard, Steinkraus & Platt, 2003), applied by bilinear resampling with
zeros outside the image, and then, optionally, its own stroke thickness: a blend towards a
one-pixel grey-level dilation (a broader pen) or erosion (a finer one). Vectorised over the
batch; the same generator state gives the same batch. Images are (N, H, W) or (N, H, W, 1)
float arrays, ink bright on dark; labels never change.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from digitnet.vision.resample import bilinear


@dataclass(frozen=True)
class Augment:
    max_shift: float = 2.0  # pixels, each axis
    max_rotation: float = 10.0  # degrees, either way
    min_scale: float = 0.9
    max_scale: float = 1.1
    max_shear: float = 0.0  # slant: columns move by up to this fraction of the row offset
    max_aspect: float = 1.0  # width/height ratio changes by up to this factor either way
    elastic_alpha: float = 0.0  # mean displacement scale in pixels; 0 turns elastic warps off
    elastic_sigma: float = 4.0  # smoothness of the displacement field, in pixels
    max_thicken: float = 0.0  # up to this fraction of a one-pixel dilation of the strokes
    max_thin: float = 0.0  # up to this fraction of a one-pixel erosion

    def __call__(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A randomly distorted copy of the batch X, same shape and dtype."""
        images = X.reshape(X.shape[0], X.shape[1], X.shape[2])  # (N, H, W)
        rows, cols = self.sample_coordinates(images.shape, rng)
        out = bilinear(images, rows, cols)
        if self.max_thicken or self.max_thin:
            pen = rng.uniform(-self.max_thin, self.max_thicken, len(out)).astype(np.float32)
            out = change_thickness(out, pen)
        return out.astype(X.dtype, copy=False).reshape(X.shape)

    def sample_coordinates(self, shape, rng) -> tuple[np.ndarray, np.ndarray]:
        """For each output pixel, where to read in the input: rows, cols (N, H, W)."""
        N, H, W = shape
        f32 = np.float32  # coordinates to a hundredth of a pixel need no more
        angle = np.deg2rad(rng.uniform(-self.max_rotation, self.max_rotation, N)).astype(f32)
        scale = rng.uniform(self.min_scale, self.max_scale, N).astype(f32)
        shift = rng.uniform(-self.max_shift, self.max_shift, (N, 2)).astype(f32)
        # Slant and width are drawn only when asked for, so older recipes keep their batches.
        shear = np.zeros(N, f32)
        if self.max_shear:
            shear = rng.uniform(-self.max_shear, self.max_shear, N).astype(f32)
        aspect = np.ones(N, f32)  # width / height
        if self.max_aspect != 1:
            log_aspect = math.log(self.max_aspect)
            aspect = np.exp(rng.uniform(-log_aspect, log_aspect, N)).astype(f32)
        centre_r, centre_c = (H - 1) / 2, (W - 1) / 2
        r, c = np.meshgrid(
            np.arange(H, dtype=f32) - centre_r, np.arange(W, dtype=f32) - centre_c, indexing="ij"
        )
        # The forward map shears, stretches (height by scale/sqrt(aspect), width by
        # scale*sqrt(aspect)), rotates and shifts; this is its inverse, step by step backwards.
        cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
        r = r[None] - shift[:, 0, None, None]  # (N, H, W)
        c = c[None] - shift[:, 1, None, None]
        r, c = cos * r - sin * c, sin * r + cos * c
        r = r * (np.sqrt(aspect) / scale)[:, None, None]
        c = c / (np.sqrt(aspect) * scale)[:, None, None]
        rows = r + centre_r
        cols = c - shear[:, None, None] * r + centre_c
        if self.elastic_alpha:
            rows += self.elastic_alpha * smooth_noise((N, H, W), self.elastic_sigma, rng)
            cols += self.elastic_alpha * smooth_noise((N, H, W), self.elastic_sigma, rng)
        return rows, cols

    def to_dict(self) -> dict:
        return asdict(self)


def change_thickness(images: np.ndarray, pen: np.ndarray) -> np.ndarray:
    """Images (N, H, W) with strokes made broader (pen > 0) or finer (pen < 0): each image is
    blended by |pen| towards its grey-level dilation or erosion by a 3x3 cross. pen: (N,)."""
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    H, W = images.shape[1:]
    neighbours = [padded[:, 1 + dr : 1 + dr + H, 1 + dc : 1 + dc + W]
                  for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1))]  # fmt: skip
    grown = np.maximum.reduce([images, *neighbours])
    shrunk = np.minimum.reduce([images, *neighbours])
    amount = pen[:, None, None]
    return images + np.where(amount > 0, amount * (grown - images), -amount * (shrunk - images))


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
