"""The ``digitnet`` command line: a thin layer that parses arguments, calls the library and
presents the results. Library errors become one line on stderr and a non-zero exit status.

Heavy modules (NumPy, the engine) are imported inside the commands so ``digitnet --help``
answers at once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
DEFAULT_MODEL_NAME = "digitnet-model"


class CommandError(Exception):
    """A request the command cannot carry out, said in one line."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that points to --help."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


COMMANDS: list = []  # each adds its command to the parser, in the order --help lists them


def command(add):
    """Register ``add(commands)``, which declares a command's arguments right above the
    function that carries it out (``cmd_*``)."""
    COMMANDS.append(add)
    return add


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


# -------------------------------------------------------------------------------- the commands


@command
def add_train(commands) -> None:
    train = commands.add_parser(
        "train",
        help="train a network on MNIST (default: the tutorial's 784-16-16-10 recipe)",
        description="Train a network on MNIST and save it. With no options this is the"
        " tutorial's recipe: 784-16-16-10, ReLU, softmax, SGD with learning rate 0.01,"
        " batch size 32, 5 epochs, validated on the test set after each epoch."
        " --model mlp or cnn trains the stronger presets with their own recipes.",
    )
    train.add_argument(
        "--model",
        type=name_from(PRESETS, "model preset"),
        default="tutorial",
        help=f"the preset to train: {', '.join(PRESETS)} (default: tutorial)",
    )
    train.add_argument(
        "--hidden",
        type=layer_sizes,
        metavar="SIZES",
        help="hidden layer sizes of an MLP preset, comma-separated (tutorial: 16,16)",
    )
    train.add_argument(
        "--activation",
        type=name_from(ACTIVATIONS, "activation"),
        help=f"hidden activation of an MLP preset: {', '.join(ACTIVATIONS)} (default: relu)",
    )
    train.add_argument(
        "--loss",
        type=loss_name,
        default="sparse_categorical_crossentropy",
        help=f"loss: {', '.join(LOSSES)} (default: sparse_categorical_crossentropy)",
    )
    train.add_argument(
        "--optimizer",
        type=name_from(OPTIMIZERS, "optimizer"),
        help="sgd or adam instead of the preset's optimiser (tutorial: sgd)",
    )
    train.add_argument(
        "--lr",
        type=positive_float,
        help="learning rate, or the peak of the preset's schedule (tutorial: 0.01)",
    )
    train.add_argument(
        "--momentum", type=momentum, default=0.0, help="SGD momentum in [0, 1) (default: 0)"
    )
    train.add_argument("--nesterov", action="store_true", help="use Nesterov momentum")
    train.add_argument(
        "--batch-size", type=positive_int, help="default: the preset's (tutorial: 32)"
    )
    train.add_argument("--epochs", type=positive_int, help="default: the preset's (tutorial: 5)")
    train.add_argument("--samples", type=positive_int, metavar="N",
                       help="train on the first N training digits (default: all)")  # fmt: skip
    train.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="randomly shift, rotate and scale the training digits (default: only for cnn)",
    )
    train.add_argument(
        "--written",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="also train on the first N training digits written on paper as a page's digits"
        " are (own height, pen, darkness, paper, grain, JPEG) and read back through the image"
        " pipeline (default: 0)",
    )
    train.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed for the initial weights and the shuffling (default: 0)",
    )
    train.add_argument(
        "--out",
        metavar="PATH",
        type=path_text,
        help=f"where to save the model (default: ./{DEFAULT_MODEL_NAME}.npz,"
        " or -2, -3, ... if that exists); checked before training starts",
    )
    train.add_argument(
        "--force", action="store_true", help="replace an existing file at --out (never a folder)"
    )
    add_data_option(train)
    train.add_argument("--quiet", action="store_true", help="no per-epoch output")
    train.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    from digitnet.data.mnist import describe_source
    from digitnet.nn.io import save_model
    from digitnet.training import TrainConfig, train

    config = TrainConfig(
        model=args.model,
        hidden=args.hidden,
        activation=args.activation,
        loss=args.loss,
        optimizer=args.optimizer,
        lr=args.lr,
        momentum=args.momentum,
        nesterov=args.nesterov,
        batch_size=args.batch_size,
        epochs=args.epochs,
        samples=args.samples,
        augment=args.augment,
        written=args.written,
        seed=args.seed,
        data=args.data,
        command=args.command_line,
    )
    preset = config.validate()
    out = Path(args.out) if args.out is not None else unused_path(Path(f"{DEFAULT_MODEL_NAME}.npz"))
    writable(out, replace=args.force)  # now, not after minutes of training
    digits = f"the first {config.samples:,} digits of " if config.samples else ""
    if config.written:
        digits = f"{config.written:,} digits written on paper and {digits}"
    print(
        f"Training {preset.name} ({preset.description}) on {digits}{describe_source(config.data)}:"
        f" {plural(config.epochs or preset.epochs, 'epoch')}, batch size"
        f" {config.batch_size or preset.batch_size}, seed {config.seed}",
        flush=True,
    )
    model = train(config, verbose=not args.quiet)
    test = model.metadata["test"]
    print(
        f"Test accuracy: {test['accuracy']:.4f} (loss {test['loss']:.4f});"
        f" training took {model.metadata['training_seconds']:.2f} s"
    )
    save_model(model, out, overwrite=args.force)
    print(f"Saved the model to {out}")
    if model.history.interrupted:
        print("Training was interrupted (Ctrl-C): the saved weights are those of the last step.")
        return EXIT_INTERRUPTED
    return 0


