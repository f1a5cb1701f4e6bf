"""Learning-rate schedules: the learning rate as a function of the optimiser's step (0-based).

An optimiser takes one wherever it takes a number: ``Adam(learning_rate=CosineDecay(1e-3, 5000))``.
"""

from __future__ import annotations

import math

from digitnet.nn.errors import NNError, lookup


class Schedule:
    name = "schedule"

    def __call__(self, step: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"name": self.name, **{k: v for k, v in vars(self).items()}}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


def _positive(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise NNError(f"{name} must be a finite number > 0; got {value!r}")
    return value


def _steps(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise NNError(f"{name} must be a whole number of steps >= 1; got {value!r}")
    return value


class StepDecay(Schedule):
    """lr = initial * decay_rate ** floor(step / decay_steps)."""

    name = "step_decay"

    def __init__(self, initial: float, decay_rate: float, decay_steps: int):
        self.initial = _positive("initial learning rate", initial)
        self.decay_rate = _positive("decay_rate", decay_rate)
        self.decay_steps = _steps("decay_steps", decay_steps)

    def __call__(self, step):
        return self.initial * self.decay_rate ** (step // self.decay_steps)


class CosineDecay(Schedule):
    """Linear warm-up to ``initial``, then half a cosine down to ``initial * alpha`` at
    ``decay_steps`` — Loshchilov & Hutter (2017), without restarts."""

    name = "cosine_decay"

    def __init__(self, initial: float, decay_steps: int, alpha: float = 0.0, warmup_steps: int = 0):
        self.initial = _positive("initial learning rate", initial)
        self.decay_steps = _steps("decay_steps", decay_steps)
        if not 0 <= alpha <= 1:
            raise NNError(f"alpha must be in [0, 1]; got {alpha!r}")
        if warmup_steps < 0 or warmup_steps >= decay_steps:
            raise NNError(f"warmup_steps must be in [0, decay_steps); got {warmup_steps!r}")
        self.alpha, self.warmup_steps = float(alpha), int(warmup_steps)

    def __call__(self, step):
        if step < self.warmup_steps:
            return self.initial * (step + 1) / self.warmup_steps
        span = self.decay_steps - self.warmup_steps
        progress = min(step - self.warmup_steps, span) / span
        cosine = 0.5 * (1 + math.cos(math.pi * progress))
        return self.initial * (self.alpha + (1 - self.alpha) * cosine)


class OneCycle(Schedule):
    """The one-cycle policy — Smith & Topin (2019): a cosine rise from max_lr / div_factor to
    max_lr over the first ``pct_start`` of the steps, then a cosine fall to
    max_lr / (div_factor * final_div_factor). (PyTorch's OneCycleLR, learning rate only.)"""

    name = "one_cycle"

    def __init__(
        self,
        max_lr: float,
        total_steps: int,
        pct_start: float = 0.25,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
    ):
        self.max_lr = _positive("max_lr", max_lr)
        self.total_steps = _steps("total_steps", total_steps)
        if not 0 < pct_start < 1:
            raise NNError(f"pct_start must be in (0, 1); got {pct_start!r}")
        self.pct_start = float(pct_start)
        self.div_factor = _positive("div_factor", div_factor)
        self.final_div_factor = _positive("final_div_factor", final_div_factor)

    def __call__(self, step):
        start = self.max_lr / self.div_factor
        end = start / self.final_div_factor
        peak = max(self.pct_start * self.total_steps - 1, 1)
        step = min(step, self.total_steps - 1)
        if step <= peak:
            low, high, progress = start, self.max_lr, step / peak
        else:
            low, high = self.max_lr, end
            progress = (step - peak) / max(self.total_steps - 1 - peak, 1)
        return high + (low - high) * 0.5 * (1 + math.cos(math.pi * progress))


SCHEDULES: dict[str, type[Schedule]] = {cls.name: cls for cls in (StepDecay, CosineDecay, OneCycle)}


def schedule_from_config(config: dict) -> Schedule:
    config = dict(config)
    return lookup(SCHEDULES, config.pop("name"), "schedule")(**config)
