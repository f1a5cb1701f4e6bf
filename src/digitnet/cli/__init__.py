"""The ``digitnet`` command line: a thin layer that parses arguments, calls the library and
presents the results. Library errors become one line on stderr and a non-zero exit status.

Each command — its arguments and the function that carries it out — is in a module of its own
(``train``, ``models``, ``answers``, ``serve``); what they share is in ``base``. The commands
import the library when they run, so ``digitnet --help`` answers without loading NumPy.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from collections.abc import Sequence

from digitnet.cli import answers, models, serve, train  # noqa: F401 (each registers commands)
from digitnet.cli.base import (
    COMMANDS,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    ORDER,
    CommandError,
    Parser,
    default_jobs,
    default_workers,
)
from digitnet.cli.serve import listen

__all__ = ["build_parser", "default_jobs", "default_workers", "listen", "main"]


def build_parser() -> Parser:
    parser = Parser(
        prog="digitnet",
        description="Read handwritten digits with a neural network built from scratch in NumPy.",
    )
    from digitnet import __version__

    parser.add_argument("--version", action="version", version=f"digitnet {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    parser.commands = commands.choices  # each command's parser, to report its own usage errors

    for add in sorted(COMMANDS, key=lambda add: ORDER.index(add.__name__.removeprefix("add_"))):
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # said by the command's parser: "digitnet predict: error: ..."
        parser.commands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    args.command_line = "digitnet " + shlex.join(argv)
    from digitnet.blas import short_blas_spin, single_blas_thread

    short_blas_spin()  # before NumPy is imported below
    if args.command in ("serve", "predict", "read"):  # the work is shared out by processes,
        single_blas_thread()  # and one thread's numbers are the same in every one of them
    from digitnet.data import DataError
    from digitnet.memory import reuse_freed_memory
    from digitnet.nn import NNError
    from digitnet.nn.files import FileRefused

    if args.command in ("train", "calibrate", "evaluate"):  # never a server's: it would keep
        reuse_freed_memory()  # a large image's memory for good
    stdout = sys.stdout
    sys.stdout = PipeSafe(stdout)  # `digitnet train | head -1` must still save the model
    try:
        return args.func(args)
    except (NNError, DataError, ImportError, FileRefused, CommandError) as err:
        print(f"digitnet {args.command}: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as err:
        where = f": {err.filename}" if err.filename else ""
        print(f"digitnet {args.command}: error: {err.strerror or err}{where}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"digitnet {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        sys.stdout = stdout


class PipeSafe:
    """A text stream that outlives its reader: once the program reading our output has gone
    (``| head -1``), what is written is dropped and the command's work (a model being
    trained and saved) goes on. Python ignores SIGPIPE, so a plain stream raises
    BrokenPipeError at the next print, wherever the command is."""

    def __init__(self, stream):
        self.stream, self.gone = stream, False

    def write(self, text: str) -> int:
        return self._quietly(self.stream.write, text) or len(text)

    def flush(self) -> None:
        self._quietly(self.stream.flush)

    def _quietly(self, action, *args):
        if self.gone:
            return None
        try:
            return action(*args)
        except BrokenPipeError:
            self.gone = True
            # The interpreter flushes stdout on exit: let that find nothing to complain of.
            with contextlib.suppress(OSError, ValueError, AttributeError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())
            return None

    def __getattr__(self, name: str):
        return getattr(self.stream, name)