def plural(count: int, noun: str) -> str:
    """ "1 epoch", "5 epochs": a count with its noun."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def unused_path(path: Path) -> Path:
    """``path`` if nothing is there, else the first free ``stem-2``, ``stem-3``, ... beside it."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


@command
def add_evaluate(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate", help="accuracy, loss, per-class scores and confusion matrix on the test set"
    )
    add_model_argument(evaluate)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    add_data_option(evaluate)
    evaluate.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from digitnet.evaluation import evaluate_model, format_report
    from digitnet.zoo import BEST, resolve_model

    model = resolve_model(args.model)
    report = {"model": args.model or BEST, **evaluate_model(model, args.data)}
    if args.json:
        print(json.dumps(report))
    else:
        print(format_report({**report, "model": describe_model(args.model)}))
    return 0


def describe_model(spec: str | None) -> str:
    """What a MODEL argument names: "cnn (bundled)", or the file's path."""
    from digitnet.zoo import BEST, names_bundled_model

    if spec is None or names_bundled_model(spec):
        return f"{spec or BEST} (bundled{', the default' if spec is None else ''})"
    return spec


@command
def add_predict(commands) -> None:
    predict = commands.add_parser(
        "predict",
        help="recognise the digit in each image (photos, scans, drawings) or folder of images",
        description="Recognise the digit in each image. Folders are searched for images."
        " A blank image gets no digit and a reason. Exit status 1 if any file failed.",
    )
    add_image_arguments(predict)
    predict.add_argument("--top", type=positive_int, metavar="K", default=0,
                         help="also show the K most probable digits")  # fmt: skip
    predict.add_argument("--csv", metavar="OUT", type=path_text,
                         help="also write a CSV file (never overwritten)")  # fmt: skip
    predict.set_defaults(func=cmd_predict)


def cmd_predict(args) -> int:
    if args.csv and Path(args.csv).exists():
        raise FileExistsError(
            f"{args.csv} exists; digitnet never overwrites a CSV (choose another)"
        )
    task = task_of(args, "predict")  # the model first: nothing printed or written if it fails
    entries = files_to_answer(args, task)  # and the --resume file
    if not args.json:
        print(f"{'file':<40} digit  confidence")
    with contextlib.ExitStack() as stack:
        table = None
        if args.csv:
            table = csv_table(stack.enter_context(open(args.csv, "x", newline="")))
        if args.json:
            return answer_files(args, task, entries, json.dumps, table)
        return answer_files(args, task, entries, lambda r: format_prediction(r, args.top), table)


def shown(name: str) -> str:
    """A file name as one line of text: control characters (a newline in a name broke the
    table) written as escapes, the rest as it is."""
    if name.isprintable():
        return name
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in name)


def format_prediction(record: dict, top: int) -> str:
    name = shown(record["file"])
    if "error" in record:
        return f"{name:<40} error: {record['error']}"
    if record["digit"] is None:
        return f"{name:<40}     -  {record['reason']}"
    line = f"{name:<40} {record['digit']:>5}  {record['confidence']:>10.4f}"
    if top:
        line += "   " + "  ".join(f"{t['digit']}:{t['probability']:.3f}" for t in record["top"])
    if record.get("note"):
        line += f"   ({record['note']})"
    return line


