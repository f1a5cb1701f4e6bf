"""Augmentation keeps labels and shapes, is reproducible with a seed, and really distorts."""

import numpy as np
import pytest

from digitnet.augment import Augment, bilinear
from digitnet.data import to_float


def centre_of_mass(images):
    rows = np.arange(images.shape[1])[None, :, None]
    cols = np.arange(images.shape[2])[None, None, :]
    mass = images.sum(axis=(1, 2))
    return (images * rows).sum(axis=(1, 2)) / mass, (images * cols).sum(axis=(1, 2)) / mass


@pytest.fixture(scope="module")
def digits(mnist):
    (x, y), _ = mnist
    return to_float(x[:64]), y[:64]


def test_same_seed_same_batch_and_shape_dtype_kept(digits):
    X, _ = digits
    augment = Augment(elastic_alpha=1.0)
    a = augment(X, np.random.default_rng(3))
    b = augment(X, np.random.default_rng(3))
    c = augment(X, np.random.default_rng(4))
    assert a.shape == X.shape and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert augment(X[..., None], np.random.default_rng(3)).shape == (64, 28, 28, 1)


def test_identity_settings_change_nothing(digits):
    X, _ = digits
    still = Augment(max_shift=0, max_rotation=0, min_scale=1, max_scale=1)
    np.testing.assert_allclose(still(X, np.random.default_rng(0)), X, atol=1e-6)


def test_shifts_move_the_ink_by_at_most_the_limit(digits):
    X, _ = digits
    shifted = Augment(max_shift=3, max_rotation=0, min_scale=1, max_scale=1)(
        X, np.random.default_rng(0)
    )
    (r0, c0), (r1, c1) = centre_of_mass(X), centre_of_mass(shifted)
    moved = np.hypot(r1 - r0, c1 - c0)
    assert moved.max() <= 3 * np.sqrt(2) + 0.5 and moved.mean() > 0.5


def test_rotation_by_90_degrees_is_exact_with_bilinear_sampling():
    image = np.zeros((1, 5, 5), np.float32)
    image[0, 0, 2] = 1  # top middle
    rows, cols = np.meshgrid(np.arange(5.0), np.arange(5.0), indexing="ij")
    # Output (r, c) reads input (c, 4 - r): a quarter turn; the top middle goes to the left middle.
    turned = bilinear(image, cols[None], (4 - rows)[None])
    assert turned[0, 2, 0] == 1 and turned.sum() == 1


def test_fit_augments_training_batches_only(digits):
    from digitnet.nn import Callback, Dense, Flatten, Sequential

    X, y = digits
    seen = []

    def spy(batch, rng):
        seen.append(batch.copy())
        return Augment()(batch, rng)

    model = Sequential([Flatten(input_shape=(28, 28)), Dense(10, activation="softmax")], seed=0)
    model.compile(metrics=["accuracy"])
    model.fit(X, y, epochs=1, batch_size=16, validation_data=(X, y), augment=spy, verbose=False)
    assert len(seen) == 4 and all(batch.shape == (16, 28, 28) for batch in seen)
    assert isinstance(Callback(), Callback)


def test_pen_width_grows_and_shrinks_the_ink_and_zero_keeps_it(digits):
    from digitnet.augment import change_thickness

    X, _ = digits
    pen = np.tile(np.array([-0.5, 0.0, 1.0], np.float32), 22)[: len(X)]
    changed = change_thickness(X, pen)
    ink_before, ink_after = X.sum(axis=(1, 2)), changed.sum(axis=(1, 2))
    assert np.all(ink_after[pen < 0] < ink_before[pen < 0])
    assert np.array_equal(changed[pen == 0], X[pen == 0])
    assert np.all(ink_after[pen > 0] > 1.2 * ink_before[pen > 0])
    assert changed.min() >= 0 and changed.max() <= 1


def test_slant_tilts_a_vertical_bar_within_the_limit():
    bar = np.zeros((32, 28, 28), np.float32)
    bar[:, 4:24, 13:15] = 1
    slanted = Augment(max_shift=0, max_rotation=0, min_scale=1, max_scale=1, max_shear=0.3)(
        bar, np.random.default_rng(0)
    )
    cols = np.arange(28)
    top = (slanted[:, 5] * cols).sum(axis=1) / slanted[:, 5].sum(axis=1)
    bottom = (slanted[:, 22] * cols).sum(axis=1) / slanted[:, 22].sum(axis=1)
    lean = (bottom - top) / 17  # columns moved per row
    assert np.abs(lean).max() <= 0.3 + 0.02 and np.abs(lean).max() > 0.15
    assert (lean > 0).any() and (lean < 0).any()


def test_aspect_changes_width_against_height_within_the_limit():
    square = np.zeros((32, 28, 28), np.float32)
    square[:, 8:20, 8:20] = 1
    stretched = Augment(max_shift=0, max_rotation=0, min_scale=1, max_scale=1, max_aspect=1.25)(
        square, np.random.default_rng(0)
    )
    width = stretched[:, 14, :].sum(axis=1)  # bilinear edges make these lengths continuous
    height = stretched[:, :, 14].sum(axis=1)
    ratio = width / height
    assert ratio.min() >= 1 / 1.25 - 0.03 and ratio.max() <= 1.25 + 0.03
    assert ratio.min() < 0.95 and ratio.max() > 1.05
