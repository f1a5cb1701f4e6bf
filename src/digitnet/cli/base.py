"""What every command of the ``digitnet`` command line shares: the parser that reports a usage
error in one line, the registry of commands, the argument types and the arguments several
commands take, and the check of an output path before any work.

Nothing here imports NumPy or the library: ``digitnet --help`` builds every command's parser
and must answer at once; each command imports what it runs when it runs.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """A request the command cannot carry out, said in one line."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that points to --help."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


COMMANDS: list = []  # each adds its command to the parser, in the order --help lists them


def command(add):
    """Register ``add(commands)``, which declares a command's arguments right above the
    function that carries it out (``cmd_*``); ``--help`` lists them in ORDER."""
    COMMANDS.append(add)
    return add


ORDER = ("train", "evaluate", "predict", "read", "calibrate", "summary", "convert", "export",
         "serve", "report")  # fmt: skip


# ------------------------------------------------------------------------------ argument types


def _number(text: str, cast, kind: str, valid, rule: str):
    try:
        value = cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {kind}; got {text!r}") from None
    if not valid(value):
        raise argparse.ArgumentTypeError(f"must be {rule}; got {text}")
    return value


MAX_DEFAULT_WORKERS = 4  # a handful of people drawing at once; each worker holds ~50 MB


def default_workers() -> int:
    """``digitnet serve``'s worker processes unless told: one per core this process may use
    (the work is CPU-bound), at most MAX_DEFAULT_WORKERS; one core means the server itself.
    On Windows, the server itself: the pool waits on its workers' pipes with the event loop's
    ``add_reader``, which Windows' event loops do not offer for pipes."""
    from digitnet.blas import available_cores  # no NumPy: the parser is built before it loads

    return 1 if sys.platform == "win32" else available_cores(at_most=MAX_DEFAULT_WORKERS)


def default_jobs() -> int:
    """predict's and read's worker processes unless told: the cores this process may use."""
    from digitnet.blas import available_cores  # no NumPy: the parser is built before it loads

    return available_cores(at_most=64)


def positive_int(text: str) -> int:
    return _number(text, int, "a whole number", lambda v: v >= 1, "at least 1")


PROCESSES_PER_CORE = 4  # --jobs, --workers: more processes than cores only take memory
MAX_TRAININGS = 4  # serve --max-trainings: each takes a core and up to ~1 GB


def processes(text: str) -> int:
    """A count of worker processes: 1 to PROCESSES_PER_CORE per core this process may use
    (`predict --jobs 10000` started 46 processes and took 3.9 GB before it answered)."""
    from digitnet.blas import available_cores  # no NumPy: the parser is built before it loads

    most = PROCESSES_PER_CORE * available_cores(at_most=1024)
    return _number(text, int, "a whole number", lambda v: 1 <= v <= most,
                   f"1 to {most} here ({PROCESSES_PER_CORE} a core)")  # fmt: skip


def trainings_at_once(text: str) -> int:
    return _number(text, int, "a whole number", lambda v: 1 <= v <= MAX_TRAININGS,
                   f"1 to {MAX_TRAININGS}")  # fmt: skip


def non_negative_int(text: str) -> int:
    return _number(text, int, "a whole number", lambda v: v >= 0, "0 or more")


def positive_float(text: str) -> float:
    return _number(text, float, "a number", lambda v: math.isfinite(v) and v > 0, "a number > 0")


