"""``digitnet train`` and ``digitnet calibrate``: a network trained on MNIST and saved, and a
model's confidence fitted to its accuracy."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from digitnet.cli.base import (
    ACTIVATIONS,
    EXIT_INTERRUPTED,
    LOSSES,
    OPTIMIZERS,
    PRESETS,
    CommandError,
    add_data_option,
    command,
    layer_sizes,
    loss_name,
    momentum,
    name_from,
    non_negative_int,
    path_text,
    positive_float,
    positive_int,
    writable,
)

DEFAULT_MODEL_NAME = "digitnet-model"


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
    from digitnet.training import TrainConfig, divergence_advice, train

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
        f"Training {config.describe(preset)} on {digits}{describe_source(config.data)}:"
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
    advice = divergence_advice(model, config)
    if advice:
        print(advice, file=sys.stderr)
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
