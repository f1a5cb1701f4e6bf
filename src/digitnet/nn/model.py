"""Sequential: a stack of layers trained by backpropagation, with Keras' compile/fit/evaluate/
predict/summary.

Parameters live in one flat float32 vector and gradients in another; each layer's ``params`` and
``grads`` are views into them. The optimiser therefore updates the whole network with a few NumPy
calls, and at batch size 32 — where per-call overhead, not arithmetic, is the cost — that matters.

The model runs a plan (``digitnet.nn.fusion``): its layers as the math reads with ``fuse=False``,
the same computation rewritten for speed by default. Training lives in ``trainer``, explanations
(each layer's output, gradients down to the pixels) in ``explain``, the summary in ``summary``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from digitnet.nn import explain, inputs, trainer
from digitnet.nn.callbacks import Callback, History, report_pass
from digitnet.nn.errors import NNError
from digitnet.nn.fusion import Plan, fused_plan, plain_plan
from digitnet.nn.initializers import random_stream
from digitnet.nn.keras_args import refuse_unsupported, verbosity
from digitnet.nn.layers import Layer, Shape
from digitnet.nn.losses import Loss, get_loss
from digitnet.nn.optimizers import Optimizer, get_optimizer
from digitnet.nn.saving import save_model
from digitnet.nn.summary import layer_table, summary_text

# Rows per forward pass in predict/evaluate (and fit's validation). A convolution's windows
# grow with it: at 4,096 rows the cnn preset's third held 765 MB, and 10,000 MNIST digits took
# 3.5 s with a 1.3 GB peak, against 2.8 s and 0.27 GB at 256 rows (its GEMMs still large).
PREDICT_BATCH = 256
PASS_BYTES = 256 * 2**20  # a forward pass of a model heavier than the cnn takes fewer rows


class Sequential:
    """A linear stack of layers.

    ``seed`` fixes the initial weights; ``fit(seed=...)`` fixes shuffling and dropout (it
    defaults to the model's seed). The same seeds give bit-identical weights and history.
    ``fuse=False`` runs the layers as the math reads, without the fast path's rewrites
    (``digitnet.nn.fusion``): the same numbers to float32 rounding, more slowly.
    Keras' arguments are taken with Keras' meaning, or refused by name (``keras_args``).
    """

    def __init__(
        self,
        layers: Sequence[Layer] | None = (),
        seed: int | None = None,
        name: str | None = "",
        dtype: Any = np.float32,
        trainable: bool = True,
        *,
        fuse: bool = True,
    ):
        refuse_unsupported("Sequential", trainable=trainable)
        self._fuse = bool(fuse)
        self.layers: list[Layer] = []
        self.seed = seed
        self.dtype = np.dtype(dtype)  # float32; float64 serves the gradient checks
        self.name = name or "sequential"
        self.built = False
        self.compiled = False
        self.loss: Loss | None = None
        self._plan: Plan | None = None  # made on first use, after build and compile
        self.stop_training = False
        self.history: History | None = None
        self.metadata: dict[str, Any] = {}  # training command, data checksum, timings...
        self.fit_params: dict[str, Any] = {}
        self.epoch: trainer.EpochRecord | None = None  # the epoch being trained
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
        self._plan = None
        self.built = True

    def _pack_parameters(self) -> None:
        """Move every parameter and gradient into one flat vector each; layers keep views."""
        total = sum(layer.count_params() for layer in self.layers)
        self.flat_params = np.empty(total, dtype=self.dtype)
        self.flat_grads = np.zeros(total, dtype=self.dtype)
        self.decay_mask = np.zeros(total, dtype=self.dtype)  # 1 on kernels: weight decay
        offset = 0
        for layer in self.layers:
            for key, value in layer.params.items():
                self.decay_mask[offset : offset + value.size] = key == "W"
                offset += value.size
            start = offset - layer.count_params()
            layer.adopt(self.flat_params[start:offset], self.flat_grads[start:offset])

    def count_params(self) -> int:
        return int(self.flat_params.size) if self.built else 0

    @property
    def sample_bytes(self) -> int:
        """The working memory of one sample's inference pass (built): its input, every
        layer's output and a convolution's windows — known from the architecture alone."""
        values = math.prod(self.input_shape) + sum(layer.working_values() for layer in self.layers)
        return values * self.dtype.itemsize

    def get_flat_weights(self) -> np.ndarray:
        """A copy of all parameters as one float32 vector (layer order, then key order)."""
        return self.flat_params.copy()

    def set_flat_weights(self, weights: np.ndarray) -> None:
        self.flat_params[...] = weights

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
                    f"{type(layer).__name__} {key}: expected shape {inputs.shape_str(param.shape)};"
                    f" got {inputs.shape_str(np.shape(value))}"
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
        self._plan = None
        self.compiled = True

    # ---------------------------------------------------------------------------------- plan

    @property
    def plan(self) -> Plan:
        """What runs in predict, evaluate and fit: the layers (``fuse=False``) or the fast
        path's rewrite of them (``digitnet.nn.fusion``), with the loss training minimises."""
        if not self.built:
            self.build()
        if self._plan is None:
            make = fused_plan if self.fuse else plain_plan
            self._plan = make(self.layers, self.loss if self.compiled else None)
        return self._plan

    @property
    def fuse(self) -> bool:
        """Whether the model runs the fast path (True) or its layers as the math reads."""
        return self._fuse

    @fuse.setter
    def fuse(self, fuse: bool) -> None:
        self._fuse, self._plan = bool(fuse), None

    # ------------------------------------------------------------------------------- explain

    def forward_layers(self, x: Any) -> list[np.ndarray]:
        """Each layer's output for inputs x, in order: what every neuron does (inference mode).

        The last entry is the prediction (probabilities for a softmax head).
        """
        return explain.forward_layers(self, x)

    def input_gradient(self, x: Any, unit: int | Sequence[int]) -> np.ndarray:
        """How each input value moves one output score, in inference mode: d score / d x of
        shape (N, *input_shape) — backpropagation carried on down to the pixels.

        ``unit`` picks the output (one for all samples, or one per sample). Its score is the
        logit (the head's input to softmax) when the head is a softmax, else the output itself.
        Parameter gradients are not computed (nor touched).
        """
        return explain.trace(self, x, unit)[1]

    def trace(
        self, x: Any, unit: int | Sequence[int] | None = None
    ) -> tuple[list[np.ndarray], np.ndarray]:
        """One inference pass that keeps what ``forward_layers`` returns (each layer's output,
        the prediction last) and backpropagates the score of ``unit`` (default: each sample's
        predicted output) to the input, as ``input_gradient`` does: (outputs, gradient)."""
        return explain.trace(self, x, unit)

    # ---------------------------------------------------------------------------- validation

    def check_x(self, x: Any, where: str) -> np.ndarray:
        """x as an array of the model's dtype, (N, *input_shape); builds the model on first
        use. Anything else is refused with an NNError that says what to do."""
        return inputs.samples(self, x, where)

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
        X = self.check_x(x, "predict")
        start = time.perf_counter()
        out = self.plan.predictions(self.raw_outputs(X, batch_size))
        if shown:
            report_pass(len(X), batch_size or PREDICT_BATCH, start, {})
        return out

    def raw_outputs(self, X: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """The plan's last outputs (logits for a fused softmax head) in batches of rows — at
        most PASS_BYTES of working memory a pass (the cnn's 256 rows: 200 MB, ``sample_bytes``)."""
        batch_size = min(batch_size or PREDICT_BATCH, max(1, PASS_BYTES // self.sample_bytes))
        plan = self.plan
        chunks = [plan.forward(X[i : i + batch_size], training=False)
                  for i in range(0, len(X), batch_size)]  # fmt: skip
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)

    def metrics_of(self, Y: np.ndarray, out: np.ndarray, prefix: str = "") -> dict[str, float]:
        """Loss (and accuracy) of the plan's outputs ``out`` against targets Y."""
        logs = {prefix + "loss": self.plan.loss(Y, out)}
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
        X = self.check_x(x, "evaluate")
        Y = inputs.targets(self, y, len(X), "evaluate")
        start = time.perf_counter()
        logs = self.metrics_of(Y, self.raw_outputs(X, batch_size))
        if shown:
            report_pass(len(X), batch_size or PREDICT_BATCH, start, logs)
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
        augment: trainer.Augment | None = None,
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
            inputs.positive_whole("epochs", epochs),
            inputs.positive_whole("batch_size", 32 if batch_size is None else batch_size),
        )
        validation_freq = inputs.positive_whole("validation_freq", validation_freq)
        if not 0 <= inputs.whole("initial_epoch", initial_epoch) < epochs:
            raise NNError(f"initial_epoch must be below epochs ({epochs}); got {initial_epoch}")
        X, Y, validation = inputs.training_arrays(self, x, y, validation_data, validation_split)
        return trainer.train(
            self, (X, Y), validation, epochs=epochs, initial_epoch=initial_epoch,
            batch_size=batch_size, shuffle=shuffle, validation_freq=validation_freq,
            validation_batch_size=validation_batch_size,
            rng=random_stream(self.seed if seed is None else seed, "fit"),
            bars=trainer.progress_bars(shown), callbacks=list(callbacks or ()), augment=augment,
        )  # fmt: skip

    def running_logs(self, rows: int | None = None) -> dict[str, float]:
        """Mean loss (and accuracy) over the first ``rows`` samples of the epoch being trained
        (all of them by default): what the progress bar shows."""
        return self.epoch.logs(rows)

    # ------------------------------------------------------------------------------- display

    def layer_table(self) -> list[dict[str, Any]]:
        """One row per layer: name, type, activation ("" if none), output_shape, params."""
        return layer_table(self)

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
        text = summary_text(self)
        (print_fn or print)(text)
        return text

    # ---------------------------------------------------------------------------------- files

    def save(self, filepath, overwrite: bool = True, zipped: Any = None) -> None:
        """Write the model to one self-describing file (see ``digitnet.nn.io``), atomically. As
        in Keras, an existing file is replaced unless ``overwrite=False``; only a regular file
        ever is."""
        refuse_unsupported("save", zipped=zipped)
        save_model(self, filepath, overwrite=overwrite)
