"""Optimisers. Each updates parameters in place from (param, grad) pairs.

The model hands an optimiser a single pair: every parameter of the network lives in one flat
float32 vector and every gradient in another, so one update is a handful of NumPy calls whatever
the depth of the network. State (velocity, moments) is allocated once, at the first step.
"""

from __future__ import annotations

import math

import numpy as np

from digitnet.nn.errors import NNError, lookup
from digitnet.nn.schedules import Schedule, schedule_from_config

Pairs = list[tuple[np.ndarray, np.ndarray]]


def _check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    value = float(value)
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise NNError(f"{name} must be a finite number {bound}; got {value!r}")
    return value


def check_momentum(momentum: float) -> float:
    """SGD's momentum, a number in [0, 1): at 1 or more the velocity never forgets a gradient
    and the steps grow without bound. The one place this range is checked (the CLI, the web's
    training form and ``digitnet.training`` all ask here)."""
    value = float(momentum)
    if not 0 <= value < 1:  # NaN fails too
        raise NNError(f"momentum must be in [0, 1); got {momentum!r}")
    return value


class Optimizer:
    """Base class: validates hyper-parameters, owns the step counter, the learning-rate
    schedule, decoupled weight decay and the state.

    ``learning_rate`` is a number or a ``Schedule`` of the step. ``weight_decay`` shrinks the
    decayed parameters (``decay_masks``: 1 for kernels, 0 for biases and normalisation) by
    ``lr * weight_decay`` each step, apart from the gradient — Loshchilov & Hutter (2019).
    """

    name = "optimizer"

    def __init__(self, learning_rate: float | Schedule, weight_decay: float = 0.0):
        if isinstance(learning_rate, dict):
            learning_rate = schedule_from_config(learning_rate)
        if isinstance(learning_rate, Schedule):
            self.schedule: Schedule | None = learning_rate
            self.learning_rate = learning_rate(0)
        else:
            self.schedule = None
            self.learning_rate = _check_positive("learning rate", learning_rate)
        self.weight_decay = _check_positive("weight_decay", weight_decay, allow_zero=True)
        self.iterations = 0
        self.state: list[dict[str, np.ndarray]] | None = None

    def step(self, pairs: Pairs, decay_masks: list[np.ndarray] | None = None) -> None:
        """Apply one update to every (param, grad) pair, in place."""
        if self.state is None:
            self.state = [self.init_state(p) for p, _ in pairs]
        if self.schedule is not None:
            self.learning_rate = self.schedule(self.iterations)
        self.iterations += 1
        if self.weight_decay and decay_masks is not None:
            shrink = self.learning_rate * self.weight_decay
            for (p, _), mask in zip(pairs, decay_masks, strict=True):
                p -= shrink * (p * mask)
        for (p, g), state in zip(pairs, self.state, strict=True):
            self.update(p, g, state)

    def init_state(self, param: np.ndarray) -> dict[str, np.ndarray]:
        return {}

    def update(self, p: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def get_config(self) -> dict:
        rate = self.schedule.get_config() if self.schedule else self.learning_rate
        return {"name": self.name, "learning_rate": rate, "weight_decay": self.weight_decay}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum, as Keras defines it:

        v = momentum * v - lr * g
        p = p + v                          (plain momentum)
        p = p + momentum * v - lr * g      (Nesterov)

    With momentum 0 this is p = p - lr * g.
    """

    name = "sgd"

    def __init__(
        self,
        learning_rate: float | Schedule = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
    ):
        super().__init__(learning_rate, weight_decay)
        self.momentum = check_momentum(momentum)
        self.nesterov = bool(nesterov)

    def init_state(self, param):
        return {"velocity": np.zeros_like(param)} if self.momentum else {}

    def update(self, p, g, state):
        lr = self.learning_rate
        if not self.momentum:
            p -= lr * g
            return
        v = state["velocity"]
        v *= self.momentum
        v -= lr * g
        if self.nesterov:
            p += self.momentum * v - lr * g
        else:
            p += v

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam — Kingma & Ba (2015), with Keras' epsilon placement:

    m = b1 m + (1 - b1) g          v = b2 v + (1 - b2) g²
    p = p - lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
    """

    name = "adam"

    def __init__(
        self,
        learning_rate: float | Schedule = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        weight_decay: float = 0.0,
    ):
        super().__init__(learning_rate, weight_decay)
        for label, beta in (("beta_1", beta_1), ("beta_2", beta_2)):
            if not 0 <= beta < 1:
                raise NNError(f"{label} must be in [0, 1); got {beta!r}")
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)
        self.epsilon = _check_positive("epsilon", epsilon)

    def init_state(self, param):
        return {"m": np.zeros_like(param), "v": np.zeros_like(param)}

    def update(self, p, g, state):
        b1, b2, t = self.beta_1, self.beta_2, self.iterations
        m, v = state["m"], state["v"]
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * (g * g)
        alpha = self.learning_rate * math.sqrt(1 - b2**t) / (1 - b1**t)
        denom = np.sqrt(v)
        denom += self.epsilon
        p -= alpha * m / denom

    def get_config(self):
        return {
            **super().get_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
        }


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam}


def get_optimizer(optimizer: str | Optimizer, **kwargs) -> Optimizer:
    """An optimiser by name ("sgd", "adam") with keyword hyper-parameters, or an object."""
    if isinstance(optimizer, Optimizer):
        return optimizer
    return lookup(OPTIMIZERS, optimizer, "optimizer")(**kwargs)
