"""A model described: one row per layer (``layer_table``) and Keras' summary table as text."""

from __future__ import annotations

from typing import Any

from digitnet.nn.layers import Dense


def layer_table(model) -> list[dict[str, Any]]:
    """One row per layer: name, type, activation ("" if none), output_shape, params."""
    if not model.built:
        model.build()
    rows = []
    for i, layer in enumerate(model.layers):
        shown = isinstance(layer, Dense) and layer.activation.name != "linear"
        rows.append(
            {
                "name": layer.name or f"{type(layer).__name__.lower()}_{i}",
                "type": type(layer).__name__,
                "activation": layer.activation.name if shown else "",
                "output_shape": list(layer.output_shape),
                "params": layer.count_params(),
            }
        )
    return rows


def summary_text(model) -> str:
    """The table Keras' ``model.summary()`` prints: layers, output shapes, parameter counts."""
    rows = [("Layer (type)", "Output Shape", "Param #")]
    for row in layer_table(model):
        kind = row["type"] + (f", {row['activation']}" if row["activation"] else "")
        shape = "(None, " + ", ".join(map(str, row["output_shape"])) + ")"
        rows.append((f"{row['name']} ({kind})", shape, f"{row['params']:,}"))
    widths = [max(len(r[c]) for r in rows) + 2 for c in range(3)]
    line = "-" * sum(widths)

    def fmt(row):
        return "".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()

    lines = [f'Model: "{model.name}"', line, fmt(rows[0]), "=" * sum(widths)]
    lines += [fmt(row) for row in rows[1:]]
    lines += ["=" * sum(widths), f"Total params: {model.count_params():,}", line]
    return "\n".join(lines)
