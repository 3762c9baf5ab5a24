"""Shared by the benchmarks that compare Dagster instances: `mesh run` of the whole mesh with
`DAGSTER_HOME` pointing at each of several prepared instances, alternating, on one warehouse file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(cmd: list[str], env: dict[str, str]) -> float:
    """Seconds `cmd` takes; its output if it fails."""
    started = time.perf_counter()
    result = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return time.perf_counter() - started


def mesh_runs_by_home(work: Path, homes: dict[str, Path], scale: int, repeats: int) -> dict[str, list[float]]:
    """`mesh run` at `scale` with each instance home (each holding its `dagster.yaml`), after one warm-up
    run each (dbt parse, instance creation), `repeats` times, alternating: seconds per home."""
    env = {
        **os.environ,
        "MESH_DATA_DIR": str(work / "data"),
        "MESH_DUCKDB_PATH": str(work / "mesh.duckdb"),
        "MESH_SOURCES_DIR": str(work / "sources"),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    env.pop("MESH_TARGET", None)
    mesh = [sys.executable, "-m", "mesh_assets.cli", "run"]
    timed([sys.executable, "-m", "mesh_assets.cli", "generate", "--scale", str(scale)], env)
    for home in homes.values():
        timed(mesh, {**env, "DAGSTER_HOME": str(home)})
    runs: dict[str, list[float]] = {name: [] for name in homes}
    for _ in range(repeats):
        for name, home in homes.items():
            runs[name].append(timed(mesh, {**env, "DAGSTER_HOME": str(home)}))
    return runs