def momentum(text: str) -> float:
    from digitnet.nn import NNError
    from digitnet.nn.optimizers import check_momentum  # the range, where the engine defines it

    try:
        return check_momentum(_number(text, float, "a number", math.isfinite, "a number"))
    except NNError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def path_text(text: str) -> str:
    """A path to write: never empty (``--out ""`` silently meant the default)."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path; name a file or folder")
    return text


def upload_megabytes(text: str) -> float:
    return _number(text, float, "a number", lambda v: 0 < v <= 50, "in (0, 50]")


def port_number(text: str) -> int:
    return _number(text, int, "a port number", lambda v: 0 < v < 65536, "in 1-65535")


def layer_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer sizes such as 16,16; got {text!r}"
        ) from None
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes must be at least 1; got {text!r}")
    return sizes


def name_from(table: Sequence[str], kind: str, plural: str = ""):
    def parse(text: str) -> str:
        key = text.lower()
        if key not in table:
            raise argparse.ArgumentTypeError(
                f"unknown {kind} {text!r}; valid {plural or kind + 's'}: {', '.join(table)}"
            )
        return key

    return parse


ACTIVATIONS = ("relu", "sigmoid", "tanh", "linear")
PRESETS = ("tutorial", "mlp", "cnn")  # digitnet.zoo.PRESETS, named here to keep --help light
LOSSES = ("sparse_categorical_crossentropy", "categorical_crossentropy", "mean_squared_error")
LOSS_ALIASES = {"mse": "mean_squared_error", "crossentropy": "sparse_categorical_crossentropy"}
OPTIMIZERS = ("sgd", "adam")


def loss_name(text: str) -> str:
    return name_from(LOSSES, "loss", "losses")(LOSS_ALIASES.get(text.lower(), text))


# ------------------------------------------------------------------ arguments shared by commands


def add_image_arguments(parser: argparse.ArgumentParser) -> None:
    """The images, the model, --json and how the work is shared out: predict's and read's."""
    parser.add_argument("images", metavar="IMAGE_OR_FOLDER", nargs="+")
    parser.add_argument("--model", help="a model file, or cnn (default) or tutorial")
    parser.add_argument("--json", action="store_true", help="one JSON object per image per line")
    parser.add_argument("--jobs", type=processes, default=default_jobs(), metavar="N",
                        help="processes working at once, each with the model loaded once"
                        " (default: the cores this process may use, %(default)s here)")  # fmt: skip
    parser.add_argument("--unordered", action="store_true",
                        help="answers as they come, not in the files' order")  # fmt: skip
    parser.add_argument("--resume", metavar="OUT.jsonl", type=path_text,
                        help="also write the answers to this JSON-lines file, as they come;"
                        " files it already answers are skipped (a run stopped halfway goes on"
                        " where it stopped)")  # fmt: skip
    parser.add_argument("--dask", metavar="ADDRESS",
                        help="send the work to the Dask cluster whose scheduler is here"
                        " (tcp://host:8786); the workers read the files, from a path they"
                        " share (pip install 'digitnet[dask]')")  # fmt: skip


def add_writing_command(commands, name: str, handler, out: str, out_help: str, **text) -> None:
    """A command that reads MODEL and writes one file, OUT: replaced only with --force."""
    parser = commands.add_parser(name, **text)
    parser.add_argument("model", metavar="MODEL", help="a model file (digitnet or Keras), or"
                        " a bundled model: cnn or tutorial")  # fmt: skip
    parser.add_argument("out", metavar=out, type=path_text, help=out_help)
    parser.add_argument("--force", action="store_true", help="replace an existing OUT file")
    parser.set_defaults(func=handler)


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model",
        metavar="MODEL",
        nargs="?",
        help="a model file saved by digitnet train, or a bundled model: cnn (the default, the"
        " best) or tutorial",
    )


def add_data_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        metavar="PATH",
        help="MNIST source: a folder of IDX files (gzipped or not), a Keras mnist.npz or a"
        " Kaggle train.csv (default: $DIGITNET_DATA, else the bundled MNIST)",
    )


def writable(path, replace: bool, model_file: bool = True) -> None:
    """Refuse, before any work, an output path the command may not write: one that exists
    (unless ``replace``), a folder or a device, and for a model file a Keras name."""
    from digitnet.nn.files import check_output_path
    from digitnet.nn.io import check_model_name

    if model_file:
        check_model_name(path)
    try:
        check_output_path(path, replace=replace)
    except FileExistsError as err:
        raise CommandError(f"{err} (--force)") from None
