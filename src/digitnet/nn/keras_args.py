"""Keras' arguments, as digitnet's Sequential takes them.

The tutorial's readers copy Keras calls. Every argument that Keras' ``Sequential``,
``compile``, ``fit``, ``evaluate``, ``predict``, ``summary``, ``save`` and ``load_model``
take is accepted by digitnet with Keras' meaning — or, where digitnet has no such thing,
accepted at Keras' default and refused at any other value with one line that says why (never
a bare TypeError).
"""

from __future__ import annotations

from typing import Any

from digitnet.nn.errors import NNError

# Keras' arguments that digitnet accepts only at their Keras default, and why.
NOT_TAKEN: dict[str, str] = {
    "trainable": "every digitnet layer trains; there is no freezing",
    "loss_weights": "a digitnet model has one output, so one loss",
    "weighted_metrics": "digitnet has no sample weights",
    "run_eagerly": "digitnet always runs eagerly (NumPy); there is nothing else to choose",
    "steps_per_execution": "digitnet runs one step per Python call",
    "jit_compile": "digitnet does not compile (NumPy, no XLA)",
    "auto_scale_loss": "digitnet trains in float32; there is no mixed precision to scale for",
    "class_weight": "digitnet's losses are unweighted",
    "sample_weight": "digitnet's losses are unweighted",
    "steps_per_epoch": "digitnet trains on arrays, one pass over them per epoch",
    "validation_steps": "digitnet validates on arrays, all of them",
    "steps": "digitnet takes arrays, not generators: all of x is used",
    "callbacks": "callbacks run in fit only",
    "line_length": "the table is as wide as its contents",
    "positions": "the table is as wide as its contents",
    "expand_nested": "a digitnet model has no nested models",
    "show_trainable": "every digitnet layer trains",
    "layer_range": "the summary shows every layer",
    "zipped": "digitnet writes its own one-file format (.npz), always zipped",
    "custom_objects": "a digitnet model file holds only digitnet's own layers, losses and"
    " optimisers",
}

# Keras' default of each argument above: any other value is refused.
DEFAULTS: dict[str, Any] = {
    "trainable": True,
    "run_eagerly": False,
    "steps_per_execution": 1,
    "jit_compile": "auto",
    "auto_scale_loss": True,
    "expand_nested": False,
    "show_trainable": False,
}
# Values that mean the same as the default here (digitnet is always eager and never compiles;
# an empty dict of custom objects names nothing custom).
ALSO_FINE: dict[str, tuple[Any, ...]] = {
    "run_eagerly": (True,),
    "jit_compile": (False,),
    "custom_objects": ({},),
}


def refuse_unsupported(where: str, **given: Any) -> None:
    """Raise NNError naming the first of ``given`` (Keras' arguments) whose value digitnet
    cannot honour: anything but Keras' default (None unless DEFAULTS says otherwise)."""
    for name, value in given.items():
        default = DEFAULTS.get(name)
        fine = (default, *ALSO_FINE.get(name, ()))
        if not any(value is v or (v is not None and _same(value, v)) for v in fine):
            shown = repr(value) if isinstance(value, (bool, int, float, str)) else "..."
            raise NNError(f"{where}({name}={shown}) is not supported: {NOT_TAKEN[name]}")


def _same(value: Any, default: Any) -> bool:
    return type(value) is type(default) and value == default


def verbosity(verbose: Any, where: str) -> int:
    """Keras' ``verbose``: "auto" (= 1), 0 silent, 1 progress, 2 one line per epoch (fit) or
    per call (evaluate, predict); True and False mean 1 and 0."""
    if verbose == "auto":
        return 1
    if isinstance(verbose, bool):
        return int(verbose)
    if isinstance(verbose, int) and verbose in (0, 1, 2):
        return verbose
    raise NNError(f'{where}(verbose={verbose!r}): verbose must be "auto", 0, 1 or 2')
