"""Callbacks: hooks into ``Sequential.fit`` — history, progress display, early stopping,
checkpoints.

``fit`` calls ``on_batch_end`` only for callbacks that override it, so a callback that cares
about epochs alone costs nothing per step.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from typing import IO, Any

import numpy as np

from digitnet.nn.errors import NNError

Logs = dict[str, float]


class Callback:
    model: Any = None

    def set_model(self, model) -> None:
        self.model = model

    def on_train_begin(self, logs: Logs | None = None) -> None: ...

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None: ...

    def on_batch_end(self, step: int, logs: Logs | None = None) -> None: ...

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> None: ...

    def on_train_end(self, logs: Logs | None = None) -> None: ...


class History(Callback):
    """Records each epoch's logs: ``history.history["val_accuracy"][-1]`` as in Keras.

    ``interrupted`` is True when Ctrl-C ended training early; the weights are then those of the
    last completed step.
    """

    def __init__(self):
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.interrupted = False

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))

    def to_dict(self) -> dict[str, Any]:
        return {"epoch": list(self.epoch), "history": self.history, "interrupted": self.interrupted}


def format_logs(logs: Logs, keys: tuple[str, ...] | None = None) -> str:
    items = [(k, v) for k, v in logs.items() if k != "time" and (keys is None or k in keys)]
    return " - ".join(f"{k}: {v:.4g}" if k == "lr" else f"{k}: {v:.4f}" for k, v in items)


def format_duration(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f}us"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.1f}s"
    minutes, sec = divmod(round(seconds), 60)
    return f"{minutes}:{sec:02d}"


class ProgressBar(Callback):
    """A live progress bar with ETA on a terminal; one line per epoch anywhere else (logs, CI).

    The running loss and accuracy shown on the bar are those of the steps done so far.
    """

    WIDTH = 30
    REFRESH_SECONDS = 0.1

    def __init__(self, stream: IO[str] | None = None, dynamic: bool | None = None):
        self.stream = stream or sys.stdout
        if dynamic is None:
            dynamic = bool(getattr(self.stream, "isatty", lambda: False)())
        self.dynamic = dynamic

    def on_train_begin(self, logs=None):
        self.epochs = self.model.fit_params["epochs"]
        self.steps = self.model.fit_params["steps"]

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = self.last_draw = time.perf_counter()
        if self.dynamic:
            self.stream.write(f"Epoch {epoch + 1}/{self.epochs}\n")

    def on_batch_end(self, step, logs=None):
        if not self.dynamic:
            return
        now = time.perf_counter()
        if now - self.last_draw < self.REFRESH_SECONDS and step + 1 < self.steps:
            return
        self.last_draw = now
        done = step + 1
        filled = self.WIDTH * done // self.steps
        bar = "=" * max(filled - 1, 0) + (">" if filled < self.WIDTH else "=")
        eta = (now - self.epoch_start) / done * (self.steps - done)
        rows = done * self.model.fit_params["batch_size"]
        running = format_logs(self.model.running_logs(rows))
        line = (f"{done:>{len(str(self.steps))}}/{self.steps} [{bar:<{self.WIDTH}}]"
                f" - ETA {format_duration(eta)} - {running}")  # fmt: skip
        # Cut to the terminal's width: "\r" returns to the start of the last row only, so a
        # line that wrapped would leave its first rows behind at every redraw.
        columns = shutil.get_terminal_size().columns
        self.stream.write(f"\r{line[: max(columns - 1, 20)]}\x1b[K")
        self.stream.flush()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        seconds = logs.get("time", time.perf_counter() - self.epoch_start)
        per_step = format_duration(seconds / max(self.steps, 1))
        summary = f"{format_duration(seconds)} {per_step}/step - {format_logs(logs)}"
        if self.dynamic:
            bar = "=" * self.WIDTH
            self.stream.write(f"\r{self.steps}/{self.steps} [{bar}] - {summary}\x1b[K\n")
        else:
            self.stream.write(f"Epoch {epoch + 1}/{self.epochs} - {summary}\n")
        self.stream.flush()


class _Monitor(Callback):
    """Shared logic of callbacks that watch one logged quantity for improvement."""

    def __init__(self, monitor: str, mode: str, min_delta: float = 0.0):
        if mode not in ("auto", "min", "max"):
            raise NNError(f"mode must be 'auto', 'min' or 'max'; got {mode!r}")
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        self.monitor, self.mode, self.min_delta = monitor, mode, abs(min_delta)
        self.best = math.inf if mode == "min" else -math.inf

    def current(self, logs: Logs | None) -> float:
        if not logs or self.monitor not in logs:
            available = ", ".join(sorted(logs or {})) or "none"
            raise NNError(f"cannot monitor {self.monitor!r}; logged quantities: {available}")
        return logs[self.monitor]

    def improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(_Monitor):
    """Stops training when ``monitor`` has not improved for ``patience`` epochs; optionally puts
    back the weights of the best epoch."""

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 0,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = False,
    ):
        super().__init__(monitor, mode, min_delta)
        self.patience = int(patience)
        self.restore_best_weights = restore_best_weights
        self.wait = 0
        self.stopped_epoch: int | None = None
        self.best_weights: np.ndarray | None = None

    def on_train_begin(self, logs=None):
        self.wait, self.stopped_epoch, self.best_weights = 0, None, None
        self.best = math.inf if self.mode == "min" else -math.inf

    def on_epoch_end(self, epoch, logs=None):
        value = self.current(logs)
        if self.improved(value):
            self.best, self.wait = value, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_flat_weights()
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.best_weights is not None:
                self.model.set_flat_weights(self.best_weights)


class ModelCheckpoint(_Monitor):
    """Saves the model after each epoch (or only when ``monitor`` improves) to ``filepath``,
    which may contain ``{epoch}`` and any logged quantity, e.g. ``"ckpt-{epoch:02d}.npz"``."""

    def __init__(
        self,
        filepath: str,
        monitor: str = "val_loss",
        save_best_only: bool = False,
        mode: str = "auto",
    ):
        super().__init__(monitor, mode)
        self.filepath = str(filepath)
        self.save_best_only = save_best_only
        self.saved: list[str] = []

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            value = self.current(logs)
            if not self.improved(value):
                return
            self.best = value
        path = self.filepath.format(epoch=epoch + 1, **logs)
        self.model.save(path)
        self.saved.append(path)


def report_pass(rows: int, batch_size: int, start: float, logs: dict[str, float]) -> None:
    """evaluate's and predict's line, as fit's epoch line: steps, time, time per step, logs."""
    steps = max(1, math.ceil(rows / batch_size))
    seconds = time.perf_counter() - start
    line = f"{steps}/{steps} - {format_duration(seconds)} {format_duration(seconds / steps)}/step"
    print(line + (f" - {format_logs(logs)}" if logs else ""), flush=True)
