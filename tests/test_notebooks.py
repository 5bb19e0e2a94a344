"""Every notebook in notebooks/ (jupytext py:percent) runs top to bottom with small sizes.

New notebooks are picked up automatically. Each is converted with jupytext and executed by
nbclient in a ``python3`` kernel from this environment (ipykernel), with
``BAYESCRAMP_NOTEBOOK_SMALL=1`` so sizes stay small.
"""

import os
from pathlib import Path

import pytest

from .conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))
TIMEOUT_SECONDS = 600


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, monkeypatch):
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("BAYESCRAMP_NOTEBOOK_SMALL", "1")
    # jupyter_core warns about its platformdirs migration unless this is set
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    notebook = jupytext.read(path)
    client = nbclient.NotebookClient(notebook, timeout=TIMEOUT_SECONDS, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    errors = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
              if output.get("output_type") == "error"]
    assert not errors
    images = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
              if "image/png" in output.get("data", {})]
    assert images or "Image(" not in path.read_text(), f"{path.name}: expected its plots in the outputs"

