"""Execute every notebook in ``notebooks/`` (jupytext percent scripts) in fast mode.

Each ``notebooks/NN_*.py`` is converted in memory with jupytext and run cell by cell with nbclient
on a kernel that is this very interpreter (a kernelspec written to a temporary directory, so the
test needs neither ``ipykernel install`` nor a user-level ``python3`` kernel that might point to
another environment). The notebooks assert their identities numerically, so a wrong number fails
here exactly like an exception does. ``REFOPT_NOTEBOOK_FAST=1`` shrinks step counts and sends the
figures to a temporary directory; the test also checks that ``figures/`` is left untouched.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext", reason="notebook tests need jupytext (extra 'test')")
nbclient = pytest.importorskip("nbclient", reason="notebook tests need nbclient (extra 'test')")
pytest.importorskip("ipykernel", reason="notebook tests need ipykernel (extra 'test')")
pytest.importorskip("matplotlib", reason="the notebooks plot with matplotlib")

from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402  (after the skips)
from jupyter_client.manager import KernelManager  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))
KERNEL_NAME = "refopt-notebook-test"
CELL_TIMEOUT_S = 600  # a generous cap per cell; the whole fast set takes well under a minute


@pytest.fixture(scope="module")
def kernel_spec_manager(tmp_path_factory) -> KernelSpecManager:
    """A kernelspec that launches ``sys.executable`` with the fast-mode environment."""
    kernels = tmp_path_factory.mktemp("kernels")
    spec_dir = kernels / KERNEL_NAME
    spec_dir.mkdir()
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "refopt notebook test",
        "language": "python",
        "env": {"REFOPT_NOTEBOOK_FAST": "1", "MPLBACKEND": "Agg"},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return KernelSpecManager(kernel_dirs=[str(kernels)])


def _figure_snapshot() -> dict[str, float]:
    figures = REPO / "figures"
    return {p.name: p.stat().st_mtime for p in figures.glob("nb_*")} if figures.is_dir() else {}


def test_notebooks_exist():
    names = {p.name for p in NOTEBOOKS}
    for expected in ("01_adamx.py", "02_adams.py", "03_alphaadam.py", "04_verify_a_port.py",
                     "05_convergence.py"):
        assert expected in names, f"notebooks/{expected} is missing"


def test_no_notebook_outputs_committed():
    """Only the .py sources are the record; any .ipynb lying here must carry no outputs."""
    for path in NOTEBOOK_DIR.glob("*.ipynb"):
        nb = json.loads(path.read_text())
        for cell in nb.get("cells", []):
            assert not cell.get("outputs"), f"{path.name} has stored outputs: strip them"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_in_fast_mode(path, kernel_spec_manager):
    nb = jupytext.read(path)
    assert any(c.cell_type == "code" for c in nb.cells), f"{path.name} has no code cell"
    before = _figure_snapshot()
    km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=kernel_spec_manager)
    client = nbclient.NotebookClient(nb, km=km, timeout=CELL_TIMEOUT_S,
                                     resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    client.execute()  # raises CellExecutionError (with the cell's traceback) on any error
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, errors
    assert _figure_snapshot() == before, "fast mode must not write to figures/"


def test_notebook_helpers(tmp_path, monkeypatch):
    from refopt.notebook import fast_mode, figure_dir, run_rule_claims

    for value, expected in (("1", True), ("0", False), ("no", False), ("", False), ("yes", True)):
        monkeypatch.setenv("REFOPT_NOTEBOOK_FAST", value)
        assert fast_mode() is expected
    assert figure_dir(True).is_dir() and "refopt_nb_" in figure_dir(True).name
    results = run_rule_claims("adams", ("adams.A3",), fast=True)
    assert list(results) == ["adams.A3"] and results["adams.A3"].as_expected
