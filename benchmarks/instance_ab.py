"""Shared by the benchmarks that compare Dagster instances: `mesh run` of the whole mesh with
`DAGSTER_HOME` pointing at each of several prepared instances, alternating, on one warehouse file; and
by those that read back the Dagster runs a measured `mesh run` made (`runs_since`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def runs_since(
    home: Path, since: float, digits: int = 2
) -> Iterator[tuple[Any, Any, float, dict[str, float]]]:
    """Each Dagster run of the instance at `home` started after `since`, oldest first: the open instance,
    the run, its wall seconds and each step's (rounded to `digits`)."""
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    # An explicit instance reference: the benchmark never writes DAGSTER_HOME into its own environment.
    with DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
        for run in reversed(instance.get_runs(limit=50)):
            stats = instance.get_run_stats(run.run_id)
            if not stats.start_time or stats.start_time < since:
                continue
            steps = {
                s.step_key: round((s.end_time or 0) - (s.start_time or 0), digits)
                for s in instance.get_run_step_stats(run.run_id)
            }
            yield instance, run, round((stats.end_time or 0) - stats.start_time, 2), steps
