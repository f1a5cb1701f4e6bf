"""MNIST loading: the bundled copy and its checksums, and every reader's handling of bad files."""

import gzip
import hashlib
import shutil
from itertools import pairwise

import numpy as np
import pytest

from digitnet.data import DataError, load_mnist, parse_idx, read_idx, read_kaggle_csv
from digitnet.data.mnist import BUNDLED_DIR, FILES, fingerprint


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    return header + array.astype(np.uint8).tobytes()


def test_bundled_mnist_has_keras_shapes_and_the_official_content(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60000, 28, 28) and y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
    assert {a.dtype for a in (x_train, y_train, x_test, y_test)} == {np.dtype(np.uint8)}
    assert list(y_test[:10]) == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # the well-known first test labels
    assert np.bincount(y_train).tolist()[:3] == [5923, 6742, 5958]
    sums = dict(line.split()[::-1] for line in (BUNDLED_DIR / "MD5SUMS.uncompressed").open())
    labels = gzip.decompress((BUNDLED_DIR / f"{FILES['y_test']}.gz").read_bytes())
    assert hashlib.md5(labels).hexdigest() == sums[FILES["y_test"]]


def test_idx_round_trip_gzipped_or_not(tmp_path, rng):
    images = rng.integers(0, 256, size=(3, 4, 5)).astype(np.uint8)
    (tmp_path / "plain").write_bytes(idx_bytes(images))
    (tmp_path / "packed.gz").write_bytes(gzip.compress(idx_bytes(images)))
    for name in ("plain", "packed.gz"):
        np.testing.assert_array_equal(read_idx(tmp_path / name), images)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x00\x00", "truncated"),
        (b"\x12\x34\x08\x01\x00\x00\x00\x02ab", "not an IDX file"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x02", "truncated inside the header"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05abc", r"announces \(5,\) values \(5 bytes\) but only 3"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x02abcd", "2 unexpected bytes"),
    ],
    ids=["short", "magic", "header", "truncated-data", "wrong-count"],
)
def test_bad_idx_content_is_named(content, message):
    with pytest.raises(DataError, match=message):
        parse_idx(content, "x.idx")


def test_truncated_gzip_is_reported(tmp_path):
    packed = gzip.compress(idx_bytes(np.zeros((10, 28, 28))))
    (tmp_path / "cut.gz").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        read_idx(tmp_path / "cut.gz")


def copy_bundled(tmp_path):
    folder = tmp_path / "mnist"
    shutil.copytree(BUNDLED_DIR, folder)
    return folder


def test_folder_checksum_mismatch_is_reported(tmp_path):
    folder = copy_bundled(tmp_path)
    labels = folder / f"{FILES['y_test']}.gz"
    content = bytearray(gzip.decompress(labels.read_bytes()))
    content[100] = (content[100] + 1) % 10  # one wrong label, same size
    labels.write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(DataError, match=r"checksum mismatch.*the file is corrupt"):
        load_mnist(folder)


def test_folder_with_image_and_label_counts_that_differ(tmp_path):
    folder = copy_bundled(tmp_path)
    (folder / "MD5SUMS.uncompressed").unlink()
    (folder / f"{FILES['y_test']}.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(9999))))
    with pytest.raises(DataError, match="10000 images but labels of shape"):
        load_mnist(folder)


def test_keras_npz_and_environment_variable(tmp_path, monkeypatch, mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    path = tmp_path / "mnist.npz"
    np.savez(
        path, x_train=x_train[:100], y_train=y_train[:100], x_test=x_test[:10], y_test=y_test[:10]
    )
    monkeypatch.setenv("DIGITNET_DATA", str(path))
    (x_train_read, _), (_, y_test_read) = load_mnist()
    assert x_train_read.shape == (100, 28, 28) and y_test_read.tolist() == y_test[:10].tolist()
    np.savez(tmp_path / "other.npz", images=x_train[:2])
    with pytest.raises(DataError, match="missing x_train, y_train, x_test, y_test; it has images"):
        load_mnist(tmp_path / "other.npz")


def write_csv(path, rows, header=True):
    lines = ["label," + ",".join(f"pixel{i}" for i in range(784))] if header else []
    lines += [",".join(map(str, row)) for row in rows]
    path.write_text("\n".join(lines) + "\n")


def test_kaggle_csv(tmp_path, rng):
    rows = [[i % 10, *rng.integers(0, 256, 784)] for i in range(14)]
    write_csv(tmp_path / "train.csv", rows)
    x, y = read_kaggle_csv(tmp_path / "train.csv")
    assert x.shape == (14, 28, 28) and y.tolist() == [i % 10 for i in range(14)]
    assert x[3].reshape(-1).tolist() == rows[3][1:]
    (train_x, _), (test_x, test_y) = load_mnist(tmp_path / "train.csv")
    assert len(train_x) == 12 and len(test_x) == 2 and test_y.tolist() == [2, 3]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda rows: rows.__setitem__(1, rows[1][:-1]), "columns"),
        (lambda rows: rows[2].__setitem__(5, "abc"), "abc"),
        (lambda rows: rows[0].__setitem__(0, 12), r"label values must be in 0\.\.9"),
    ],
    ids=["column-count", "non-numeric", "bad-label"],
)
def test_malformed_kaggle_csv_is_named(tmp_path, mutate, message):
    rows = [[1, *([0] * 784)] for _ in range(3)]
    mutate(rows)
    write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(DataError, match=message):
        read_kaggle_csv(tmp_path / "bad.csv")


