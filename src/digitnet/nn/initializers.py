"""Weight initialisers. Each maps (shape, rng) to a float32 array.

fan_in and fan_out of a Dense kernel of shape (D, H) are D and H.
"""

from __future__ import annotations

import numpy as np

from digitnet.nn.errors import lookup


class Initializer:
    name = "initializer"

    def __call__(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    fan_in, fan_out = shape[0], shape[-1]
    receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
    if len(shape) > 2:  # a convolution kernel (kh, kw, C_in, C_out)
        fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
    return fan_in, fan_out


class GlorotUniform(Initializer):
    """U(-l, l) with l = sqrt(6 / (fan_in + fan_out)) — Glorot & Bengio (2010); Keras' default."""

    name = "glorot_uniform"

    def __call__(self, shape, rng):
        fan_in, fan_out = _fans(shape)
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, size=shape).astype(np.float32)


class HeUniform(Initializer):
    """U(-l, l) with l = sqrt(6 / fan_in) — He et al. (2015), suited to ReLU."""

    name = "he_uniform"

    def __call__(self, shape, rng):
        fan_in, _ = _fans(shape)
        limit = np.sqrt(6.0 / fan_in)
        return rng.uniform(-limit, limit, size=shape).astype(np.float32)


class HeNormal(Initializer):
    """N(0, 2 / fan_in), truncated at two standard deviations as in Keras — He et al. (2015)."""

    name = "he_normal"

    def __call__(self, shape, rng):
        fan_in, _ = _fans(shape)
        std = np.sqrt(2.0 / fan_in) / 0.87962566103423978  # std of N(0,1) truncated at ±2
        W = rng.standard_normal(size=shape)
        outside = np.abs(W) > 2
        while outside.any():  # resample the few draws beyond two standard deviations
            W[outside] = rng.standard_normal(size=int(outside.sum()))
            outside = np.abs(W) > 2
        return (W * std).astype(np.float32)


class Zeros(Initializer):
    name = "zeros"

    def __call__(self, shape, rng):
        return np.zeros(shape, dtype=np.float32)


INITIALIZERS: dict[str, type[Initializer]] = {
    cls.name: cls for cls in (GlorotUniform, HeUniform, HeNormal, Zeros)
}


def get_initializer(initializer: str | Initializer) -> Initializer:
    """An initialiser by name ("glorot_uniform", "he_uniform", "he_normal", "zeros") or object."""
    if isinstance(initializer, Initializer):
        return initializer
    return lookup(INITIALIZERS, initializer, "initializer")()


STREAMS = {"init": 0, "fit": 1}


def random_stream(seed: int | None, purpose: str) -> np.random.Generator:
    """An independent random stream per purpose: the same seed must not give the initial
    weights and the shuffling the same numbers. ``seed=None`` draws fresh entropy."""
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng([STREAMS[purpose], seed])
