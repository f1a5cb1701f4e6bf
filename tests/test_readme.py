"""The README's promises: its Keras-to-digitnet translation runs, and its commands exist."""

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def digitnet_column() -> str:
    """The right-hand column of the translation table, as one program."""
    lines = []
    for row in README.read_text().splitlines():
        cells = row.split("|")
        if len(cells) == 4 and cells[2].strip().startswith("`"):
            code = cells[2].strip()
            lines.append(re.sub(r"`([^`]*)`.*", r"\1", code, count=1) if code else "")
    return "\n".join(lines)


@pytest.mark.slow
def test_translated_tutorial_program_runs(tmp_path, monkeypatch):
    program = digitnet_column()
    assert "model.fit(x_train, y_train, epochs=5" in program
    program = program.replace("epochs=5", "epochs=1")  # one epoch is enough to check it runs
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(program, "README.md", "exec"), namespace)
    assert namespace["test_acc"] > 0.85
    assert namespace["probabilities"].shape == (1, 10)
    np.testing.assert_allclose(namespace["probabilities"].sum(), 1.0, rtol=1e-5)
    assert (tmp_path / "model.npz").exists()


def test_readme_opens_with_setup_run_and_test_commands():
    first_block = README.read_text().split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ['pip install -e ".[test]"', "digitnet serve", "python -m pytest"]
    assert "python -m pytest" in (README.parent / ".ci" / "run").read_text()


def test_the_container_serves_as_an_unprivileged_user_on_every_interface():
    """The Dockerfile (built in CI where a Docker daemon answers): python-slim, its own user,
    the package installed from what it copies, `digitnet serve --host 0.0.0.0`."""
    root = README.parent
    lines = [line.split() for line in (root / "Dockerfile").read_text().splitlines()
             if line.strip() and not line.startswith("#")]  # fmt: skip
    steps = {words[0]: words[1:] for words in lines}
    assert steps["FROM"][0].startswith("python:") and steps["FROM"][0].endswith("-slim")
    runs = [word for words in lines if words[0] == "RUN" for word in words]
    assert steps["USER"] != ["root"] and "useradd" in runs
    copied = [words[1] for words in lines if words[0] == "COPY"]
    assert all((root / path).exists() for path in copied) and "src" in copied
    command = " ".join(steps["CMD"])
    assert '"serve"' in command and '"--host", "0.0.0.0"' in command
