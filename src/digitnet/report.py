"""``digitnet report``: the web app's model page as files — PNG pictures drawn with matplotlib
and an HTML page that links them, for people who want the pictures without a server.

matplotlib is an optional dependency (``pip install "digitnet[report]"``).
"""

from __future__ import annotations

import errno
import html
from pathlib import Path

import numpy as np

from digitnet import insight
from digitnet.modelcard import Scorecard, describe, scorecard
from digitnet.nn.files import FileRefused, atomic_write, check_output_path

PICTURES = ("training_curves.png", "confusion_matrix.png", "first_layer.png", "mistakes.png")


def write_report(model, out: str | Path, data: str | None = None, replace: bool = False) -> Path:
    """Write ``out``/index.html and its pictures. A report's file already in ``out`` is
    replaced only with ``replace``, and only if it is a regular file: nothing is written
    through a symbolic link, so nothing outside ``out`` is ever touched. Returns the path of
    index.html."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError(
            'digitnet report draws with matplotlib: pip install "digitnet[report]"'
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileRefused(f"{out} is not a folder; name a folder for the report")
    for name in ("index.html", *PICTURES):  # before the work, as every command checks
        try:
            check_output_path(out / name, replace=replace)
        except FileExistsError:
            raise FileExistsError(
                errno.EEXIST, "a report is there already (--force replaces it)", str(out / name)
            ) from None
    card = describe(model)
    results = scorecard(model, mistakes=40, data=data)
    figures = (
        plot_training(card["history"]),
        plot_confusion(results),
        plot_first_layer(insight.first_layer_weights(model)),
        plot_mistakes(results),
    )
    for name, figure in zip(PICTURES, figures, strict=True):
        atomic_write(out / name, lambda file, f=figure: f.savefig(file, dpi=110, format="png"),
                     replace=replace)  # fmt: skip
        plt.close(figure)
    index = out / "index.html"
    atomic_write(index, lambda file: file.write(page(card, results).encode()), replace=replace)
    return index


def plot_training(history: dict[str, list[float]]):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 3.6))
    for axis, key in ((loss_axis, "loss"), (accuracy_axis, "accuracy")):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = history.get(prefix + key)
            if values:
                epochs = np.arange(1, len(values) + 1)
                axis.plot(epochs, values, style, marker="o", ms=3,
                          label=("validation " if prefix else "training ") + key)  # fmt: skip
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # whole epochs
        if axis.lines:  # one epoch too: a lone point's margins are 5 %
            axis.set_xlim(0.5, len(axis.lines[0].get_xdata()) + 0.5)
        axis.set_title(key)
        if axis.lines:
            axis.legend()
        else:
            axis.text(0.5, 0.5, "no history recorded", ha="center", transform=axis.transAxes)
    fig.tight_layout()
    return fig


def plot_confusion(results: Scorecard):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    cm = results.confusion
    off_diagonal = cm - np.diag(np.diag(cm))
    fig, axis = plt.subplots(figsize=(6, 5.4))
    image = axis.imshow(off_diagonal, cmap="Reds")
    dark = max(1, off_diagonal.max()) / 2  # past half the scale a cell is dark: white numbers
    for r in range(cm.shape[0]):
        for c in range(cm.shape[1]):
            colour = "green" if r == c else "white" if off_diagonal[r, c] > dark else "black"
            axis.text(c, r, str(cm[r, c]), ha="center", va="center", fontsize=8, color=colour)
    axis.set_xticks(range(cm.shape[1]))
    axis.set_yticks(range(cm.shape[0]))
    axis.set_xlabel("predicted digit")
    axis.set_ylabel("true digit")
    axis.set_title(f"accuracy {100 * results.accuracy:.2f}% (colour: mistakes)")
    fig.colorbar(image, ax=axis, shrink=0.8, ticks=MaxNLocator(integer=True))  # counts
    fig.tight_layout()
    return fig


def plot_first_layer(weights: np.ndarray):
    """(units, h, w) weights, each on its own symmetric blue-red scale."""
    import matplotlib.pyplot as plt

    count = len(weights)
    cols = min(8, count)
    rows = -(-count // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.3 * rows), squeeze=False)
    for k, axis in enumerate(axes.ravel()):
        axis.axis("off")
        if k < count:
            top = float(np.abs(weights[k]).max()) or 1.0
            axis.imshow(weights[k], cmap="RdBu", vmin=-top, vmax=top)
            axis.set_title(str(k + 1), fontsize=7)
    fig.suptitle("first layer: blue excites, red inhibits")
    fig.tight_layout()
    return fig


def plot_mistakes(results: Scorecard):
    import matplotlib.pyplot as plt

    count = max(1, len(results.mistakes))
    cols = min(10, count)
    rows = -(-count // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols, 1.45 * rows), squeeze=False)
    for k, axis in enumerate(axes.ravel()):
        axis.axis("off")
        if k < len(results.mistakes):
            m = results.mistakes[k]
            axis.imshow(results.mistake_images[k], cmap="gray")
            axis.set_title(f"{m.label}→{m.predicted} {100 * m.confidence:.0f}%", fontsize=8)
    fig.suptitle("most confident mistakes: true → predicted")
    fig.tight_layout()
    return fig


def page(card: dict, results: Scorecard) -> str:
    rows = "\n".join(
        f"<tr><td>{html.escape(r['name'])} ({r['type']}"
        f"{', ' + r['activation'] if r['activation'] else ''})</td>"
        f"<td>{'×'.join(map(str, r['output_shape']))}</td><td>{r['params']:,}</td></tr>"
        for r in card["layers"]
    )
    title = html.escape(card["name"])
    trained = html.escape(card["command"] or "not recorded")
    seconds = card["training_seconds"]
    figures = "\n".join(
        f'<figure><img src="{name}" alt="{name[:-4].replace("_", " ")}"></figure>'
        for name in PICTURES
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>digitnet report: {title}</title>
<style>body{{font:16px/1.45 system-ui,sans-serif;max-width:960px;margin:2rem auto;padding:0 1rem}}
table{{border-collapse:collapse}}td,th{{padding:.2rem .6rem;border-bottom:1px solid #ddd}}
img{{max-width:100%}}</style></head>
<body>
<h1>{title}</h1>
<p>{card["parameters"]:,} parameters. Trained with: <code>{trained}</code>
{f"in {seconds:.0f} s" if seconds else ""}.</p>
<p>MNIST test set: <strong>{100 * results.accuracy:.2f}%</strong> of {results.samples:,} digits.</p>
<table><tr><th>layer</th><th>output</th><th>parameters</th></tr>
{rows}
</table>
{figures}
</body></html>
"""
