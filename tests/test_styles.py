"""Continental 1s and 7s: the strokes land where a writer puts them, only the chosen digits
change, the digit stays centred, and the same seed gives the same images."""

import numpy as np
import pytest

from digitnet.data import to_float
from digitnet.styles import (
    Styles,
    bar_stroke,
    centre_of_mass,
    flag_strokes,
    pen_stroke,
    with_strokes,
)


@pytest.fixture(scope="module")
def digits(mnist):
    (x, y), _ = mnist
    return to_float(x[:600]), y[:600]


def test_only_the_chosen_ones_and_sevens_change_and_the_seed_decides(digits):
    X, y = digits
    styles = Styles(flagged_ones=0.5, crossed_sevens=0.5)
    a = styles(X, y, np.random.default_rng(0))
    assert a.shape == X.shape and a.dtype == np.float32
    assert np.array_equal(a, styles(X, y, np.random.default_rng(0)))
    assert not np.array_equal(a, styles(X, y, np.random.default_rng(1)))
    changed = np.any(a != X, axis=(1, 2))
    assert set(y[changed]) == {1, 7}
    for digit in (1, 7):
        share = changed[y == digit].mean()
        assert 0.3 < share < 0.7  # about half of 60-odd digits each
    assert np.array_equal(
        Styles(flagged_ones=0, crossed_sevens=0)(X, y, np.random.default_rng(0)), X
    )


def test_a_flag_adds_ink_to_the_upper_left_of_the_stem_and_keeps_the_digit_centred(digits):
    X, y = digits
    rng = np.random.default_rng(0)
    for one in X[y == 1][:20]:
        strokes = flag_strokes(one, rng)
        rows, cols = np.nonzero(strokes - one > 0.5)  # ink where there was none
        top_row = np.flatnonzero(one.sum(axis=1) > 0.2)[0]
        stem = np.average(np.arange(28), weights=one[top_row])
        assert len(rows) >= 4
        assert rows.mean() < 14  # in the upper half
        assert cols.mean() < stem  # to the left of where the stem starts
        flagged = with_strokes(one, strokes)
        assert np.abs(centre_of_mass(flagged) - centre_of_mass(one)).max() <= 0.5
        assert flagged.max() <= 1 and flagged.min() >= 0


def test_a_bar_crosses_the_stem_of_a_seven_below_its_top(digits):
    X, y = digits
    rng = np.random.default_rng(0)
    for seven in X[y == 7][:20]:
        rows, cols = np.nonzero(bar_stroke(seven, rng) - seven > 0.5)  # ink where there was none
        top, bottom = np.flatnonzero(seven.sum(axis=1) > 0.2)[[0, -1]]
        assert len(rows) >= 3
        assert top + 0.3 * (bottom - top) < rows.mean() < bottom  # below the top bar
        assert np.ptp(rows) < np.ptp(cols)  # a bar: wider than tall


def test_a_pen_stroke_is_as_wide_as_the_pen_and_fades_within_a_pixel():
    stroke = pen_stroke((20, 20), (10.25, 4), (10.25, 15), width=3.0)
    # Ink is 1 up to 1 px from the line, 0 from 2 px, linear between (the edge is at 1.5 px).
    assert np.all(stroke[10:12, 4:16] == 1)
    np.testing.assert_allclose(stroke[9, 4:16], 0.75, atol=1e-6)
    np.testing.assert_allclose(stroke[12, 4:16], 0.25, atol=1e-6)
    assert not stroke[:9].any() and not stroke[13:].any()
    assert not stroke[:, 17:].any() and stroke[10, 16] > 0.9  # a round end past the last point