def csv_table(file) -> Callable[[dict], None]:
    """A CSV writer for predict's answers, one row each as they come."""
    import csv

    writer = csv.writer(file)
    writer.writerow(["file", "digit", "confidence", "reason", "error"])

    def write(r: dict) -> None:
        writer.writerow([r["file"], "" if r.get("digit") is None else r["digit"],
                         "" if r.get("confidence") is None else f"{r['confidence']:.6f}",
                         r.get("reason") or "", r.get("error") or ""])  # fmt: skip

    return write


def task_of(args, kind: str):
    """predict's or read's work with the model the command names (read and loaded: a model
    that is not one is the command's one error line)."""
    from digitnet.many import Task

    return Task.of(kind, args.model, getattr(args, "top", 0))


def files_to_answer(args, task):
    """Every file named or found (as the work goes); with --resume, those its file already
    answers marked so — refused, before anything is printed or written, when they were
    answered by another command or model (``many.answered``)."""
    from digitnet.many import ResumeRefused, answered, not_answered, walk

    entries = walk(args.images)
    if not args.resume:
        return entries
    try:
        return not_answered(entries, answered(args.resume, task))
    except ResumeRefused as err:
        raise CommandError(err) from None


def answer_files(args, task, entries, show: Callable[[dict], str], also=None) -> int:
    """predict's and read's common part: the ``entries`` (``files_to_answer``) answered for
    ``task`` on --jobs processes or --dask; each answer printed (``show``, one or more lines)
    and given to ``also`` as it comes; with --resume, written to that JSON-lines file too,
    each line with its ``provenance`` (the command and the model). Exit status 1 if a file
    failed, 130 on Ctrl-C (what was answered is written)."""
    from digitnet.many import ResumeRefused, answer, open_answers, provenance

    failed = False
    with contextlib.ExitStack() as stack:
        log = None
        if args.resume:
            try:
                log = stack.enter_context(open_answers(args.resume))  # line by line
            except ResumeRefused as err:
                raise CommandError(err) from None
            stamp = provenance(task)
        try:
            for record in answer(entries, task, args.jobs, not args.unordered, args.dask):
                failed |= "error" in record
                print(show(record), flush=log is not None)
                if also:
                    also(record)
                if log:
                    log.write(json.dumps({**record, **stamp}) + "\n")
        except KeyboardInterrupt:
            print("interrupted (Ctrl-C): the answers so far are written", file=sys.stderr)
            return EXIT_INTERRUPTED
    return EXIT_ERROR if failed else 0


@command
def add_read(commands) -> None:
    read = commands.add_parser(
        "read",
        help="read the numbers written in an image: a line of output per line of writing",
    )
    add_image_arguments(read)
    read.set_defaults(func=cmd_read)


def cmd_read(args) -> int:
    task = task_of(args, "read")
    entries = files_to_answer(args, task)
    return answer_files(args, task, entries, json.dumps if args.json else format_reading)


def format_reading(record: dict) -> str:
    """A line of output for each line of writing: "FILE: 2021"."""
    name = shown(record["file"])
    if "error" in record:
        return f"{name}: error: {record['error']}"
    lines = (record["text"] or f"({record.get('reason', 'no digits')})").split("\n")
    return "\n".join(f"{name}: {line}" for line in lines)


@command
def add_calibrate(commands) -> None:
    calibrate = commands.add_parser(
        "calibrate",
        help="fit the temperature that makes a model's confidence match its accuracy",
        description="Fit temperature scaling on the last SAMPLES training digits, randomly"
        " distorted, and store it in the model file (or --out).",
    )
    calibrate.add_argument("model", metavar="MODEL", help="a model file, or cnn or tutorial")
    calibrate.add_argument("--samples", type=positive_int, default=10000)
    calibrate.add_argument("--seed", type=int, default=0)
    calibrate.add_argument("--out", metavar="PATH", type=path_text,
                           help="write here, not to MODEL (needed for bundled models)")  # fmt: skip
    calibrate.add_argument("--force", action="store_true", help="replace an existing --out file")
    add_data_option(calibrate)
    calibrate.set_defaults(func=cmd_calibrate)