def test_csv_without_the_header(tmp_path):
    write_csv(tmp_path / "noheader.csv", [[1, *([0] * 784)]], header=False)
    with pytest.raises(DataError, match="expected the header label,pixel0"):
        read_kaggle_csv(tmp_path / "noheader.csv")


def test_missing_and_unknown_sources(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        load_mnist(tmp_path / "nope")
    (tmp_path / "digits.txt").write_text("hello")
    with pytest.raises(DataError, match="unknown data source"):
        load_mnist(tmp_path / "digits.txt")


def test_fingerprint_changes_with_one_pixel(mnist):
    (_, _), (x_test, y_test) = mnist
    changed = x_test.copy()
    changed[0, 0, 0] ^= 1
    assert fingerprint(x_test, y_test) != fingerprint(changed, y_test)
    assert fingerprint(x_test, y_test) == fingerprint(x_test.copy(), y_test.copy())


def test_written_pages_say_where_each_digit_is(mnist):
    """The synthetic pages of written numbers (training the reading, bench_reading): the text
    is the digits' labels line by line, each digit's box holds its strokes and only its own
    pixels are marked as its writing, and a stroke ends softly instead of being cut square at
    the digit's box (it was, enlarged from MNIST's 20-px box: a flat end as wide as the pen)."""
    import io

    from PIL import Image

    from digitnet.writing import Digits, pen, write_page

    (x_train, y_train), _ = mnist
    source = Digits.from_mnist("train", x_train[:200], y_train[:200])
    for seed in range(6):
        page = write_page(source, np.random.default_rng(seed))
        image = np.asarray(Image.open(io.BytesIO(page.image)))
        assert page.owner.shape == image.shape
        lines = page.text.split("\n")
        assert [str(d.label) for d in page.digits] == list("".join(lines))
        assert [d.line for d in page.digits] == [n for n, t in enumerate(lines) for _ in t]
        assert len(page.alone) == len(page.digits)
        for n, d in enumerate(page.digits):
            x, y, w, h = d.box
            mine = page.owner == n
            assert mine.any()
            rows, cols = np.nonzero(mine)
            assert x <= cols.min() and cols.max() < x + w and y <= rows.min() and rows.max() < y + h
    for seed in range(20):
        strokes = pen(source.ink[seed], 140, np.random.default_rng(seed))
        edges = [strokes[0], strokes[-1], strokes[:, 0], strokes[:, -1]]
        assert max(float(e.max()) for e in edges) < 0.25 * float(strokes.max())


def test_a_pages_overlap_is_the_deepest_reach_of_a_digit_into_its_neighbour(mnist):
    """``Page.overlap``: the columns two neighbours in a line share, over the narrower one's
    width — 1.0 for a narrow digit inside a wide one's columns, nothing across lines — and
    pages written with gaps that keep digits apart never overlap."""
    from digitnet.vision.box import Box
    from digitnet.writing import Digits, Page, WrittenDigit, write_page

    def page(*digits: tuple[int, int, int]) -> Page:  # (left, width, line) each
        written = [WrittenDigit(7, Box(x, 0, w, 30), line) for x, w, line in digits]
        return Page(b"", "", written, np.zeros((1, 1), np.int16), [])

    assert page((0, 20, 0), (25, 20, 0)).overlap == 0.0
    assert page((0, 20, 0), (15, 10, 0)).overlap == 0.5  # 5 of the narrower's 10 columns
    assert page((0, 20, 0), (15, 40, 0)).overlap == 0.25
    assert page((0, 30, 0), (10, 6, 0), (30, 20, 0)).overlap == 1.0  # a 1 within a 7
    assert page((0, 20, 0), (5, 20, 1)).overlap == 0.0  # another line
    (x_train, y_train), _ = mnist
    source = Digits.from_mnist("train", x_train[:200], y_train[:200])
    for seed in range(4):
        rng = np.random.default_rng(seed)
        assert write_page(source, rng, alone=False, gaps=(0.1, 0.5)).overlap == 0.0
        touching = write_page(source, rng, alone=False, gaps=(-0.33, -0.33), count=(3, 3))
        assert touching.overlap >= 0.3


def test_digits_joined_by_a_stroke_are_one_piece_of_writing_and_keep_their_owners(mnist):
    """``write_line(joined=1)``: each digit close to the next is joined to it by a stroke, as
    written without lifting the pen — one piece of connected writing where the digits stood
    apart — and the stroke is nobody's writing: every digit keeps the pixels it owned."""
    from digitnet.vision.components import label
    from digitnet.writing import Digits, write_digit, write_line

    (x_train, y_train), _ = mnist
    source = Digits.from_mnist("train", x_train[:200], y_train[:200])
    joined_pieces = 0
    for seed in range(12):
        inks = [write_digit(source.ink[seed * 3 + k], 40, np.random.default_rng(seed))
                for k in range(3)]  # fmt: skip
        apart = write_line(inks, 40, np.random.default_rng(seed), gaps=(0.3, 0.3))
        joined = write_line(inks, 40, np.random.default_rng(seed), gaps=(0.3, 0.3), joined=1.0)
        assert np.array_equal(apart[1], joined[1])  # the owners: the stroke is nobody's
        added = (joined[0] > apart[0] + 0.05) & (joined[1] >= 0)
        assert added.sum() <= 0.1 * (joined[1] >= 0).sum()  # over the digits: only where it starts
        strong = [line > 0.1 * line.max() for line, *_ in (apart, joined)]
        assert len(label(strong[0])[1]) >= 3
        joined_pieces += len(label(strong[1])[1]) == 1
    assert joined_pieces >= 10


def test_amounts_end_in_flat_zeros_chained_to_the_digit_before(mnist):
    """``write_page(flat_zeros=1)``: every number ends in one to three 0s (amounts do), each 0
    written 1.3-1.9 times as wide as it was and close after the digit before it — overlapping
    it or at most a twentieth of its width away — while the page's text and boxes still say
    which digit is where; at odds 0 the pages are the same as before the option."""
    from digitnet.writing import Digits, write_page

    (x_train, y_train), _ = mnist
    source = Digits.from_mnist("train", x_train[:300], y_train[:300])
    wider = []
    for seed in range(8):
        page = write_page(source, np.random.default_rng(seed), alone=False, flat_zeros=1.0)
        assert all(line.endswith("0") for line in page.text.split("\n"))
        assert [str(d.label) for d in page.digits] == list(page.text.replace("\n", ""))
        if page.marks:
            continue  # a number with marks keeps their spacing
        for before, zero in pairwise(page.digits):
            if zero.label == 0 and zero.line == before.line:
                assert zero.box.x - before.box.right <= 0.05 * before.box.width + 1
                wider.append(zero.box.width / zero.box.height)
    assert len(wider) >= 5 and np.median(wider) > 1.1  # round ones: 0.9 here
    plain = write_page(source, np.random.default_rng(0), alone=False)
    assert plain.text == write_page(source, np.random.default_rng(0), alone=False,
                                    flat_zeros=0.0).text  # fmt: skip


def test_digits_written_on_paper_for_training(mnist, monkeypatch):
    """``written_alone``: MNIST training digits written on paper as a page's digits are and
    read back through the image pipeline — new pictures of the same digits (the bundled model
    reads them), the same for any number of worker processes, another set for another seed."""
    import digitnet.writing as writing
    from digitnet.zoo import bundled_model

    (x_train, y_train), _ = mnist
    monkeypatch.setattr(writing, "WRITTEN_CHUNK", 8)  # three chunks, each with its own seed
    digits = x_train[:20]
    written = writing.written_alone(digits, seed=0, workers=1)
    assert written.shape == (20, 28, 28) and written.dtype == np.float32
    assert written.min() >= 0 and written.max() <= 1
    assert np.array_equal(written, writing.written_alone(digits, seed=0, workers=2))
    assert not np.array_equal(written, writing.written_alone(digits, seed=1, workers=2))
    changed = np.abs(written - digits / 255).mean(axis=(1, 2))  # (20,)
    assert (changed > 0.005).all() and changed.mean() > 0.02  # new pictures, not MNIST's
    read = bundled_model().predict(written, verbose=0).argmax(axis=1)
    assert np.mean(read == y_train[:20]) >= 0.9
