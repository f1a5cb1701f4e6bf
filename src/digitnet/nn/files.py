"""The files a user names, read and written safely.

Reading: only regular files (a FIFO would block for ever, ``/dev/zero`` never ends), and never
more bytes than a stated limit, whatever the file's size says — it is counted while reading.
Writing: atomically (a temporary file beside the target, then renamed into place), never over
anything but a regular file, and over an existing file only when asked; a path that cannot take
the file is found out before the work that produces it (``check_output_path``).

The errors are ``FileRefused`` (a ``ValueError``) and ``OSError``s that name the path the user
gave, never a temporary file; the callers turn the first into their own kind of error.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import tempfile
import zipfile
from pathlib import Path

CHUNK = 1 << 20


class FileRefused(ValueError):
    """A path that is not a regular file, or a file larger than the limit. The message names
    the path; ``reason`` says what is wrong without it."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason or message


class FileTooLarge(FileRefused):
    pass


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"),
                       (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"),
                       (stat.S_ISSOCK, "a socket")):  # fmt: skip
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str | os.PathLike, flags: int = os.O_RDONLY, mode: int = 0o666) -> int:
    """A descriptor of the regular file at ``path`` (symbolic links followed), opened with
    ``flags``: FileRefused for anything else, FileNotFoundError or another OSError when it
    cannot be opened. Never waits: a FIFO is refused, not opened for a writer to come."""
    # O_NONBLOCK: opening a FIFO would otherwise wait for the other end.
    flags |= getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags, mode)
    try:
        kind = os.fstat(fd).st_mode
        if not stat.S_ISREG(kind):
            reason = f"is {_kind(kind)}, not a file"
            raise FileRefused(f"{path}: {reason}", reason)
        if hasattr(os, "set_blocking"):  # a regular file never blocks; clear it for writes
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_regular(path: str | os.PathLike, max_bytes: int) -> bytes:
    """The bytes of the regular file at ``path`` (symbolic links followed), at most
    ``max_bytes`` of them: FileRefused for anything else, FileNotFoundError or another OSError
    when it cannot be opened."""
    fd = open_regular(path)
    try:
        chunks, size = [], 0
        while chunk := os.read(fd, CHUNK):
            size += len(chunk)
            if size > max_bytes:
                reason = f"larger than {max_bytes / 2**20:g} MB"
                raise FileTooLarge(f"{path}: {reason}", reason)
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_file_as(path, max_bytes: int, error: type[Exception], what: str = "file",
                 too_large: type[Exception] | None = None,
                 apart: bool = False) -> bytes:  # fmt: skip
    """``read_regular``, with every failure one ``error`` (``too_large`` for a file over the
    limit) whose message names the path: how models, images and data files are read. With
    ``apart``, the error is made as ``error(reason, path)``, and names the path itself."""

    def failure(kind: type[Exception], reason: str) -> Exception:
        return kind(reason, str(path)) if apart else kind(f"{path}: {reason}")

    try:
        return read_regular(path, max_bytes)
    except FileNotFoundError:
        raise failure(error, f"no such {what}") from None
    except FileTooLarge as err:
        raise failure(too_large or error, err.reason) from None
    except FileRefused as err:
        raise failure(error, err.reason) from None
    except OSError as err:
        raise failure(error, f"cannot read: {err.strerror or err}") from None


def check_output_path(path: str | os.PathLike, replace: bool = False) -> Path:
    """``path`` if a new file can be written there: its folder is a folder (or can be made)
    and writable, and nothing is there — or, with ``replace``, a regular file (never a
    symbolic link, dangling or not: the file written would not be the one named). Raises
    FileExistsError or FileRefused naming the path and what to do, or the OSError of a folder
    that cannot be written. For work that comes before the writing (training)."""
    path, folder = _target(path, replace)
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise OSError(err.errno, f"cannot write in {folder}: {err.strerror}") from None
    return path


def _target(path: str | os.PathLike, replace: bool) -> tuple[Path, Path]:
    """``path``, checked as ``check_output_path`` says but for the folder's permissions, and
    the nearest folder of it that exists."""
    if not str(path):
        raise FileRefused("an empty path; name a file to write")
    path = Path(path)
    if path.is_symlink():  # dangling or not: writing would go elsewhere than the name says
        pointed = os.readlink(path)
        where = f"to {pointed}, which does not exist" if not path.exists() else f"to {pointed}"
        raise FileRefused(f"{path} is a symbolic link {where}; name the file itself")
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        raise FileRefused(f"{path} is {_kind(mode)}; name a file to write")
    if mode is not None and not replace:
        raise _exists(path)
    folder = path.parent
    while not (folder.exists() or folder.is_symlink()):  # the nearest existing one decides
        folder = folder.parent
    if not folder.is_dir():
        raise FileRefused(f"{folder} is not a folder, so {path} cannot be written")
    return path, folder


def _exists(path: Path) -> FileExistsError:
    return FileExistsError(f"{path} exists; digitnet replaces a file only when told to")


def atomic_write(path: str | os.PathLike, write, replace: bool = True) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, then move it into place, so a
    crash or Ctrl-C never leaves a half-written file at ``path``. Only a regular file is ever
    replaced, and only with ``replace``; otherwise FileExistsError."""
    path, _ = _target(path, replace)  # the folder's permissions: mkstemp's error says them
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise OSError(err.errno, f"cannot write {path}: {err.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        if replace:
            os.replace(tmp, path)
        else:  # a link fails if a file appeared there meanwhile: nothing is replaced
            os.link(tmp, path)
            os.unlink(tmp)
    except FileExistsError:
        Path(tmp).unlink(missing_ok=True)
        raise _exists(path) from None
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise OSError(err.errno, f"cannot write {path}: {err.strerror}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


MAX_ZIP_ENTRIES = 1024  # a model file holds a few dozen arrays (the bundled cnn: 27)
EOCD = b"PK\x05\x06"  # the end of a zip's central directory
ZIP64_LOCATOR = b"PK\x06\x07"


class ZipRefused(ValueError):
    """A zip archive refused before it is parsed; the message says why."""


def open_zip(content: bytes, max_entries: int = MAX_ZIP_ENTRIES):
    """A ``zipfile.ZipFile`` of ``content``, its directory sized up first: Python's zipfile
    reads the whole central directory into objects when it opens, and a 90 MB archive of a
    million empty members took 12 s and 691 MB to open. Its end record (the last 22 bytes
    and a comment of up to 64 KB) says how many members there are: more than
    ``max_entries``, or a ZIP64 archive (only needed past 65,535 members or 4 GB), is a
    ZipRefused without parsing anything more."""
    tail = content[-(22 + 65535) :]
    at = tail.rfind(EOCD)
    if at < 0 or len(tail) - at < 22:
        raise zipfile.BadZipFile("no end of central directory")
    entries, directory_bytes = struct.unpack_from("<HI", tail, at + 10)
    if tail[max(0, at - 20) : at].startswith(ZIP64_LOCATOR) or entries == 0xFFFF:
        raise ZipRefused("a ZIP64 archive (a model file needs no more than 65,535 members)")
    if entries > max_entries or directory_bytes > 1024 * max_entries:
        raise ZipRefused(f"{entries:,} members, more than the {max_entries:,} allowed")
    try:
        return zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile:
        raise
    except Exception as err:  # a damaged directory also gave NotImplementedError, OverflowError
        raise zipfile.BadZipFile(f"{type(err).__name__}: {err}") from None


def json_depth(value) -> int:
    """How deeply lists and dicts nest in a JSON value (iteratively: no recursion limit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (list, dict)):
            deepest = max(deepest, depth)
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
    return deepest
