"""The commands about a model itself: ``evaluate`` (its scores on the test set), ``summary``,
``convert`` (a Keras file to digitnet's), ``export`` (ONNX) and ``report`` (its page as files).
"""

from __future__ import annotations

import json
from pathlib import Path

from digitnet.cli.base import (
    CommandError,
    add_data_option,
    add_model_argument,
    add_writing_command,
    command,
    path_text,
    writable,
)


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

    out = Path(args.out)
    if out.suffix.lower() != ".onnx":  # as train refuses m.h5: the name says what the file is
        raise CommandError(f"{out}: an ONNX file is named .onnx — name it {out.stem}.onnx")
    writable(args.out, replace=args.force, model_file=False)
    model = resolve_model(args.model)
    export_onnx(model, args.out, replace=args.force)
    shape = ", ".join(map(str, model.layers[0].input_shape))
    print(f"wrote {args.out}: ONNX, input {INPUT!r} (N, {shape}) float32 in [0, 1],"
          f" output {OUTPUT!r} (N, {model.layers[-1].output_shape[-1]})")  # fmt: skip
    return 0


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
