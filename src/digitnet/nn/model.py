"""Sequential: a stack of layers trained by backpropagation, with Keras' compile/fit/evaluate/
predict/summary.

Parameters live in one flat float32 vector and gradients in another; each layer's ``params`` and
``grads`` are views into them. The optimiser therefore updates the whole network with a few NumPy
calls, and at batch size 32 — where per-call overhead, not arithmetic, is the cost — that matters.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

import numpy as np

from digitnet.nn.activations import softmax
from digitnet.nn.callbacks import Callback, History, ProgressBar, format_duration, format_logs
from digitnet.nn.conv import MaxPool2D
from digitnet.nn.errors import NNError, TrainingDiverged
from digitnet.nn.keras_args import refuse_unsupported, verbosity
from digitnet.nn.layers import Activation, Dense, Dropout, Layer, Shape
from digitnet.nn.losses import (
    CategoricalCrossentropy,
    Loss,
    SparseCategoricalCrossentropy,
    get_loss,
)
from digitnet.nn.optimizers import Optimizer, get_optimizer

PREDICT_BATCH = 4096  # rows per forward pass in predict/evaluate: bounded memory, fast GEMMs
DIVERGENCE_CHECK_STEPS = 64  # how often fit looks for a non-finite loss


def _shape_str(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


class Sequential:
    """A linear stack of layers.

    ``seed`` fixes the initial weights; ``fit(seed=...)`` fixes shuffling and dropout (it
    defaults to the model's seed). The same seeds give bit-identical weights and history.
    Keras' arguments are taken with Keras' meaning, or refused by name (``keras_args``).
    """

    def __init__(
        self,
        layers: Sequence[Layer] | None = (),
        seed: int | None = None,
        name: str | None = "",
        dtype: Any = np.float32,
        trainable: bool = True,
    ):
        refuse_unsupported("Sequential", trainable=trainable)
        self.layers: list[Layer] = []
        self.seed = seed
        self.dtype = np.dtype(dtype)  # float32; float64 serves the gradient checks
        self.name = name or "sequential"
        self.built = False
        self.compiled = False
        self._fused_softmax = False
        self.stop_training = False
        self.history: History | None = None
        self.metadata: dict[str, Any] = {}  # training command, data checksum, timings...
        self.fit_params: dict[str, Any] = {}
        for layer in layers or ():
            self.add(layer)

    # ----------------------------------------------------------------------------- structure

    def add(self, layer: Layer) -> None:
        if not isinstance(layer, Layer):
            raise NNError(f"Sequential takes Layer objects; got {layer!r}")
        if self.built:
            raise NNError("cannot add layers to a model that is already built")
        self.layers.append(layer)

    @property
    def input_shape(self) -> Shape | None:
        return self.layers[0].input_shape if self.layers else None

    @property
    def output_shape(self) -> Shape | None:
        return self.layers[-1].output_shape if self.built else None

    def build(self, input_shape: Shape | None = None, max_values: int | None = None) -> None:
        """Create every layer's parameters for samples of ``input_shape`` (no batch dimension);
        with ``max_values``, refuse before allocating a layer that would take the parameters
        and state past that many values."""
        if not self.layers:
            raise NNError("the model has no layers")
        shape = tuple(input_shape or self.layers[0].input_shape or ())
        if not shape:
            raise NNError(
                "the model does not know its input shape: give the first layer input_shape=..., "
                "e.g. Flatten(input_shape=(28, 28))"
            )
        rng = random_stream(self.seed, "init")
        values = 0
        for i, layer in enumerate(self.layers):
            values += layer.values_needed(shape)
            if max_values is not None and values > max_values:
                raise NNError(
                    f"layer {i} ({type(layer).__name__}) takes the model to {values:,}"
                    f" parameters, more than the {max_values:,} allowed here"
                )
            try:
                shape = layer.build(shape, rng)
            except NNError as err:
                raise NNError(f"layer {i} ({type(layer).__name__}): {err}") from None
        self._pack_parameters()
        trainable = [i for i, layer in enumerate(self.layers) if layer.params]
        self._first_trainable = trainable[0] if trainable else len(self.layers)
        for i, layer in enumerate(self.layers):
            layer.needs_input_grad = i > self._first_trainable
        for before, pool in pairwise(self.layers):
            if isinstance(pool, MaxPool2D) and isinstance(before, Activation):
                fuse = before.activation.name == "relu"
                before.relu_deferred = pool.relu_after = fuse
        self.built = True

    def _pack_parameters(self) -> None:
        """Move every parameter and gradient into one flat vector each; layers keep views."""
        total = sum(p.size for layer in self.layers for p in layer.params.values())
        self._flat_params = np.empty(total, dtype=self.dtype)
        self._flat_grads = np.zeros(total, dtype=self.dtype)
        self._decay_mask = np.zeros(total, dtype=self.dtype)  # 1 on kernels: weight decay
        offset = 0
        for layer in self.layers:
            for key, value in layer.params.items():
                end = offset + value.size
                view = self._flat_params[offset:end].reshape(value.shape)
                view[...] = value
                layer.params[key] = view
                layer.grads[key] = self._flat_grads[offset:end].reshape(value.shape)
                self._decay_mask[offset:end] = key == "W"
                offset = end

    def count_params(self) -> int:
        return int(self._flat_params.size) if self.built else 0

    def get_flat_weights(self) -> np.ndarray:
        """A copy of all parameters as one float32 vector (layer order, then key order)."""
        return self._flat_params.copy()

    def set_flat_weights(self, weights: np.ndarray) -> None:
        self._flat_params[...] = weights

    def get_weights(self) -> list[np.ndarray]:
        """Copies of every parameter array, in Keras' order (layer by layer, W before b)."""
        return [p.copy() for layer in self.layers for p in layer.params.values()]

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        targets = [(layer, key) for layer in self.layers for key in layer.params]
        if len(weights) != len(targets):
            raise NNError(f"set_weights expects {len(targets)} arrays; got {len(weights)}")
        for (layer, key), value in zip(targets, weights, strict=True):
            param = layer.params[key]
            if np.shape(value) != param.shape:
                raise NNError(
                    f"{type(layer).__name__} {key}: expected shape {_shape_str(param.shape)};"
                    f" got {_shape_str(np.shape(value))}"
                )
            param[...] = value

    # ------------------------------------------------------------------------------- compile

    def compile(
        self,
        optimizer: str | Optimizer = "sgd",
        loss: str | Loss = "sparse_categorical_crossentropy",
        metrics: Sequence[str] | None = None,
        loss_weights: Any = None,
        weighted_metrics: Any = None,
        run_eagerly: bool = False,
        steps_per_execution: int = 1,
        jit_compile: Any = "auto",
        auto_scale_loss: bool = True,
    ) -> None:
        """Choose the optimiser, the loss and the metrics (only "accuracy" is known)."""
        refuse_unsupported("compile", loss_weights=loss_weights,
                           weighted_metrics=weighted_metrics, run_eagerly=run_eagerly,
                           steps_per_execution=steps_per_execution, jit_compile=jit_compile,
                           auto_scale_loss=auto_scale_loss)  # fmt: skip
        self.optimizer = get_optimizer(optimizer)
        self.loss = get_loss(loss)
        self.metrics = list(metrics or [])
        for metric in self.metrics:
            if metric not in ("accuracy", "acc"):
                raise NNError(f"unknown metric {metric!r}; valid metrics: accuracy")
        # Softmax followed by cross-entropy: train on the logits with the fused, stable loss,
        # whose gradient is (softmax(Z) - onehot) / N. Predictions still come out as softmax.
        head = self.layers[-1] if self.layers else None
        self._fused_softmax = (
            isinstance(head, Activation)
            and head.activation.name == "softmax"
            and isinstance(self.loss, (SparseCategoricalCrossentropy, CategoricalCrossentropy))
            and not self.loss.from_logits
        )
        if isinstance(head, Activation):
            head.output_logits = self._fused_softmax
        self._train_loss = self.loss.with_logits() if self._fused_softmax else self.loss
        self.compiled = True

    # ------------------------------------------------------------------------ forward/backward

    def _forward(self, X: np.ndarray, training: bool) -> np.ndarray:
        for layer in self.layers:
            X = layer.forward(X, training)
        return X

    def _backward(self, dout: np.ndarray) -> None:
        for layer in reversed(self.layers[self._first_trainable :]):
            dout = layer.backward(dout)

    def _outputs_to_predictions(self, out: np.ndarray) -> np.ndarray:
        return softmax(out) if self._fused_softmax else out

    def forward_layers(self, x: np.ndarray) -> list[np.ndarray]:
        """Each layer's output for inputs x, in order: what every neuron does (inference mode).

        The last entry is the prediction (probabilities for a softmax head).
        """
        X = self._check_x(x, "forward_layers")
        outputs = []
        for layer in self.layers:
            X = layer.forward(X, training=False)
            outputs.append(X)
        outputs[-1] = self._outputs_to_predictions(outputs[-1])
        return outputs

    def input_gradient(self, x: Any, unit: int | Sequence[int]) -> np.ndarray:
        """How each input value moves one output score, in inference mode: d score / d x of
        shape (N, *input_shape) — backpropagation carried on down to the pixels.

        ``unit`` picks the output (one for all samples, or one per sample). Its score is the
        logit (the head's input to softmax) when the head is a softmax, else the output itself.
        Parameter gradients are not computed (nor touched).
        """
        return self.trace(x, unit)[1]

    def trace(
        self, x: Any, unit: int | Sequence[int] | None = None
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """One inference pass that keeps what ``forward_layers`` returns (each layer's output,
        the prediction last) and backpropagates the score of ``unit`` (default: each sample's
        predicted output) to the input, as ``input_gradient`` does: (outputs, gradient)."""
        X = self._check_x(x, "trace")
        head = self.layers[-1]
        saved = [(layer.needs_input_grad, layer.tracing) for layer in self.layers]
        head_logits = getattr(head, "output_logits", False)
        softmax_head = isinstance(head, Activation) and head.activation.name == "softmax"
        try:
            for layer in self.layers:
                layer.needs_input_grad, layer.tracing = True, True
            if softmax_head:
                head.output_logits = True
            outputs = []
            out = X
            for layer in self.layers:
                out = layer.forward(out, training=False)
                outputs.append(out)
            units = self._units(out.argmax(axis=1) if unit is None else unit, len(X))
            grad = np.zeros_like(out)  # (N, outputs): 1 at each sample's unit
            grad[np.arange(len(X)), units] = 1
            for layer in reversed(self.layers):
                grad = layer.backward(grad)
        finally:
            for layer, (needs, tracing) in zip(self.layers, saved, strict=True):
                layer.needs_input_grad, layer.tracing = needs, tracing
            if isinstance(head, Activation):
                head.output_logits = head_logits
        if softmax_head:
            outputs[-1] = softmax(outputs[-1])
        return outputs, grad

    def _units(self, unit: Any, n: int) -> np.ndarray:
        """``unit`` (one for all n samples, or one each) checked against the outputs."""
        outputs = self.output_shape[-1]
        units = np.asarray(unit)
        if units.ndim > 1 or (units.ndim == 1 and len(units) != n):
            raise NNError(
                f"give one unit for all samples or one per sample ({n}); got {units.shape}"
            )
        if units.dtype.kind not in "iu" or (
            units.size and not (0 <= units.min() <= units.max() < outputs)
        ):
            raise NNError(f"unit must be an integer in [0, {outputs}); got {unit!r}")
        return np.broadcast_to(units, (n,))

    # ---------------------------------------------------------------------------- validation

    def _check_x(self, x: Any, where: str) -> np.ndarray:
        """x as a float32 array of shape (N, *input_shape); builds the model on first use."""
        X = np.asarray(x)
        if X.dtype.kind not in "biuf":
            raise NNError(f"{where} expects a numeric array; got dtype {X.dtype}")
        if not self.built:
            self.build(self.input_shape or X.shape[1:])
        expected = self.layers[0].input_shape
        if X.shape[1:] != expected or X.ndim < 2:
            hint = ""
            if X.size and math.prod(X.shape[1:]) == math.prod(expected):
                hint = f" — reshape it with x.reshape(-1, {', '.join(map(str, expected))})"
            raise NNError(
                f"{where} expects x of shape (N, {', '.join(map(str, expected))});"
                f" got {_shape_str(X.shape)}{hint}"
            )
        if len(X) == 0:
            raise NNError(f"{where} got no samples (x has shape {_shape_str(X.shape)})")
        return X.astype(self.dtype, copy=False)

    def _check_y(self, y: Any, n: int, where: str) -> np.ndarray:
        Y = np.asarray(y)
        classes = self.layers[-1].output_shape[-1]
        if len(Y) != n:
            raise NNError(f"{where}: x has {n} samples but y has {len(Y)}")
        if self.loss.sparse_labels and Y.ndim != 1:
            raise NNError(
                f"{where}: {self.loss.name} expects integer labels of shape (N,);"
                f" got {_shape_str(Y.shape)} — use categorical_crossentropy for one-hot targets"
            )
        if isinstance(self.loss, CategoricalCrossentropy) and Y.ndim != 2:
            raise NNError(
                f"{where}: categorical_crossentropy expects one-hot targets of shape"
                f" (N, {classes}); got {_shape_str(Y.shape)}"
                " — use sparse_categorical_crossentropy for integer labels"
            )
        if Y.ndim == 1:
            if Y.dtype.kind == "f" and not np.all(np.round(Y) == Y):
                raise NNError(f"{where}: labels must be whole numbers")
            Y = Y.astype(np.intp, copy=False)
            if Y.min() < 0 or Y.max() >= classes:
                raise NNError(
                    f"{where}: labels must be in 0..{classes - 1} for a {classes}-unit output;"
                    f" got values from {Y.min()} to {Y.max()}"
                )
            return Y
        if Y.shape[1:] != (classes,):
            raise NNError(
                f"{where} expects y of shape (N,) or (N, {classes}); got {_shape_str(Y.shape)}"
            )
        return Y.astype(self.dtype, copy=False)

    def _require_compiled(self, where: str) -> None:
        if not self.compiled:
            raise NNError(f"call compile(...) before {where}()")

    # ----------------------------------------------------------------------------- inference

    def predict(
        self,
        x: Any,
        batch_size: int | None = None,
        verbose: Any = "auto",
        steps: Any = None,
        callbacks: Any = None,
    ) -> np.ndarray:
        """Predictions for x (N, *input_shape): (N, C) float32, probabilities for softmax heads.
        As in Keras, ``verbose`` 1 or 2 (the default, "auto", is 1) prints one line when done;
        ``batch_size`` (rows per forward pass, PREDICT_BATCH by default) changes nothing else."""
        refuse_unsupported("predict", steps=steps, callbacks=callbacks or None)
        shown = verbosity(verbose, "predict")
        X = self._check_x(x, "predict")
        start = time.perf_counter()
        out = self._outputs_to_predictions(self._raw_outputs(X, batch_size or PREDICT_BATCH))
        if shown:
            _report_pass(len(X), batch_size or PREDICT_BATCH, start, {})
        return out

    def _raw_outputs(self, X: np.ndarray, batch_size: int = PREDICT_BATCH) -> np.ndarray:
        """The last layer's outputs (logits for a fused softmax head) in batches of rows."""
        chunks = [
            self._forward(X[i : i + batch_size], training=False)
            for i in range(0, len(X), batch_size)
        ]
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)

    def _metrics_of(self, Y: np.ndarray, out: np.ndarray, prefix: str = "") -> dict[str, float]:
        logs = {prefix + "loss": self._train_loss(Y, out)}
        if self.metrics:
            labels = Y if Y.ndim == 1 else Y.argmax(axis=1)
            logs[prefix + "accuracy"] = float(np.mean(out.argmax(axis=1) == labels))
        return logs

    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: Any = "auto",
        sample_weight: Any = None,
        steps: Any = None,
        callbacks: Any = None,
        return_dict: bool = False,
    ) -> list[float] | dict[str, float]:
        """Loss (and accuracy, if compiled with it) on (x, y): ``[loss, accuracy]`` as Keras,
        or ``{"loss": ..., "accuracy": ...}`` with ``return_dict``. As in Keras, ``verbose`` 1
        or 2 (the default, "auto", is 1) prints them in one line."""
        refuse_unsupported("evaluate", sample_weight=sample_weight, steps=steps,
                           callbacks=callbacks or None)  # fmt: skip
        shown = verbosity(verbose, "evaluate")
        self._require_compiled("evaluate")
        X = self._check_x(x, "evaluate")
        Y = self._check_y(y, len(X), "evaluate")
        start = time.perf_counter()
        logs = self._metrics_of(Y, self._raw_outputs(X, batch_size or PREDICT_BATCH))
        if shown:
            _report_pass(len(X), batch_size or PREDICT_BATCH, start, logs)
        return logs if return_dict else list(logs.values())

    # ------------------------------------------------------------------------------- training

    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: Any = "auto",
        callbacks: Sequence[Callback] | None = None,
        validation_split: float = 0.0,
        validation_data: tuple[Any, Any] | None = None,
        shuffle: bool = True,
        class_weight: Any = None,
        sample_weight: Any = None,
        initial_epoch: int = 0,
        steps_per_epoch: Any = None,
        validation_steps: Any = None,
        validation_batch_size: int | None = None,
        validation_freq: int = 1,
        *,
        seed: int | None = None,
        augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
    ) -> History:
        """Train with mini-batch backpropagation. Returns a ``History``.

        x (N, *input_shape), y (N,) integer labels or (N, C) targets. Each epoch shuffles the
        samples (unless ``shuffle=False``), takes ``batch_size`` of them per step, and ends with
        the epoch's mean training loss/accuracy (measured on each batch before its update, as
        Keras does) and, given validation data, ``val_loss``/``val_accuracy``.

        The arguments are Keras', in Keras' order, with Keras' meaning: ``batch_size`` None is
        32; ``verbose`` "auto" or 1 draws a progress bar (one line per epoch when the output is
        not a terminal), 2 one line per epoch, 0 nothing; epochs run from ``initial_epoch`` to
        ``epochs``; validation runs every ``validation_freq`` epochs. Sample and class weights
        and step counts are refused (``keras_args``). digitnet's own, by keyword only:
        ``seed`` and ``augment(X_batch, rng)``, which transforms each training batch (random
        distortions of the inputs, same shape); validation data is never augmented.

        Ctrl-C stops cleanly: the weights of the last completed step are kept and
        ``history.interrupted`` is True. A non-finite loss raises ``TrainingDiverged`` after
        restoring the weights from the start of that epoch.
        """
        refuse_unsupported(
            "fit",
            class_weight=class_weight,
            sample_weight=sample_weight,
            steps_per_epoch=steps_per_epoch,
            validation_steps=validation_steps,
        )
        shown = verbosity(verbose, "fit")
        self._require_compiled("fit")
        epochs, batch_size = (
            _positive_int("epochs", epochs),
            _positive_int("batch_size", 32 if batch_size is None else batch_size),
        )
        validation_freq = _positive_int("validation_freq", validation_freq)
        if not 0 <= _whole("initial_epoch", initial_epoch) < epochs:
            raise NNError(f"initial_epoch must be below epochs ({epochs}); got {initial_epoch}")
        X = self._check_x(x, "fit")
        Y = self._check_y(y, len(X), "fit")
        X_val, Y_val = None, None
        if validation_data is not None:
            if len(validation_data) != 2:
                raise NNError("validation_data must be a pair (x_val, y_val)")
            X_val = self._check_x(validation_data[0], "fit (validation_data)")
            Y_val = self._check_y(validation_data[1], len(X_val), "fit (validation_data)")
        elif validation_split:
            if not 0 < validation_split < 1:
                raise NNError(f"validation_split must be in (0, 1); got {validation_split!r}")
            n_val = int(len(X) * validation_split)
            if n_val == 0 or n_val == len(X):
                raise NNError(f"validation_split={validation_split} leaves an empty split")
            X, X_val, Y, Y_val = X[:-n_val], X[-n_val:], Y[:-n_val], Y[-n_val:]

        rng = random_stream(self.seed if seed is None else seed, "fit")
        for layer in self.layers:
            if isinstance(layer, Dropout):
                layer.rng = rng
        N = len(X)
        steps = math.ceil(N / batch_size)
        self.history = History()
        bars = {0: [], 1: [ProgressBar()], 2: [ProgressBar(dynamic=False)]}[shown]
        all_callbacks = [self.history, *bars, *(callbacks or ())]
        for callback in all_callbacks:
            callback.set_model(self)
        per_step = [
            cb for cb in all_callbacks if type(cb).on_batch_end is not Callback.on_batch_end
        ]
        self.fit_params = {"epochs": epochs, "steps": steps, "batch_size": batch_size, "samples": N}
        self.stop_training = False
        for callback in all_callbacks:
            callback.on_train_begin()

        # Non-finite values are caught by _check_finite, with a useful message, not warnings.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            try:
                for epoch in range(initial_epoch, epochs):
                    for callback in all_callbacks:
                        callback.on_epoch_begin(epoch)
                    start = time.perf_counter()
                    logs = self._train_epoch(
                        X, Y, batch_size, shuffle, rng, per_step, epoch, augment
                    )
                    if X_val is not None and (epoch + 1) % validation_freq == 0:
                        out = self._raw_outputs(X_val, validation_batch_size or PREDICT_BATCH)
                        logs.update(self._metrics_of(Y_val, out, "val_"))
                    logs["time"] = time.perf_counter() - start
                    logs["lr"] = self.optimizer.learning_rate
                    for callback in all_callbacks:
                        callback.on_epoch_end(epoch, logs)
                    if self.stop_training:
                        break
            except KeyboardInterrupt:
                self.history.interrupted = True
        for callback in all_callbacks:
            callback.on_train_end()
        return self.history

    def _train_epoch(
        self, X, Y, batch_size, shuffle, rng, per_step, epoch, augment
    ) -> dict[str, float]:
        N = len(X)
        order = rng.permutation(N) if shuffle else np.arange(N)
        C = self.layers[-1].output_shape[-1]
        # The outputs each batch produced before its update: the epoch's loss and accuracy are
        # computed from them in bulk, off the per-step path.
        self._epoch = {"outputs": np.empty((N, C), self.dtype), "Y": Y, "order": order, "done": 0}
        self._epoch["sums"] = {"loss": 0.0, "accuracy": 0.0}
        start_weights = self._flat_params.copy()
        pairs = [(self._flat_params, self._flat_grads)]
        masks = [self._decay_mask] if self.optimizer.weight_decay else None
        outputs, loss, optimizer = self._epoch["outputs"], self._train_loss, self.optimizer
        checked = done = 0
        for step, i in enumerate(range(0, N, batch_size)):
            batch = order[i : i + batch_size]
            X_batch = X[batch] if augment is None else augment(X[batch], rng)
            out = self._forward(X_batch, training=True)
            outputs[i : i + len(batch)] = out
            self._backward(loss.gradient(Y[batch], out))
            optimizer.step(pairs, masks)
            done = i + len(batch)
            if step % DIVERGENCE_CHECK_STEPS == DIVERGENCE_CHECK_STEPS - 1:
                checked = self._check_finite(start_weights, checked, done, epoch, step)
            for callback in per_step:
                callback.on_batch_end(step)
            if self.stop_training:  # a callback asked to stop now (Keras checks each step too)
                break
        self._check_finite(start_weights, checked, done, epoch, step)
        return self.running_logs(done)

    def _check_finite(self, start_weights, begin, end, epoch, step) -> int:
        """Raise TrainingDiverged if any output in [begin, end) of this epoch is not finite."""
        if np.isfinite(self._epoch["outputs"][begin:end]).all():
            return end
        self._flat_params[...] = start_weights
        lr = getattr(self.optimizer, "learning_rate", None)
        raise TrainingDiverged(
            f"the loss became NaN or infinite in epoch {epoch + 1}, step {step + 1}: training"
            f" diverged. Try a lower learning rate (now {lr:g}; try {lr / 10:g})."
            " The weights from the start of that epoch were restored."
        )

    def running_logs(self, rows: int | None = None) -> dict[str, float]:
        """Mean loss (and accuracy) over the first ``rows`` samples of the current epoch
        (all of them by default), computed incrementally from the stored batch outputs."""
        state = self._epoch
        done = state["done"]
        end = len(state["order"]) if rows is None else min(rows, len(state["order"]))
        if end > done:
            rows = state["order"][done:end]
            chunk = self._metrics_of(state["Y"][rows], state["outputs"][done:end])
            for key, value in chunk.items():
                state["sums"][key] += value * (end - done)
            state["done"] = end
        count = max(state["done"], 1)
        keys = ("loss", "accuracy") if self.metrics else ("loss",)
        return {key: state["sums"][key] / count for key in keys}

    # ------------------------------------------------------------------------------- display

    def layer_table(self) -> list[dict[str, Any]]:
        """One row per layer: name, type, activation ("" if none), output_shape, params."""
        if not self.built:
            self.build()
        rows = []
        for i, layer in enumerate(self.layers):
            activation = getattr(layer, "activation", None)
            rows.append(
                {
                    "name": layer.name or f"{type(layer).__name__.lower()}_{i}",
                    "type": type(layer).__name__,
                    "activation": activation.name
                    if isinstance(layer, Dense) and activation.name != "linear"
                    else "",
                    "output_shape": list(layer.output_shape),
                    "params": layer.count_params(),
                }
            )
        return rows

    def summary(
        self,
        line_length: Any = None,
        positions: Any = None,
        print_fn: Callable[[str], Any] | None = None,
        expand_nested: bool = False,
        show_trainable: bool = False,
        layer_range: Any = None,
    ) -> str:
        """A table of the layers, their output shapes and parameter counts, given to
        ``print_fn`` (``print`` by default, as in Keras); returned too."""
        refuse_unsupported("summary", line_length=line_length, positions=positions,
                           expand_nested=expand_nested, show_trainable=show_trainable,
                           layer_range=layer_range)  # fmt: skip
        if not self.built:
            self.build()
        rows = [("Layer (type)", "Output Shape", "Param #")]
        for row in self.layer_table():
            kind = row["type"] + (f", {row['activation']}" if row["activation"] else "")
            shape = "(None, " + ", ".join(map(str, row["output_shape"])) + ")"
            rows.append((f"{row['name']} ({kind})", shape, f"{row['params']:,}"))
        widths = [max(len(r[c]) for r in rows) + 2 for c in range(3)]
        line = "-" * sum(widths)

        def fmt(row):
            return "".join(
                cell.ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()

        lines = [f'Model: "{self.name}"', line, fmt(rows[0]), "=" * sum(widths)]
        lines += [fmt(row) for row in rows[1:]]
        lines += ["=" * sum(widths), f"Total params: {self.count_params():,}", line]
        text = "\n".join(lines)
        (print_fn or print)(text)
        return text

    # ---------------------------------------------------------------------------------- files

    def save(self, filepath, overwrite: bool = True, zipped: Any = None) -> None:
        """Write the model to one self-describing file (see ``digitnet.nn.io``), atomically. As
        in Keras, an existing file is replaced unless ``overwrite=False``; only a regular file
        ever is."""
        from digitnet.nn.io import save_model

        refuse_unsupported("save", zipped=zipped)
        save_model(self, filepath, overwrite=overwrite)


def _report_pass(rows: int, batch_size: int, start: float, logs: dict[str, float]) -> None:
    """evaluate's and predict's line, as fit's epoch line: steps, time, time per step, logs."""
    steps = max(1, math.ceil(rows / batch_size))
    seconds = time.perf_counter() - start
    line = f"{steps}/{steps} - {format_duration(seconds)} {format_duration(seconds / steps)}/step"
    print(line + (f" - {format_logs(logs)}" if logs else ""), flush=True)


STREAMS = {"init": 0, "fit": 1}


def random_stream(seed: int | None, purpose: str) -> np.random.Generator:
    """An independent random stream per purpose: the same seed must not give the initial
    weights and the shuffling the same numbers. ``seed=None`` draws fresh entropy."""
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng([STREAMS[purpose], seed])


def _whole(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise NNError(f"{name} must be a whole number; got {value!r}")
    return int(value)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise NNError(f"{name} must be a positive whole number; got {value!r}")
    return int(value)