def cmd_calibrate(args) -> int:
    from digitnet.data import load_mnist, to_float
    from digitnet.modelcard import record_scorecard
    from digitnet.nn.io import save_model
    from digitnet.reading.calibration import fit_calibration
    from digitnet.zoo import names_bundled_model, resolve_model

    if names_bundled_model(args.model) and not args.out:
        raise CommandError(
            f"{args.model} is a bundled model: give --out PATH for the calibrated copy"
        )
    out = args.out or args.model  # MODEL itself is what the command is asked to update
    replace = args.force or not args.out
    writable(out, replace=replace)
    model = resolve_model(args.model)
    (x_train, y_train), (x_test, y_test) = load_mnist(args.data)
    x = to_float(x_train[-args.samples :])
    record = fit_calibration(model, x, y_train[-args.samples :].astype(int), seed=args.seed)
    model.metadata["calibration"] = record
    record_scorecard(model, x_test, y_test)  # its confidences change with the temperature
    save_model(model, out, overwrite=replace)
    print(
        f"Temperature {record['temperature']:.3f}: expected calibration error"
        f" {record['ece_before']:.4f} -> {record['ece_after']:.4f} on {args.samples} distorted"
        f" training digits; saved to {out}"
    )
    return 0


@command
def add_summary(commands) -> None:
    summary = commands.add_parser("summary", help="a model's layers, parameters and provenance")
    add_model_argument(summary)
    summary.set_defaults(func=cmd_summary)


def cmd_summary(args) -> int:
    from digitnet.evaluation import format_metadata
    from digitnet.zoo import resolve_model

    model = resolve_model(args.model)
    model.summary()
    print(format_metadata(model))
    return 0


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


@command
def add_convert(commands) -> None:
    add_writing_command(
        commands,
        "convert",
        cmd_convert,
        "OUT.npz",
        "the digitnet model file to write",
        help="write a Keras model (.keras or .h5) as a digitnet model file",
        description="Read a Keras Sequential model (Keras 3 .keras or legacy .h5: Flatten, Dense,"
        " Conv2D, MaxPooling2D, BatchNormalization, Dropout, Activation, Reshape) and write it"
        " as a digitnet model file. Every command takes the Keras file as it is, too. Needs"
        " h5py (pip install 'digitnet[keras]').",
    )


def cmd_convert(args) -> int:
    from digitnet.nn.io import save_model
    from digitnet.zoo import resolve_model

    writable(args.out, replace=args.force)
    model = resolve_model(args.model)
    model.metadata["command"] = args.command_line
    save_model(model, args.out, overwrite=args.force)
    print(f"wrote {args.out}: {model.name}, {len(model.layers)} layers,"
          f" {model.count_params():,} parameters")  # fmt: skip
    return 0


@command
def add_export(commands) -> None:
    add_writing_command(
        commands,
        "export",
        cmd_export,
        "OUT.onnx",
        "the ONNX file to write",
        help="write a model as ONNX, to run with ONNX Runtime and elsewhere",
        description="Write MODEL as an ONNX file: input 'digits' (N, 28, 28) float32 in [0, 1],"
        " ink bright; output 'probabilities' (N, 10), the softmax included. Needs the onnx"
        " package (pip install 'digitnet[onnx]').",
    )


def cmd_export(args) -> int:
    from digitnet.export import INPUT, OUTPUT, export_onnx
    from digitnet.zoo import resolve_model

    writable(args.out, replace=args.force, model_file=False)
    model = resolve_model(args.model)
    export_onnx(model, args.out, replace=args.force)
    shape = ", ".join(map(str, model.layers[0].input_shape))
    print(f"wrote {args.out}: ONNX, input {INPUT!r} (N, {shape}) float32 in [0, 1],"
          f" output {OUTPUT!r} (N, {model.layers[-1].output_shape[-1]})")  # fmt: skip
    return 0


