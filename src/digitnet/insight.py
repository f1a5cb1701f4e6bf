"""What a network does with one input, in terms a picture can show: each stage's activations,
which pixels pushed towards the verdict, the first layer's weights, the strongest connections.

The web page's "network at work" and ``digitnet report`` are drawn from these; nothing here
knows about HTTP or matplotlib.

A *stage* is what a diagram calls a layer: a Dense or Conv2D layer together with the
BatchNorm, Activation and Dropout layers right after it (Conv -> BatchNorm -> ReLU is one
stage, its output the feature maps). Pooling, Flatten and Reshape only move numbers around
and are not stages of their own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from digitnet.nn.conv import Conv2D
from digitnet.nn.layers import Activation, Dense, Dropout
from digitnet.nn.normalization import BatchNorm

FOLLOWERS = (BatchNorm, Activation, Dropout)  # layers that extend the stage before them


def _follows(layer) -> bool:
    return isinstance(layer, FOLLOWERS) and not isinstance(layer, (Dense, Conv2D))


@dataclass
class Stage:
    """Layers ``first``..``last`` (inclusive) of a model, shown as one layer of neurons.

    kind: "dense" (a row of units) or "conv" (feature maps).
    shape: one sample's output, (units,) or (height, width, channels).
    """

    name: str
    kind: str
    first: int
    last: int
    shape: tuple[int, ...]
    activation: str


def stages(model) -> list[Stage]:
    """The model's Dense and Conv2D stages, in order."""
    found: list[Stage] = []
    counts = {"dense": 0, "conv": 0}
    layers = model.layers
    for i, layer in enumerate(layers):
        if not isinstance(layer, (Dense, Conv2D)):
            continue
        last = i
        while last + 1 < len(layers) and _follows(layers[last + 1]):
            last += 1
        activations = [
            layers[j].activation.name
            for j in range(i, last + 1)
            if hasattr(layers[j], "activation") and layers[j].activation.name != "linear"
        ]
        kind = "dense" if isinstance(layer, Dense) else "conv"
        counts[kind] += 1
        is_output = last == len(layers) - 1
        name = "output" if is_output else f"{kind} {counts[kind]}"
        shape = tuple(layers[last].output_shape)
        found.append(Stage(name, kind, i, last, shape, activations[-1] if activations else ""))
    return found


@dataclass
class Activity:
    """One stage's output for one input: ``values`` has the stage's ``shape``."""

    stage: Stage
    values: np.ndarray


def activity(model, image: np.ndarray) -> list[Activity]:
    """Every stage's output for one input ``image`` (the model's input shape, e.g. 28x28),
    in inference mode; the output stage holds the probabilities."""
    outputs = model.forward_layers(image[None])  # one (1, *shape) per layer
    return [Activity(stage, outputs[stage.last][0]) for stage in stages(model)]


def explain(model, image: np.ndarray, digit: int) -> np.ndarray:
    """Gradient x input (Shrikumar et al., 2016; Ancona et al., 2018): for each input pixel,
    how much its ink pushed the score (logit) of ``digit`` up (> 0) or down (< 0), to first
    order. Same shape as ``image``, scaled so the strongest pixel is +1 or -1 (all zero when
    nothing moves the score)."""
    return _scaled(model.input_gradient(image[None], digit)[0] * image)


def _scaled(contribution: np.ndarray) -> np.ndarray:
    strongest = float(np.abs(contribution).max())
    return contribution / strongest if strongest > 0 else contribution


@dataclass
class Look:
    """One input seen through the network: the model's output (N.B. before any calibration),
    every stage's activity, and the explanation of the predicted digit (``explain``)."""

    probabilities: np.ndarray
    activity: list[Activity]
    explanation: np.ndarray


def look(model, image: np.ndarray) -> Look:
    """``activity`` and ``explain`` of the predicted digit from a single traced pass (one
    forward, one backward): what the web page shows for every drawing."""
    outputs, gradient = model.trace(image[None])
    return Look(
        probabilities=outputs[-1][0],
        activity=[Activity(stage, outputs[stage.last][0]) for stage in stages(model)],
        explanation=_scaled(gradient[0] * image),
    )


