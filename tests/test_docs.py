"""docs/how-it-works.md runs: its code blocks, in order, in one namespace, against the engine."""

import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "how-it-works.md"


def code_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_the_walk_through_runs_against_the_engine(capsys):
    blocks = code_blocks(DOC.read_text())
    assert len(blocks) >= 10
    namespace: dict = {}
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"how-it-works.md, block {number}", "exec"), namespace)
    # the digit went through: a 7, read as a 7, and one SGD step lowered its loss
    assert namespace["label"] == 7 and int(namespace["p"].argmax()) == 7
    assert namespace["after"] < namespace["loss"]
    assert "predicted 7" in capsys.readouterr().out
