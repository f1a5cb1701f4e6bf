"""The tutorial as a notebook (examples/tutorial.ipynb) runs top to bottom, so it cannot rot."""

import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
NOTEBOOK = Path(__file__).parents[1] / "examples" / "tutorial.ipynb"

pytestmark = pytest.mark.slow  # the notebook run top to bottom in a kernel: seconds


def test_the_tutorial_notebook_runs_and_its_networks_learn(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})  # fmt: skip
    client.execute()  # raises CellExecutionError, with the cell and traceback, if a cell fails
    printed = "".join(output.get("text", "") for cell in notebook.cells
                      if cell.cell_type == "code" for output in cell.outputs)  # fmt: skip
    neuron = re.search(r"a = (-?[\d.]+);  by the layer: a = (-?[\d.]+)", printed)
    by_hand, by_layer = neuron.groups()
    assert by_hand == by_layer  # the neuron computed by hand is the layer's
    accuracies = re.search(r"tutorial network ([\d.]+); CNN after .* digits ([\d.]+)", printed)
    tutorial, cnn = accuracies.groups()
    assert float(tutorial) > 0.9 and float(cnn) > float(tutorial)  # the point the text makes
    images = sum("image/png" in output.get("data", {}) for cell in notebook.cells
                 if cell.cell_type == "code" for output in cell.outputs)  # fmt: skip
    assert images == 5
