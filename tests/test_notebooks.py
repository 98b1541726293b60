"""Every notebook under notebooks/ runs top to bottom (nbclient), stored without outputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "no notebooks found under notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name} has outputs"


# what each notebook must print somewhere; notebooks that need Phoenix get the session's
EXPECTED = {"review_in_phoenix.ipynb": "Reviewer guidance"}
NEEDS_PHOENIX = {"review_in_phoenix.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(
    path: Path, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if path.name in NEEDS_PHOENIX:
        request.applymarker(pytest.mark.phoenix)
        server = request.getfixturevalue("phoenix_server")
        monkeypatch.setenv("PHOENIX_BASE_URL", server.url)  # the kernel inherits it
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    texts = [
        out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
    ]
    expected = EXPECTED.get(path.name, "resumed")
    assert any(expected in t for t in texts), f"{path.name} never printed {expected!r}"


def test_jupyter_nbconvert_reruns_a_notebook(tmp_path: Path) -> None:
    """The `notebook` extra installs what `jupyter nbconvert --execute` needs."""
    jupyter = Path(sys.executable).parent / "jupyter"
    if not jupyter.exists():
        pytest.skip("jupyter is not installed: pip install 'hitl-langgraph[notebook]'")
    src = NOTEBOOKS[0].parent / "resume_interrupted_graph.ipynb"
    proc = subprocess.run(
        [
            str(jupyter),
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            str(src),
            "--output-dir",
            str(tmp_path),
            "--ExecutePreprocessor.timeout=120",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    executed = nbformat.read(tmp_path / src.name, as_version=4)
    assert any(cell.get("outputs") for cell in executed.cells if cell.cell_type == "code")