@command
def add_serve(commands) -> None:
    serve = commands.add_parser(
        "serve",
        help="the web page: draw a digit and watch the network recognise it",
        description="Serve the drawing page and the REST API (docs at /docs). Without --model"
        " it serves the bundled cnn and tutorial models.",
    )
    serve.add_argument("--model", action="append", metavar="MODEL",
                       help="a model file or bundled name; repeat to offer several")  # fmt: skip
    serve.add_argument("--host", default="127.0.0.1",
                       help="where to listen (default: 127.0.0.1, this machine only)")  # fmt: skip
    serve.add_argument("--port", type=port_number, default=8000, help="default: 8000")
    serve.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                       help="a name the server answers to besides its IP addresses and"
                       " localhost (a reverse proxy's, a machine's); repeat for several."
                       " Requests naming any other Host get 403")  # fmt: skip
    serve.add_argument("--open", action="store_true", help="open the page in a browser")
    serve.add_argument("--workers", type=processes, default=default_workers(),
                       help="processes that work out the answers, taking requests from one queue;"
                       " 1: the server itself (default: one per core, at most"
                       f" {MAX_DEFAULT_WORKERS}: %(default)s here)")  # fmt: skip
    serve.add_argument("--max-upload-mb", type=upload_megabytes, default=10,
                       help="largest accepted upload in MB, at most 50 (default: 10)")  # fmt: skip
    serve.add_argument("--models-dir", type=lambda text: Path(path_text(text)), metavar="DIR",
                       help="keep the models trained from the page here, and serve those already"
                       " here (default: kept until the server stops)")  # fmt: skip
    serve.add_argument("--max-trainings", type=trainings_at_once, default=1, metavar="N",
                       help="trainings at once; a few more wait in line (default: 1)")  # fmt: skip
    serve.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    import threading
    import webbrowser

    import uvicorn
    from uvicorn._compat import asyncio_run

    from digitnet.web.app import create_app
    from digitnet.web.catalog import load_catalog
    from digitnet.web.limits import Hosts
    from digitnet.web.protocol import GuardedHttp, connection_cap

    catalog = load_catalog(args.model)  # here too, so a bad model fails before the server starts
    listening = listen(args.host, args.port)  # before the URL is announced: it may be taken
    GuardedHttp.max_connections = connection_cap()
    if args.models_dir is not None:
        args.models_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(catalog, max_upload_bytes=int(args.max_upload_mb * 2**20),
                     workers=args.workers, models_dir=args.models_dir,
                     max_trainings=args.max_trainings,
                     allowed_hosts=Hosts(args.port, tuple(args.allow_host)))  # fmt: skip
    config = uvicorn.Config(app, http=GuardedHttp, log_level="warning", access_log=False,
                            timeout_keep_alive=5,
                            timeout_graceful_shutdown=GRACE_SECONDS)  # fmt: skip
    server = uvicorn.Server(config)

    async def serve() -> None:
        try:
            await app.state.start()  # the workers loaded: the server can answer
        except RuntimeError as err:
            raise CommandError(f"{err}; the server did not start") from None
        listening.listen(config.backlog)  # connections wait here until the loop serves them
        shown = f"[{args.host}]" if ":" in args.host else args.host
        url = f"http://{shown}:{args.port}/"
        print(f"digitnet serve: {', '.join(catalog.models)} at {url} (Ctrl-C to stop)",
              flush=True)  # fmt: skip
        if args.open:
            threading.Timer(1.0, webbrowser.open, [url]).start()
        await server.serve(sockets=[listening])

    asyncio_run(serve(), loop_factory=config.get_loop_factory())
    if not server.started:
        raise CommandError("the server did not start (see the lines above)")
    return 0


GRACE_SECONDS = 3  # requests in progress when the server is told to stop; then the workers' 2 s


def listen(host: str, port: int):
    """A socket bound to host:port, as uvicorn binds (SO_REUSEADDR: a server stopped and
    started again need not wait out TIME_WAIT), or an OSError saying where."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP said aloud: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on sockets
    # that say so, and with it on, one answer in a hundred waited ~40 ms for a delayed ACK.
    listening = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    if sys.platform != "win32":
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except OSError as err:
        listening.close()
        raise OSError(err.errno, f"cannot listen on {host}:{port}: {err.strerror}") from None
    return listening


@command
def add_report(commands) -> None:
    report = commands.add_parser(
        "report",
        help="the model page as PNG pictures and an HTML page (needs matplotlib)",
    )
    report.add_argument("model", metavar="MODEL", help="a model file, or cnn or tutorial")
    report.add_argument("--out", metavar="DIR", type=path_text,
                        help="where to write (default: ./digitnet-report-MODEL)")  # fmt: skip
    report.add_argument("--force", action="store_true",
                        help="replace the files of a report already in DIR")  # fmt: skip
    add_data_option(report)
    report.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    from digitnet.report import write_report
    from digitnet.zoo import resolve_model

    model = resolve_model(args.model)
    out = args.out or f"digitnet-report-{Path(args.model).stem}"
    index = write_report(model, out, data=args.data, replace=args.force)
    print(f"wrote {index} and its pictures")
    return 0


# ---------------------------------------------------------------------------------------- main


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

    for add in COMMANDS:
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
