"""Grey-level filters over squares and along one axis, separable, in NumPy: minimum,
maximum (on booleans: dilation, "grow") and mean. Each is log2(window) vectorised passes
(min and max by doubling spans) or a running sum (mean), whatever the window."""

from __future__ import annotations

import numpy as np


def square_filter(image: np.ndarray, window: int, kind: str) -> np.ndarray:
    """The minimum, maximum or mean (``kind``) over each window x window square, edges
    replicated; separable, so done along rows, then columns."""
    for axis in (0, 1):
        image = filter_along(image, window, kind, axis)
    return image.astype(np.float32)


def filter_along(image: np.ndarray, window: int, kind: str, axis: int) -> np.ndarray:
    """The minimum, maximum or mean (``kind``) over a window of ``window`` values along
    ``axis`` of ``image`` (1-D or 2-D), edges replicated (for min and max the same as
    padding with values that never win)."""
    radius = window // 2
    pad = [(0, 0)] * image.ndim
    pad[axis] = (radius, window - 1 - radius)
    a = np.pad(image, pad, mode="edge").astype(np.float64 if kind == "mean" else image.dtype)
    n = image.shape[axis]

    def part(start: int, length: int) -> np.ndarray:
        return a[start : start + length] if axis == 0 else a[:, start : start + length]

    if kind == "mean":  # differences of a running sum
        a = np.cumsum(a, axis=axis)
        a = np.concatenate([np.zeros_like(part(0, 1)), a], axis=axis)
        return (part(window, n) - part(0, n)) / window
    extreme = np.minimum if kind == "min" else np.maximum
    span = 1  # a[i] holds the extreme of `span` values from i: double it, log2(window) steps
    while 2 * span <= window:
        a = extreme(part(0, a.shape[axis] - span), part(span, a.shape[axis] - span))
        span *= 2
    rest = window - span  # two overlapping spans cover the window (min and max allow it)
    return extreme(part(0, n), part(rest, n))


def grow(mask: np.ndarray, reach: int, axis: int | None = None) -> np.ndarray:
    """``mask`` (bool, 1-D or 2-D) with each True spread ``reach`` places either way: along
    ``axis``, or over a square (2 reach + 1 wide) when ``axis`` is None."""
    axes = range(mask.ndim) if axis is None else (axis,)
    for a in axes:
        mask = filter_along(mask, 2 * reach + 1, "max", a)
    return mask
