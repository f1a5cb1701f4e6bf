"""Reader for the IDX format of the MNIST files (http://yann.lecun.com/exdb/mnist/).

An IDX file is: two zero bytes, a type code, the number of dimensions d, then d big-endian
uint32 sizes, then the values in row-major order (big-endian for multi-byte types). Files may
be gzipped; the gzip magic bytes decide, not the file name.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from digitnet.data.errors import DataError

IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: str | os.PathLike) -> bytes:
    """The content of ``path``, decompressed when it is gzipped."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read: {err.strerror or err}") from None
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:
        raise DataError(f"{path}: corrupt or truncated gzip data ({err})") from None


def parse_idx(content: bytes, name: str = "IDX data") -> np.ndarray:
    """Decode IDX bytes into an array of the stored shape and type (native byte order)."""
    if len(content) < 4:
        raise DataError(f"{name}: truncated: {len(content)} bytes is shorter than an IDX header")
    zero1, zero2, type_code, ndim = content[:4]
    if zero1 or zero2 or type_code not in IDX_TYPES or ndim == 0:
        raise DataError(
            f"{name}: not an IDX file (magic bytes {content[:4].hex()}; expected 0000 followed by"
            " a type code such as 08 and the number of dimensions)"
        )
    header = 4 + 4 * ndim
    if len(content) < header:
        raise DataError(f"{name}: truncated inside the header")
    shape = tuple(int(d) for d in np.frombuffer(content, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[type_code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(content) - header
    if found < expected:
        raise DataError(
            f"{name}: truncated: the header announces {shape} values ({expected} bytes)"
            f" but only {found} bytes follow"
        )
    if found > expected:
        raise DataError(
            f"{name}: {found - expected} unexpected bytes after the {shape} values the header"
            " announces (wrong count in the header?)"
        )
    data = np.frombuffer(content, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzipped or not) into an array of its stored shape."""
    return parse_idx(read_bytes(path), name=str(path))
