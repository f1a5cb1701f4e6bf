"""The command line, driven through ``main(argv)``: the tutorial run, evaluation, summaries,
and one clear line for every kind of bad input."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from digitnet.blas import available_cores
from digitnet.cli import build_parser, main
from digitnet.nn import load_model
from digitnet.nn.fusion import Plan

CORES = available_cores(at_most=1024)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "one-epoch.npz"
    assert main(["train", "--epochs", "1", "--out", str(path), "--quiet"]) == 0
    return path


@pytest.mark.slow
def test_train_saves_a_model_and_reports_per_epoch(tmp_path, capsys):
    out = tmp_path / "m.npz"
    assert main(["train", "--epochs", "2", "--hidden", "8", "--seed", "3", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Training tutorial changed (784-8-10 relu: SGD lr 0.01)")
    assert lines[0].endswith("on bundled MNIST: 2 epochs, batch size 32, seed 3")
    epochs = [line for line in lines if line.startswith("Epoch ")]
    assert len(epochs) == 2
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "/step"):
        assert key in epochs[1]
    assert lines[-1] == f"Saved the model to {out}"
    from digitnet.nn import load_model

    model = load_model(out)
    assert model.metadata["command"] == f"digitnet train --epochs 2 --hidden 8 --seed 3 --out {out}"
    assert model.metadata["config"]["seed"] == 3 and model.count_params() == 784 * 8 + 8 + 90
    card = model.metadata["scorecard"]  # the model page shows it without scoring anew
    assert card["accuracy"] == model.metadata["test"]["accuracy"] and card["samples"] == 10000


@pytest.mark.parametrize(
    "settings, said",
    [
        ({}, "tutorial (the tutorial's 784-16-16-10 network: SGD lr 0.01, batch 32)"),
        (
            {"hidden": (64, 32), "activation": "sigmoid", "optimizer": "adam"},
            "tutorial changed (784-64-32-10 sigmoid: Adam lr 0.001)",
        ),
        (
            {"lr": 0.1, "momentum": 0.9},
            "tutorial changed (784-16-16-10 relu: SGD lr 0.1 momentum 0.9)",
        ),
        (
            {"model": "mlp", "loss": "mse"},
            "mlp changed (784-512-256-10 relu: Adam with cosine decay, mse loss)",
        ),
    ],
)
def test_train_says_what_it_trains_not_only_the_preset(settings, said):
    """train's first line names the network and optimiser trained: "--hidden 64,32 --activation
    sigmoid --optimizer adam" said "Training tutorial (... 784-16-16-10 ... SGD lr 0.01 ...)"."""
    from digitnet.training import TrainConfig

    config = TrainConfig(**settings)
    assert config.describe(config.validate()) == said


def test_train_on_the_first_digits_only(tmp_path, capsys):
    out = tmp_path / "m.npz"
    assert main(["train", "--samples", "1000", "--epochs", "1", "--out", str(out)]) == 0
    assert "on the first 1,000 digits of bundled MNIST" in capsys.readouterr().out
    from digitnet.nn import load_model

    model = load_model(out)
    assert model.metadata["data"]["train_samples"] == 1000
    assert model.metadata["config"]["samples"] == 1000


def test_train_never_overwrites_the_default_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "digitnet-model.npz").write_text("precious")
    assert main(["train", "--epochs", "1", "--hidden", "4", "--quiet"]) == 0
    assert (tmp_path / "digitnet-model.npz").read_text() == "precious"
    assert (tmp_path / "digitnet-model-2.npz").exists()


