"""The fast path: how a compiled model runs, over the very parameters of its layers.

A model runs a ``Plan``: steps with ``forward(X, training)`` and ``backward(dout)``, and the
loss that training minimises on the last step's output. ``Sequential(fuse=False)`` runs the
plain plan — its layers, each as its math reads (``plain_plan``). By default it runs
``fused_plan``, which rewrites the same computation for speed:

1. **softmax + cross-entropy.** The head outputs its logits Z and the loss takes them: the
   loss is log-sum-exp stable and its gradient is simply (softmax(Z) - onehot) / N.
   Predictions are softmax(Z).
2. **ReLU after max-pooling.** max and ReLU commute (ReLU is monotone): in training, a ReLU
   that feeds a MaxPool2D is applied to the pooled maxima, a quarter of the numbers.
3. **The bias inside the GEMM.** A convolution's windows get a column of 1s and are multiplied
   by [W; b] (``Conv2D.kernel_and_bias``): one GEMM for the weighted sums and the bias, one
   for dW and db.
4. **In place.** ReLU overwrites the pre-activation its layer just computed, and its backward
   the gradient it is given; training forward passes keep only what backward needs.
5. **Threads.** Element-wise passes over large batches (ReLU, pooling, copying windows, the
   strided additions of a convolution's dX, batch normalisation's centring, scaling and
   gradient) run on every core (``digitnet.nn.parallel``). For BatchNorm, which had run on one
   core, that made 12,800 digits of the cnn preset 11.1 -> 9.0 s (medians of 3).
6. **Less work backward.** No dX below the first layer with parameters.
7. **A pooling window's winner in one byte.** Training's forward pass notes which entry of
   each window is its first maximum (a uint8 per output); backward sends the gradient there
   with one comparison of bytes per offset, where the plain path compares the input with the
   maxima again and claims ties window by window. The input need not be kept. (The first
   pooling of a batch of 128: 7.1 -> 3.8 ms backward, 1.8 -> 3.2 ms forward, one thread.)
8. **Batch normalisation a sample a row.** Its element-wise passes see (N, H * W * D) with
   each channel's number tiled H * W times: NumPy's inner loops run along a whole sample, not
   along one pixel's D channels (subtracting the mean from 128 x 26 x 26 x 32 numbers: 2.3 ->
   1.2 ms).
9. **One input channel: windows as columns.** A grey-level image's windows are copied as
   kh * kw shifted images (runs of Wo numbers) into (kh * kw + 1, N * Ho * Wo), not window
   by window (runs of kw numbers); the GEMMs take it transposed. (The first convolution of a
   batch of 128: copying 1.66 -> 0.28 ms, dW 1.87 -> 1.32 ms.)
10. **Batch norm, ReLU and pooling as one step.** A channel's normalisation s * c + beta is
   monotone in c, so a window's largest output sits where sign(s) * c is largest: the pooling
   takes the centred input, and the scaling, the ReLU and backward's sums see the pooled
   quarter; the full-size output is never made (``FastNormPool``; the cnn preset's first
   block, 128 x 26 x 26 x 32, forward and backward: about a fifth less time).

A convolution's dX was also computed, for large batches with at least as many input channels
as filters, as one GEMM over the windows of the padded gradient (a full convolution); measured
again on seven shapes (64 -> 64 valid and same, 32 -> 32, 128 -> 64, 128 -> 128), the GEMM per
kernel offset with its additions split over the cores was 1.25-2.1x faster in every one, so that
rewrite is gone.

The steps live in ``fast_steps`` (activations, dense layers) and ``fast_conv`` (convolutions,
pooling, batch normalisation). ``tests/test_fusion.py`` holds each rewrite to the plain path:
the same outputs and gradients.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from digitnet.nn.activations import softmax
from digitnet.nn.conv import Conv2D, MaxPool2D
from digitnet.nn.fast_conv import FastBatchNorm, FastConv, FastNormPool, FastPool
from digitnet.nn.fast_steps import FastActivationLayer, FastDense, PassThrough, fast_activation
from digitnet.nn.layers import Activation, Dense, Layer
from digitnet.nn.losses import CategoricalCrossentropy, Loss, SparseCategoricalCrossentropy
from digitnet.nn.normalization import BatchNorm


@dataclass
class Plan:
    """Steps run in order; ``loss`` is what training minimises on the last step's output, and
    ``logits`` says that output is logits (predictions are their softmax)."""

    steps: list
    loss: Loss | None
    logits: bool = False
    first_trainable: int = 0  # backward stops at this step: nothing below needs a gradient

    def forward(self, X: np.ndarray, training: bool) -> np.ndarray:
        for step in self.steps:
            X = step.forward(X, training)
        return X

    def backward(self, dout: np.ndarray) -> None:
        for step in reversed(self.steps[self.first_trainable :]):
            dout = step.backward(dout)

    def predictions(self, out: np.ndarray) -> np.ndarray:
        return softmax(out) if self.logits else out


def plain_plan(layers: list[Layer], loss: Loss | None) -> Plan:
    """The layers themselves, as the math reads: the textbook path."""
    return Plan(list(layers), loss)


def fused_plan(layers: list[Layer], loss: Loss | None) -> Plan:
    """The same computation, rewritten for speed (the module's notes list the rewrites)."""
    trainable = [i for i, layer in enumerate(layers) if layer.params]
    first = trainable[0] if trainable else len(layers)
    head = layers[-1]
    logits = (
        getattr(head, "activation", None) is not None
        and head.activation.name == "softmax"
        and isinstance(loss, (SparseCategoricalCrossentropy, CategoricalCrossentropy))
        and not loss.from_logits
    )
    deferred = {i for i, (before, after) in enumerate(pairwise(layers))
                if isinstance(after, MaxPool2D) and _relu(before)}  # fmt: skip
    norm_pools = {i for i in range(len(layers) - 2) if isinstance(layers[i], BatchNorm)
                  and isinstance(layers[i + 1], Activation) and _relu(layers[i + 1])
                  and isinstance(layers[i + 2], MaxPool2D)}  # fmt: skip
    steps = []
    for i, layer in enumerate(layers):
        if i in norm_pools:
            steps.append(FastNormPool(layer, layers[i + 2]))
            continue
        if i - 1 in norm_pools or i - 2 in norm_pools:
            steps.append(PassThrough())  # its ReLU or pooling: done by FastNormPool
            continue
        act = getattr(layer, "activation", None)
        if act is not None:
            act = fast_activation(act, logits and i == len(layers) - 1, i in deferred)
        input_grad = i > first
        if isinstance(layer, Dense):
            steps.append(FastDense(layer, act, input_grad))
        elif isinstance(layer, Conv2D):
            steps.append(FastConv(layer, act, input_grad))
        elif isinstance(layer, Activation):
            steps.append(FastActivationLayer(act))
        elif isinstance(layer, MaxPool2D):
            steps.append(FastPool(layer, relu_after=i - 1 in deferred))
        elif isinstance(layer, BatchNorm):
            steps.append(FastBatchNorm(layer))
        else:
            steps.append(layer)  # Flatten, Reshape, Dropout: as they are
    return Plan(steps, loss.with_logits() if logits else loss, logits, first)


def _relu(layer: Layer) -> bool:
    act = getattr(layer, "activation", None)
    return act is not None and act.name == "relu"
