"""Whole-mesh build time and peak memory at a given scale, against the raw-load baseline.

Baseline (same run, same machine): DuckDB loading every source extract into a table and nothing else,
the floor any build must pay. The mesh build is `mesh run` in a fresh process (landing, transforming,
dbt, auditing, publishing every port, and the governance overview), on a fresh DuckDB file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _child(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process (its own rusage, not all children's)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    return seconds, usage.ru_maxrss / 1024


def main(scale: int) -> dict:
    """Generate extracts at `scale`, time the raw load and the mesh build."""
    with tempfile.TemporaryDirectory(prefix="mesh-bench-") as tmp:
        work = Path(tmp)
        env = {
            **os.environ,
            "MESH_DUCKDB_PATH": str(work / "mesh.duckdb"),
            "MESH_SOURCES_DIR": str(work / "sources"),
            "DAGSTER_HOME": str(work / "dagster_home"),
        }
        (work / "dagster_home").mkdir()
        (work / "dagster_home" / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
        gen_s, _ = _child([sys.executable, "-m", "mesh_assets.cli", "generate", "--scale", str(scale)], env)
        raw = (
            "import duckdb, glob, sys; c = duckdb.connect(sys.argv[1]);"
            "[c.execute(f\"CREATE TABLE t{i} AS SELECT * FROM read_csv('{f}', all_varchar=true)\")"
            " for i, f in enumerate(sorted(glob.glob(sys.argv[2] + '/*/*.csv')))]"
        )
        raw_s, raw_mb = _child(
            [sys.executable, "-c", raw, str(work / "raw.duckdb"), str(work / "sources")], env
        )
        build_s, build_mb = _child([sys.executable, "-m", "mesh_assets.cli", "run"], env)
    result = {
        "scale_orders": scale,
        "generate_s": round(gen_s, 1),
        "raw_load_s": round(raw_s, 1),
        "mesh_build_s": round(build_s, 1),
        "ratio_build_to_raw_load": round(build_s / raw_s, 1),
        "mesh_build_peak_rss_mib": round(build_mb),
        "raw_load_peak_rss_mib": round(raw_mb),
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=1_000_000)
    args = parser.parse_args()
    out = Path(__file__).parent / "results" / f"build_mesh_{args.scale}.json"
    out.write_text(json.dumps(main(args.scale), indent=2) + "\n")
    print(f"recorded in {out}")