@pytest.mark.slow
def test_evaluate_json_and_text(model_file, capsys):
    assert main(["evaluate", str(model_file), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert 0.85 < report["accuracy"] < 1 and report["loss"] > 0
    cm = np.array(report["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == 10000
    assert report["accuracy"] == pytest.approx(np.trace(cm) / 10000)
    assert [row["support"] for row in report["per_class"]] == cm.sum(axis=1).tolist()
    assert main(["evaluate", str(model_file)]) == 0
    text = capsys.readouterr().out
    assert f"Accuracy: {report['accuracy']:.4f}" in text and "Confusion matrix" in text


def test_summary(model_file, capsys):
    assert main(["summary", str(model_file)]) == 0
    text = capsys.readouterr().out
    assert "Total params: 13,002" in text and "Trained with: digitnet train --epochs 1" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--hidden", "0"], "argument --hidden: layer sizes must be at least 1"),
        (["train", "--hidden", "16,x"], "comma-separated layer sizes"),
        (["train", "--lr", "-1"], "argument --lr: must be a number > 0"),
        (["train", "--epochs", "0"], "argument --epochs: must be at least 1"),
        (["train", "--samples", "0"], "argument --samples: must be at least 1"),
        (["train", "--activation", "swish"], "valid activations: relu, sigmoid, tanh, linear"),
        (["train", "--optimizer", "rmsprop"], "valid optimizers: sgd, adam"),
        (["train", "--loss", "hinge"], "valid losses: sparse_categorical_crossentropy"),
        (["train", "--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["dance"], "invalid choice: 'dance'"),
        (
            ["train", "--model", "resnet"],
            "unknown model preset 'resnet'; valid model presets: tutorial, mlp, cnn",
        ),
        (["predict", "x.png", "--jobs", "10000"], f"--jobs: must be 1 to {4 * CORES} here"),
        (["serve", "--workers", "10000"], f"--workers: must be 1 to {4 * CORES} here"),
        (["serve", "--max-trainings", "50"], "--max-trainings: must be 1 to 4; got 50"),
    ],
)
def test_bad_arguments_get_one_line_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "--help" in err


def test_errors_from_the_library_are_one_line(tmp_path, model_file, capsys):
    truncated = tmp_path / "cut.npz"
    truncated.write_bytes(model_file.read_bytes()[:500])
    cases = [
        (["evaluate", str(truncated)], "truncated or corrupt"),
        (["summary", str(tmp_path / "none.npz")], "no such model file"),
        (["evaluate", "cnnn"], "cnnn: no such model file, nor a bundled model (cnn, tutorial)"),
        (["export", "tutorial", str(tmp_path / "tut.txt")], "an ONNX file is named .onnx"),
        (["predict", "--model", "tutorail", "x.png"], "nor a bundled model (cnn, tutorial)"),
        (["train", "--data", str(tmp_path / "nowhere")], "no such file or folder"),
        (["train", "--model", "cnn", "--hidden", "8"], "apply to MLP presets, not 'cnn'"),
    ]
    for argv, message in cases:
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_divergence_is_reported_with_advice(tmp_path, capsys):
    out = tmp_path / "never.npz"
    code = main(["train", "--lr", "1e6", "--epochs", "1", "--quiet", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "Try a lower learning rate (now 1e+06; try 100000)" in err
    assert not out.exists()


def test_a_loss_that_grew_without_nan_is_reported_with_advice_too(tmp_path, capsys):
    """--lr 50 ended at a loss of 2e7 (no NaN), saved, and not a word."""
    out = tmp_path / "wild.npz"
    argv = ["train", "--lr", "50", "--epochs", "1", "--samples", "5000", "--quiet"]
    assert main([*argv, "--out", str(out)]) == 0 and out.exists()  # kept: it is what was asked
    err = capsys.readouterr().err
    assert "far above guessing's 2.30: training diverged" in err
    assert "Try a lower learning rate (now 50; try 5)" in err
    assert main(["train", "--epochs", "1", "--samples", "5000", "--quiet", "--out",
                 str(tmp_path / "fine.npz")]) == 0  # fmt: skip
    assert capsys.readouterr().err == ""


def test_ctrl_c_saves_the_weights_so_far(tmp_path, monkeypatch, capsys):
    original = Plan.backward
    calls = []

    def interrupt_after_100_steps(self, dout):
        calls.append(1)
        if len(calls) == 600:
            raise KeyboardInterrupt
        return original(self, dout)

    monkeypatch.setattr(Plan, "backward", interrupt_after_100_steps)
    out = tmp_path / "partial.npz"
    assert main(["train", "--out", str(out), "--quiet"]) == 130
    assert "interrupted" in capsys.readouterr().out
    from digitnet.nn import load_model

    model = load_model(out)
    assert model.metadata["interrupted"] and model.metadata["epochs_completed"] == 0
    assert model.metadata["test"]["accuracy"] > 0.3  # 599 steps of SGD already learn something


def test_every_command_has_help(capsys):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name in commands:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert f"usage: digitnet {name}" in capsys.readouterr().out


def test_help_does_not_import_numpy():
    code = (
        "import sys; from digitnet.cli import main\n"
        "try: main(['--help'])\n"
        "except SystemExit: pass\n"
        "print('numpy' in sys.modules, file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "usage: digitnet" in result.stdout and result.stderr.strip() == "False"


def test_python_dash_m_runs_the_cli():
    result = subprocess.run(
        [sys.executable, "-m", "digitnet", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.startswith("digitnet ")


@pytest.mark.parametrize(
    "target, message",
    [
        ("notes.txt", "notes.txt exists; digitnet replaces a file only when told to (--force)"),
        ("notes.txt/m.npz", "notes.txt is not a folder, so notes.txt/m.npz cannot be written"),
        ("/dev/null", "/dev/null is a device; name a file to write"),
        (".", ". is a folder; name a file to write"),
        ("nowhere.npz", "nowhere.npz is a symbolic link to gone.npz, which does not exist;"
         " name the file itself"),  # it was refused after the training: the model lost
        ("link.npz", "link.npz is a symbolic link to notes.txt; name the file itself"),
    ],
)  # fmt: skip
def test_train_checks_out_before_training_and_never_replaces_unasked(
    tmp_path, monkeypatch, capsys, target, message
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("precious")
    (tmp_path / "nowhere.npz").symlink_to("gone.npz")
    (tmp_path / "link.npz").symlink_to("notes.txt")
    force = ["--force"] if target in ("/dev/null", "link.npz") else []  # not even when told to
    assert main(["train", "--epochs", "1", "--out", target, *force]) == 1
    captured = capsys.readouterr()
    assert captured.err == f"digitnet train: error: {message}\n"
    assert "Training" not in captured.out  # found out before, not after, the training
    assert (tmp_path / "notes.txt").read_text() == "precious"
    assert Path("/dev/null").is_char_device()


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--out", ""],
        ["calibrate", "tutorial", "--out", ""],
        ["convert", "tutorial", ""],
        ["export", "tutorial", ""],
        ["report", "tutorial", "--out", ""],
        ["predict", "x.png", "--csv", ""],
        ["predict", "x.png", "--resume", ""],
        ["serve", "--models-dir", ""],
    ],
)
def test_an_empty_output_path_is_refused_not_taken_for_the_default(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "an empty path; name a file or folder" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["convert", "export", "calibrate"])
def test_a_dangling_link_at_the_output_is_refused_before_the_work(tmp_path, capsys, command):
    out = tmp_path / ("out.onnx" if command == "export" else "out.npz")
    out.symlink_to(tmp_path / "gone.npz")
    argv = [command, "tutorial", *(["--out"] if command == "calibrate" else []), str(out)]
    assert main([*argv, "--force"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "is a symbolic link to" in captured.err
    assert out.is_symlink() and not (tmp_path / "gone.npz").exists()


@pytest.mark.slow
def test_train_force_replaces_a_file_and_makes_missing_folders(tmp_path, capsys):
    old = tmp_path / "old.npz"
    old.write_text("an old model")
    assert main(["train", "--epochs", "1", "--hidden", "4", "--out", str(old), "--force"]) == 0
    assert load_model(old).count_params() == 784 * 4 + 4 + 50
    deep = tmp_path / "runs" / "today" / "m.npz"
    assert main(["train", "--epochs", "1", "--hidden", "4", "--quiet", "--out", str(deep)]) == 0
    assert deep.is_file() and [p.name for p in deep.parent.iterdir()] == ["m.npz"]


@pytest.mark.slow
def test_output_piped_into_head_costs_nothing(tmp_path):
    """`| head -1` closes the pipe: the model is still saved, the command still succeeds."""
    out = tmp_path / "piped.npz"
    command = [sys.executable, "-m", "digitnet", "train", "--epochs", "1", "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = process.stdout.readline()
    process.stdout.close()  # as head does after one line
    assert process.wait(60) == 0, process.stderr.read().decode()
    assert first.startswith(b"Training tutorial") and out.is_file()
    assert process.stderr.read() == b""  # no BrokenPipeError, no "Exception ignored"
    process.stderr.close()


def test_calibrate_takes_a_bundled_name_but_never_writes_into_the_package(tmp_path, capsys):
    assert main(["calibrate", "tutorial", "--samples", "50"]) == 1
    assert "tutorial is a bundled model: give --out PATH" in capsys.readouterr().err
    taken = tmp_path / "taken.npz"
    taken.write_text("precious")
    assert main(["calibrate", "tutorial", "--samples", "50", "--out", str(taken)]) == 1
    assert taken.read_text() == "precious"
    out = tmp_path / "calibrated.npz"
    assert main(["calibrate", "tutorial", "--samples", "50", "--out", str(out)]) == 0
    assert load_model(out).metadata["calibration"]["fitted_on"].startswith("50 MNIST")


@pytest.mark.slow
def test_evaluate_says_which_model_it_scored(model_file, capsys):
    assert main(["evaluate", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "cnn"
    assert main(["evaluate", str(model_file)]) == 0
    assert capsys.readouterr().out.startswith(f"Model: {model_file}\n")


def test_an_unknown_option_is_reported_by_its_command(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["predict", "--bogus", "x.png"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.startswith("digitnet predict: error: unrecognized arguments")
