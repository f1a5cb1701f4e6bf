"""The pair reader: digits written touching, their strokes crossing, read as one piece."""

import numpy as np
import pytest
from pictures import written_close
from PIL import Image

from digitnet.reading.lattice import read_segments
from digitnet.reading.pairs import NOT_A_PAIR, PairReader, bundled_pair_reader
from digitnet.reading.recognizer import default_recognizer
from digitnet.vision.pieces import PAIR_SHAPE, pair_picture
from digitnet.vision.preprocess import strokes_of
from digitnet.vision.segment import segment


class NoPairs(PairReader):
    """A pair reader that never sees two digits: reading as it was before pairs."""

    def __init__(self):
        pass

    def read(self, pieces):
        out = np.zeros((len(pieces), NOT_A_PAIR + 1), np.float32)
        out[:, NOT_A_PAIR] = 1
        return out


@pytest.fixture(scope="module")
def crossing(mnist):
    """Twenty pairs of development digits (MNIST training 50,000+) written with their strokes
    crossing — a quarter of the narrower digit over the other — at 3x MNIST's size: (image
    (H, W) uint8, text)."""
    (x_train, y_train), _ = mnist
    out = []
    for i in range(50_600, 50_640, 2):
        widths = [int((x_train[j].max(axis=0) > 30).sum()) for j in (i, i + 1)]
        ink = written_close([x_train[i], x_train[i + 1]], gap=-min(widths) // 4)
        big = Image.fromarray(ink).resize((3 * ink.shape[1], 3 * ink.shape[0]), Image.BILINEAR)
        out.append((np.asarray(big), f"{y_train[i]}{y_train[i + 1]}"))
    return out


def test_digits_whose_strokes_cross_are_read_as_a_pair(crossing):
    """No cut separates digits written over each other: without the pair reader most of
    these were read wrong (a digit lost, or two halves read as others)."""
    recognizer = default_recognizer()
    segmented = [segment(image) for image, _ in crossing]
    with_pairs = sum(read_segments(recognizer, s).text == text
                     for s, (_, text) in zip(segmented, crossing, strict=True))  # fmt: skip
    without = sum(read_segments(recognizer, s, pair_reader=NoPairs()).text == text
                  for s, (_, text) in zip(segmented, crossing, strict=True))  # fmt: skip
    assert with_pairs >= 15
    assert with_pairs >= without + 5


@pytest.fixture(scope="module")
def wide_crossing(mnist):
    """Twenty pairs of development digits whose strokes just cross, one piece of connected
    writing at least 1.7 times as wide as it is tall — wider than any single digit is cut —
    at 3x MNIST's size: (image (H, W) uint8, text)."""
    from digitnet.vision.components import label

    (x_train, y_train), _ = mnist
    out = []
    for i in range(50_640, 52_000, 2):
        ink = written_close([x_train[i], x_train[i + 1]], gap=-3)
        mask = ink < 128
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if len(label(mask)[1]) == 1 and len(cols) >= 1.7 * len(rows):
            big = Image.fromarray(ink).resize((3 * ink.shape[1], 3 * ink.shape[0]))
            out.append((np.asarray(big), f"{y_train[i]}{y_train[i + 1]}"))
        if len(out) == 20:
            return out
    raise AssertionError("not enough wide pairs")


@pytest.mark.slow
def test_pairs_wider_than_any_single_digit_are_read(wide_crossing):
    """Candidates stop at JOIN_ASPECT line heights, the widest single digit; slices of one
    piece of writing are joined further, as candidate pairs only (15 of these 20 were read
    before, a digit lost or a fragment added)."""
    recognizer = default_recognizer()
    right = 0
    for image, text in wide_crossing:
        segmented = segment(image)
        parts, candidates, _ = segmented
        spanning = [c for c in candidates if c.first == 0 and c.last == parts - 1]
        assert any(not c.single and c.piece.pair is not None for c in spanning) or parts == 1
        right += read_segments(recognizer, segmented).text == text
    assert right >= 18


def test_a_pair_read_as_one_piece_gives_two_digits_with_their_boxes(crossing):
    image, text = crossing[0]
    reading = read_segments(default_recognizer(), segment(image))
    assert reading.text == text
    (a, b) = reading.digits
    assert a.box[0] < b.box[0] and a.box[0] + a.box[2] == b.box[0]
    for digit in (a, b):
        assert 0 <= digit.confidence <= 1 and abs(sum(digit.probabilities) - 1) < 1e-4


def written_wide(digit: np.ndarray, wider: float) -> np.ndarray:
    """An MNIST digit (28, 28), ink bright, dark on white at three times its size and ``wider``
    times as wide again: (84, 84 * wider) uint8."""
    return np.asarray(Image.fromarray(255 - digit).resize((round(84 * wider), 84), Image.BILINEAR))


@pytest.mark.slow
def test_single_digits_are_not_read_as_pairs(mnist):
    """Wide single digits (a 0, a 2, a 7 written broad) are pieces of connected writing wide
    enough to be two digits; the pair reader must call them 'not a pair'."""
    (x_train, _), _ = mnist
    pieces = []
    for digit in x_train[50_700:50_800]:
        pieces += [c.piece for c in segment(written_wide(digit, 2))[1] if c.piece.pair is not None]
    assert len(pieces) >= 50
    assert np.mean(bundled_pair_reader().read(pieces).argmax(axis=1) == NOT_A_PAIR) >= 0.95


@pytest.mark.slow
def test_a_single_digit_written_wide_is_read_as_one_digit(mnist):
    """A digit written 1.75 times as wide as MNIST's is one piece wide enough to be two digits,
    and each half of it can look like the digit itself (a wide 5 as 55, a 7 as 77): 100
    development digits so written are read as themselves, hardly ever as two digits (a pair
    reader that had seen few wide single digits: 87 right, 12 read as two; the reader before
    the continental 1s: 93 and 6; with them: 93 and 7)."""
    (x_train, y_train), _ = mnist
    recognizer = default_recognizer()
    texts = [
        read_segments(recognizer, segment(written_wide(d, 1.75))).text
        for d in x_train[50_800:50_900]
    ]
    labels = y_train[50_800:50_900]
    assert sum(t == str(label) for t, label in zip(texts, labels, strict=True)) >= 90
    assert sum(len(t) == 2 for t in texts) <= 8


@pytest.mark.slow
def test_pair_training_labels_agree_with_the_written_text(mnist):
    """A piece labelled a pair while making the training data is two neighbouring digits of
    its page's number, and its box holds both digits' middles."""
    from digitnet.reading.training.pairs import CLOSE, pair_class
    from digitnet.reading.training.pieces import owned, totals
    from digitnet.writing import Digits, write_page

    (x_train, y_train), _ = mnist
    source = Digits.from_mnist("training", x_train[:2000], y_train[:2000])
    rng = np.random.default_rng(5)
    pairs = others = 0
    for _ in range(30):
        page = write_page(source, rng, alone=False, gaps=CLOSE, count=(2, 3))
        ink = totals(page)
        for c in segment(page.image)[1]:
            if c.piece.pair is None:
                continue
            label = pair_class(owned(page.owner, c.piece, len(page.digits)), ink, page)
            if label == NOT_A_PAIR:
                others += 1
                continue
            pairs += 1
            assert f"{label // 10}{label % 10}" in page.text.split("\n")[c.piece.line]
            x, _, width, _ = c.piece.box
            centres = [d.box[0] + d.box[2] / 2 for d in page.digits]
            assert sum(x <= middle <= x + width for middle in centres) >= 2
    assert pairs >= 10 and others >= pairs


def normalize_pair(crop: np.ndarray, threshold: float) -> np.ndarray:
    """A crop's pair picture, as ``segment.cut_out`` makes it."""
    return pair_picture(strokes_of(crop, threshold)[1])


def test_a_pair_is_scaled_to_fit_and_centred():
    wide = np.zeros((30, 200), np.float32)
    wide[5:25, 10:190] = 1
    tall = np.zeros((100, 60), np.float32)
    tall[:, 20:40] = 1
    for crop in (wide, tall):
        pair = normalize_pair(crop, 0.5)
        assert pair.shape == PAIR_SHAPE and pair.max() == 1
        rows, cols = np.flatnonzero(pair.max(axis=1)), np.flatnonzero(pair.max(axis=0))
        assert len(rows) <= 20 and len(cols) <= 48
        assert (
            abs((rows[0] + rows[-1]) / 2 - 13.5) <= 1 and abs((cols[0] + cols[-1]) / 2 - 27.5) <= 1
        )
    assert len(np.flatnonzero(normalize_pair(wide, 0.5).max(axis=0))) == 48
    assert len(np.flatnonzero(normalize_pair(tall, 0.5).max(axis=1))) == 20


@pytest.mark.slow
def test_the_training_pieces_are_the_same_whatever_the_number_of_workers():
    from digitnet.reading.training.pairs import labelled_pairs
    from digitnet.reading.training.pieces import write

    one, two = (write(labelled_pairs, 6, 2, seed=1, workers=n) for n in (1, 2))
    assert one.pages == 6 and one.held_out == two.held_out < len(one.y)
    assert np.array_equal(one.x, two.x) and np.array_equal(one.y, two.y)


def test_going_on_from_a_trained_reader_starts_from_its_weights_at_a_tenth_of_the_rate(tmp_path):
    """``--start-from``: the model file's weights, what it was trained on kept in the new
    metadata, and a tenth of the learning rate (a fine-tuning, not a new training)."""
    from digitnet.reading.training.networks import RATE, fit_held_out, starting_model
    from digitnet.reading.training.pairs import build
    from digitnet.reading.training.pieces import Written

    before = build(0)
    before.build()
    before.metadata.update(command="python -m digitnet.reading.training.pairs --out p.npz",
                           trained_on="pages")  # fmt: skip
    before.save(tmp_path / "p.npz")
    started = starting_model(build, 1, str(tmp_path / "p.npz"))
    assert all(np.array_equal(a, b) for a, b in
               zip(started.get_weights(), before.get_weights(), strict=True))  # fmt: skip
    assert started.metadata["started_from"]["trained_on"] == "pages"
    assert "command" not in started.metadata  # the new command is the caller's to record
    rng = np.random.default_rng(0)
    data = Written(rng.random((20, 28, 56), np.float32), rng.integers(0, 101, 20), 16, 1, 0.0)
    fit_held_out(started, data, 1, verbose=0)
    assert started.optimizer.schedule.initial == pytest.approx(RATE / 10)
    fresh = build(2)
    fit_held_out(fresh, data, 1, verbose=0)
    assert fresh.optimizer.schedule.initial == pytest.approx(RATE)
