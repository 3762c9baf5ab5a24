"""What the Dagster instance's SQLite storage costs `mesh run`: the instance on disk vs on tmpfs.

Every run, step, materialization and check result is an event in the instance's SQLite event log, and
each event opens a connection, commits (an fsync) and closes it. This runs the whole mesh at `--scale`
with `DAGSTER_HOME` on disk (as `make run` does) and on `/dev/shm`, alternating, on the same warehouse
file, after one warm-up run each (dbt parse, instance creation). The difference is what a faster event
store would save; nothing in the mesh changes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
from pathlib import Path

from instance_ab import ROOT, mesh_runs_by_home

TMPFS = Path("/dev/shm")


def main(scale: int, repeats: int) -> dict:
    """Time `mesh run` with the instance on disk and on tmpfs, alternating."""
    with (
        tempfile.TemporaryDirectory(prefix="mesh-bench-instance-") as tmp,
        tempfile.TemporaryDirectory(prefix="mesh-bench-instance-", dir=TMPFS) as shm,
    ):
        work = Path(tmp)
        homes = {"disk": work / "dagster_home", "tmpfs": Path(shm) / "dagster_home"}
        for home in homes.values():
            home.mkdir()
            shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
        runs = mesh_runs_by_home(work, homes, scale, repeats)
    disk, tmpfs = statistics.median(runs["disk"]), statistics.median(runs["tmpfs"])
    result = {
        "scale_orders": scale,
        "repeats": repeats,
        "measured_under_load": "2 cores shared with two other people's work; see os_load_avg",
        "os_load_avg": [round(x, 2) for x in os.getloadavg()],
        "mesh_run_instance_on_disk_s": round(disk, 2),
        "mesh_run_instance_on_tmpfs_s": round(tmpfs, 2),
        "instance_storage_share": round((disk - tmpfs) / disk, 2),
        "runs_s": {name: [round(s, 2) for s in values] for name, values in runs.items()},
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    out = Path(__file__).parent / "results" / f"instance_storage_{args.scale}.json"
    out.write_text(json.dumps(main(args.scale, args.repeats), indent=2) + "\n")
    print(f"recorded in {out}")
