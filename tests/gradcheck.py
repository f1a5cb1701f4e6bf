"""Central finite differences in float64: the reference every backward pass is checked against."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

EPS = 1e-6


def numeric_gradient(f: Callable[[], float], x: np.ndarray, eps: float = EPS) -> np.ndarray:
    """d f / d x by central differences, perturbing ``x`` in place one entry at a time."""
    grad = np.zeros_like(x, dtype=np.float64)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        original = flat[i]
        flat[i] = original + eps
        up = f()
        flat[i] = original - eps
        down = f()
        flat[i] = original
        gflat[i] = (up - down) / (2 * eps)
    return grad


def assert_close(analytic: np.ndarray, numeric: np.ndarray, what: str, tol: float = 1e-6):
    """Relative error max|a - n| / max(1, max|n|) below ``tol``."""
    assert analytic.shape == numeric.shape, f"{what}: shape {analytic.shape} != {numeric.shape}"
    scale = max(1.0, float(np.abs(numeric).max()))
    error = float(np.abs(analytic - numeric).max()) / scale
    assert error < tol, f"{what}: relative error {error:.2e} (tolerance {tol:.0e})"
