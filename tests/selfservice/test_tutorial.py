"""docs/tutorial.md, followed step by step: each ```bash tutorial block runs, in order, in a copy of the repo.

The commands are read out of the document itself, so the tutorial and this test cannot drift apart. Each
block runs under `bash -euo pipefail` with the copy as working directory, `mesh` and `pytest` from this
virtualenv on the PATH, and a private DuckDB file, Dagster instance and source extracts (`isolated`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest
from conftest import REPO, copy_mesh, mesh_command_dir

TUTORIAL = REPO / "docs" / "tutorial.md"
_BLOCK = re.compile(r"^```bash tutorial\n(.*?)^```", re.MULTILINE | re.DOTALL)


def tutorial_steps(text: str) -> list[str]:
    """The shell script of each ```bash tutorial block, in document order."""
    return [match.group(1) for match in _BLOCK.finditer(text)]


def test_the_tutorial_has_steps_that_use_the_mesh_command() -> None:
    steps = tutorial_steps(TUTORIAL.read_text())
    commands = [line.split()[1] for step in steps for line in step.splitlines() if line.startswith("mesh ")]
    assert len(steps) >= 8
    assert {"new", "validate", "run"} <= set(commands)


@pytest.mark.slow
def test_every_step_of_the_tutorial_runs(isolated: Path, tmp_path: Path) -> None:
    root = copy_mesh(tmp_path / "repo")
    shutil.copy(REPO / "workspace.yaml", root / "workspace.yaml")
    env = {
        **os.environ,
        "MESH_ROOT": str(root),
        # `load_location` imports `domains.<domain>.definitions`: the copy's domains, not the repo's.
        "PYTHONPATH": str(root),
        "PATH": f"{mesh_command_dir()}{os.pathsep}{os.environ['PATH']}",
        "NO_COLOR": "1",
    }
    steps = tutorial_steps(TUTORIAL.read_text())
    for number, script in enumerate(steps, start=1):
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        output = f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        assert result.returncode == 0, f"tutorial step {number} failed:\n{script}\n{output}"

    product = root / "domains" / "lab_ops" / "products" / "instrument_failures"
    assert (product / "dataproduct.yaml").exists()
    assert "domains.lab_ops.definitions" in (root / "workspace.yaml").read_text()
    with duckdb.connect(str(isolated / "mesh.duckdb"), read_only=True) as con:
        rows, passed, without_code = con.execute(
            "SELECT COUNT(*), COUNT(*) FILTER (status = 'passed'), COUNT(*) FILTER (error_code IS NULL) "
            "FROM lab_ops.instrument_failures_v1"
        ).fetchone()
    assert rows > 0
    assert passed == 0 and without_code == 0
