"""Benchmark: one digit answered — what the web page's drawing and a photo upload cost.

``digitnet.recognize`` (the whole pipeline: grayscale, lighting, the writing found, cut and
centred as MNIST's digits, the network) on:

* a drawing as the web page sends it: a 400x400 canvas, black strokes on white;
* a photo of a digit up to 1 MP: 1,152 x 864 JPEG, grey unevenly lit paper with grain;
* the 28x28 array alone (the API's JSON pixels): the network's share.

Each figure is the median of ``--repeats`` calls after a warm-up (the #43 target: <= 4 ms
for the drawing and the photo, on this 2-core machine, one BLAS thread as the server's
workers run).

    python benchmarks/bench_digit.py [--model cnn] [--repeats 50] [--json]
"""

from __future__ import annotations

from digitnet.blas import short_blas_spin, single_blas_thread

short_blas_spin()  # as the digitnet command does, before NumPy loads OpenBLAS
single_blas_thread()  # as each of the server's workers runs

import argparse
import io
import json

import numpy as np
from common import median_time, row
from PIL import Image, ImageDraw

from digitnet.data import load_mnist
from digitnet.reading.recognizer import Recognizer
from digitnet.zoo import resolve_model


def drawing() -> np.ndarray:
    """A 7 drawn on the page's 400x400 canvas: (400, 400) uint8, black on white."""
    canvas = Image.new("L", (400, 400), 255)
    ImageDraw.Draw(canvas).line([(110, 90), (290, 90), (170, 330)], fill=0, width=24)
    return np.asarray(canvas)


def photo(digit: np.ndarray, width: int = 1152, height: int = 864) -> bytes:
    """A 1 MP JPEG of ``digit`` (28, 28) written big on grey, unevenly lit, grainy paper."""
    page = np.full((height, width), 200.0) + np.linspace(-25, 25, width)[None, :]
    page += np.random.default_rng(0).normal(0, 6, page.shape)
    side = height // 2
    ink = np.asarray(Image.fromarray(digit).resize((side, side), Image.BILINEAR))
    page[height // 4 : height // 4 + side, (width - side) // 2 : (width + side) // 2] -= 0.7 * ink
    buffer = io.BytesIO()
    Image.fromarray(np.clip(page, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    recognizer = Recognizer(resolve_model(args.model))
    _, (x_test, _) = load_mnist()
    cases = {
        "a 400x400 drawing": drawing(),
        "a 1 MP photo (JPEG)": photo(x_test[0]),
        "the 28x28 array alone": x_test[0],
    }
    figures = {}
    for name, image in cases.items():
        source = io.BytesIO(image) if isinstance(image, bytes) else image

        def answer(source=source):
            if isinstance(source, io.BytesIO):
                source.seek(0)
            if isinstance(source, np.ndarray) and source.shape == (28, 28):
                return recognizer.predict_inputs(source[None].astype(np.float32) / 255)
            return recognizer.recognize(source)

        answer()  # warm-up
        seconds, _ = median_time(answer, args.repeats)
        figures[name] = round(1000 * seconds, 2)
        if not args.json:
            print(row(f"recognize {name}, median of {args.repeats}", f"{1000 * seconds:.2f} ms"))
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
