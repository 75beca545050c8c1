"""DeepSpeech.ipynb runs top to bottom (nbclient, a real Jupyter kernel).

The notebook trains LDC93S1, tests, exports and transcribes with the client, all by
Python calls; here it runs in a temporary copy of its work directory and must end
with the exact LDC93S1 transcript from the exported model (about a minute).
"""

from __future__ import annotations

import os

import nbformat
from nbclient import NotebookClient

from helpers import LDC93S1_TEXT


def test_notebook_executes(repo_root, tmp_path):
    notebook = nbformat.read(os.path.join(repo_root, "DeepSpeech.ipynb"), as_version=4)
    parameters = notebook.cells[1]
    assert 'WORK_DIR = "runs/notebook"' in parameters.source
    parameters.source = parameters.source.replace(
        '"runs/notebook"', repr(str(tmp_path / "work"))
    )
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3",
        resources={"metadata": {"path": repo_root}},
    )  # fmt: skip
    client.execute()
    outputs = {
        i: "".join(o.get("text", "") for o in cell.get("outputs", []))
        for i, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
    }
    text = "\n".join(outputs.values())
    assert f"2.92 s: '{LDC93S1_TEXT}'" in text
    assert f"streamed: {LDC93S1_TEXT}" in text
    assert "WER: 0.000000" in text
    assert os.path.isfile(tmp_path / "work" / "export" / "output_graph.tflite")
