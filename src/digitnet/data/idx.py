"""Reader for the IDX format of the MNIST files (http://yann.lecun.com/exdb/mnist/).

An IDX file is: two zero bytes, a type code, the number of dimensions d, then d big-endian
uint32 sizes, then the values in row-major order (big-endian for multi-byte types). Files may
be gzipped; the gzip magic bytes decide, not the file name.
"""

from __future__ import annotations

import math
import os
import zlib

import numpy as np

from digitnet.data.errors import DataError
from digitnet.nn.files import read_file_as

IDX_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"


MAX_FILE_BYTES = 1 << 30  # a file as stored (MNIST's largest, gzipped: 9.9 MB)
MAX_IDX_BYTES = 1 << 30  # the values an IDX header may announce (MNIST's largest: 47 MB)


def read_file(path: str | os.PathLike, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``, or a DataError naming it."""
    return read_file_as(path, max_bytes, DataError)


def read_bytes(path: str | os.PathLike) -> bytes:
    """The IDX content of ``path``, decompressed when it is gzipped. A gzipped file is inflated
    only as far as its IDX header announces (within MAX_IDX_BYTES): a gzip bomb stops there."""
    raw = read_file(path)
    if not raw.startswith(GZIP_MAGIC):
        return raw
    header = gunzip(raw, 4 + 4 * 255, str(path), whole=False)
    return gunzip(raw, idx_size(header, str(path)), str(path))


def gunzip(raw: bytes, limit: int, name: str, whole: bool = True) -> bytes:
    """Up to ``limit`` bytes inflated from gzip data (all its members); with ``whole``, a
    DataError when it holds more, or when it ends early."""
    out = bytearray()
    data = raw
    try:
        while data and len(out) <= limit:
            inflate = zlib.decompressobj(wbits=31)  # 31: a gzip member
            out += inflate.decompress(data, limit + 1 - len(out))
            if not inflate.eof:
                if len(out) <= limit:  # the input ended before the output limit
                    raise DataError(f"{name}: corrupt or truncated gzip data (it ends early)")
                break
            data = inflate.unused_data
    except zlib.error as err:
        raise DataError(f"{name}: corrupt or truncated gzip data ({err})") from None
    if whole and len(out) > limit:
        raise DataError(f"{name}: more data than its IDX header announces ({limit} bytes)")
    return bytes(out[:limit])


def idx_size(content: bytes, name: str = "IDX data") -> int:
    """The length of a whole IDX file from its first bytes: header plus the values it
    announces; a DataError when it announces more than MAX_IDX_BYTES."""
    shape, dtype, header = _idx_header(content, name)
    size = math.prod(shape) * dtype.itemsize
    if size > MAX_IDX_BYTES:
        raise DataError(
            f"{name}: its header announces {shape} values ({size / 2**20:,.0f} MB), more than"
            f" the {MAX_IDX_BYTES // 2**20} MB accepted"
        )
    return header + size


def _idx_header(content: bytes, name: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, header length) from IDX bytes."""
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
    return shape, IDX_TYPES[type_code], header


def parse_idx(content: bytes, name: str = "IDX data") -> np.ndarray:
    """Decode IDX bytes into an array of the stored shape and type (native byte order)."""
    shape, dtype, header = _idx_header(content, name)
    expected = idx_size(content, name) - header
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