def first_layer_weights(model) -> np.ndarray:
    """The first Dense or Conv2D layer's weights as pictures, one per unit or filter:
    (units, 28, 28) for a Dense layer on flattened 28x28 images (what each hidden neuron looks
    for), (filters, kh, kw) for a convolution (averaged over input channels)."""
    first = stages(model)[0]
    kernel = model.layers[first.first].params["W"]
    if first.kind == "conv":  # (kh, kw, C, F)
        return kernel.mean(axis=2).transpose(2, 0, 1)
    inputs, units = kernel.shape  # (D, H)
    side = math.isqrt(inputs)
    if side * side != inputs:
        raise ValueError(f"the first layer's {inputs} inputs do not form a square image")
    return kernel.T.reshape(units, side, side)


@dataclass
class Connection:
    """One weight of a Dense stage: from unit ``source`` of the layer below to ``target``."""

    source: int
    target: int
    weight: float


def strongest_connections(model, per_stage: int = 160) -> list[list[Connection]]:
    """For each Dense stage, its ``per_stage`` weights of largest magnitude (all of them when
    it has fewer): the lines worth drawing in a picture of the network."""
    result = []
    for stage in stages(model):
        if stage.kind != "dense":
            continue
        W = model.layers[stage.first].params["W"]  # (D, H)
        flat = np.abs(W).ravel()
        keep = min(per_stage, flat.size)
        order = np.argpartition(flat, flat.size - keep)[flat.size - keep :]
        order = order[np.argsort(flat[order])[::-1]]
        sources, targets = np.unravel_index(order, W.shape)
        result.append(
            [
                Connection(int(s), int(t), float(W[s, t]))
                for s, t in zip(sources, targets, strict=True)
            ]
        )
    return result


@dataclass
class Neuron:
    """One unit of a Dense stage: its weighted sum z = weights . inputs + bias, through the
    stage's activation. Its inputs are the flattened image for the first stage, else the
    stage before's outputs."""

    stage: Stage
    unit: int
    weights: np.ndarray  # (D,): one per input
    bias: float


def neuron(model, stage_index: int, unit: int) -> Neuron:
    """Unit ``unit`` of the ``stage_index``-th stage (0-based) of a multilayer perceptron;
    IndexError when there is none, ValueError for a stage that is not one Dense layer and its
    activation (a convolution, a batch normalisation: more than a weighted sum)."""
    found = stages(model)
    if not 0 <= stage_index < len(found):
        last = len(found) - 1
        raise IndexError(f"the model has layers 0-{last}; there is no layer {stage_index}")
    stage = found[stage_index]
    layers = model.layers[stage.first : stage.last + 1]
    if stage.kind != "dense" or any(isinstance(layer, BatchNorm) for layer in layers):
        raise ValueError(f"{stage.name} is not a plain weighted sum and activation")
    W, b = model.layers[stage.first].params["W"], model.layers[stage.first].params["b"]
    if not 0 <= unit < W.shape[1]:
        raise IndexError(f"{stage.name} has {W.shape[1]} neurons; there is no neuron {unit}")
    return Neuron(stage, unit, W[:, unit], float(b[unit]))


@dataclass
class Mistake:
    """A test digit the model got wrong."""

    index: int
    label: int
    predicted: int
    confidence: float


def mistakes(probabilities: np.ndarray, labels: np.ndarray, limit: int) -> list[Mistake]:
    """The model's wrong answers, most confident first (the instructive ones), at most
    ``limit``. probabilities (N, 10) for digits with ``labels`` (N,)."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = probabilities[wrong, predicted[wrong]]
    order = wrong[np.argsort(-confidence, kind="stable")][:limit]
    return [
        Mistake(int(i), int(labels[i]), int(predicted[i]), float(probabilities[i, predicted[i]]))
        for i in order
    ]
