"""Numbers as people write them on real documents — printed backgrounds, marks beside the
digits, ruled cells — made here from MNIST *training* digits (50,000+, the development ones),
never copied from the real sets the benchmark measures (``benchmarks/bench_documents.py``)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from digitnet.reading.lattice import read_number


def security_pattern(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A cheque's printed background: fine wavy curves across the whole page, as ink (height,
    width) float32 in [0, 1], at a third of the writing's strength."""
    image = Image.new("L", (width * 4, height * 4))
    draw = ImageDraw.Draw(image)
    x = np.arange(0, width * 4, 2)
    for k in range(int(height / 2.5)):
        phase, period = rng.uniform(0, 2 * np.pi), rng.uniform(0.8, 1.6) * width * 4
        y = k * 10 + 12 * np.sin(2 * np.pi * x / period + phase)
        draw.line(list(zip(x.tolist(), y.tolist(), strict=True)), fill=255, width=4)
    small = image.resize((width, height), Image.BILINEAR)
    return 0.3 * np.asarray(small, np.float32) / 255


def cheque_amount(digits: list[np.ndarray], background: np.ndarray) -> np.ndarray:
    """MNIST digits (28, 28) uint8 written side by side, 36 px high, over ``background`` ink:
    a small scan like a cheque's amount box, dark on light (H, W) uint8."""
    ink = background.copy()
    x = 10
    for digit in digits:
        big = np.asarray(Image.fromarray(digit).resize((36, 36), Image.BILINEAR)) / 255
        here = ink[8:44, x : x + 36]
        np.maximum(here, 0.9 * big, out=here)
        x += 30
    return (255 * (0.92 - 0.85 * ink).clip(0, 1)).astype(np.uint8)


def test_a_number_on_a_printed_security_pattern_is_read_without_the_pattern(mnist, rng):
    """Four digits written over a cheque's fine printed curves, lighter than the writing and
    over the whole page: the curves are left out as background (read in, they gave runs of 5s
    and 2s: a real cheque's "280.000=" read "2885555555")."""
    (x_train, y_train), _ = mnist
    right = 0
    for k in range(6):
        first = 50_300 + 4 * k
        page = cheque_amount(list(x_train[first : first + 4]), security_pattern(150, 52, rng))
        text = read_number(page).text
        right += text == "".join(str(y_train[first + i]) for i in range(4))
    assert right >= 5
