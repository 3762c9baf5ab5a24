"""`mesh ci` against a full `mesh run` of the same mesh: the gate must build less than everything.

Baseline (same run, same machine, same data folder): a whole `mesh run` into a fresh branch environment
(`MESH_DEFER=none`: every product built, as a branch without deferral would). Measured: `mesh ci --base
main` of two real changes on a git copy of the mesh, each in a fresh `ci_*` environment deferring to a
prod built once beforehand —

- `leaf`: a non-breaking SQL change to `commercial_analytics.customer_360` (builds it and its consumer);
- `source`: a change to `customers.customer_master`'s transform (builds it and its three consumers).

Reported: medians of `--repeat` runs (default 3), the ratio to the full run, and how many products each
built. Results in `benchmarks/results/ci_gate.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "ci_gate.json"
MESH = [sys.executable, "-m", "mesh_assets.cli"]
CHANGES = {
    "leaf": (
        "domains/commercial_analytics/products/customer_360/customer_360_v1.sql",
        "cast(i.run_failure_rate as double) as run_failure_rate",
        "cast(round(i.run_failure_rate, 2) as double) as run_failure_rate",
    ),
    "source": (
        "domains/customers/products/customer_master/transform.py",
        '"city": latest["city"].str.strip(),',
        '"city": latest["city"].str.strip().str.title(),',
    ),
}


def _copy(destination: Path) -> Path:
    destination.mkdir(parents=True)
    shutil.copytree(ROOT / "domains", destination / "domains", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(
        ROOT / "dbt_projects", destination / "dbt_projects", ignore=shutil.ignore_patterns("target", "logs")
    )
    shutil.copy(ROOT / "dagster.yaml", destination / "dagster.yaml")
    return destination


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=b@b", "-c", "user.name=b", *args], cwd=root, check=True, capture_output=True
    )


def _env(root: Path, data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MESH_", "DAGSTER_"))}
    env.update(MESH_ROOT=str(root), MESH_DATA_DIR=str(data), PYTHONPATH=str(ROOT), **extra)
    return env


def _timed(cmd: list[str], cwd: Path, env: dict[str, str], ok: tuple[int, ...] = (0,)) -> float:
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode not in ok:
        raise RuntimeError(
            f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
        )
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        root, data = _copy(work / "repo"), work / "data"
        _git(root, "init", "-q", "-b", "main")
        _git(root, "add", "-A")
        _git(root, "commit", "-qm", "base")
        subprocess.run(
            [*MESH, "generate", "--scale", str(args.scale)],
            cwd=root,
            env=_env(root, data),
            check=True,
            capture_output=True,
        )
        _timed([*MESH, "prepare"], root, _env(root, data))
        _timed([*MESH, "run"], root, _env(root, data, MESH_ENV="prod", DAGSTER_HOME=str(work / "prod_home")))

        full = []
        for i in range(args.repeat):
            name = f"full_{i}"
            full.append(
                _timed(
                    [*MESH, "run"],
                    root,
                    _env(
                        root, data, MESH_ENV=name, MESH_DEFER="none", DAGSTER_HOME=str(work / f"home_{name}")
                    ),
                )
            )
        full_s = statistics.median(full)
        rows = {
            "full mesh run (baseline)": {
                "median_s": round(full_s, 2),
                "runs_s": [round(s, 2) for s in full],
                "products_built": 6,
                "ratio": 1.0,
            }
        }
        for label, (path, old, new) in CHANGES.items():
            _git(root, "checkout", "-q", "-B", f"bench/{label}", "main")
            file = root / path
            file.write_text(file.read_text().replace(old, new))
            _git(root, "commit", "-qam", label)
            runs = [
                _timed([*MESH, "ci", "--base", "main", "--env", f"ci_{label}"], root, _env(root, data))
                for _ in range(args.repeat)
            ]
            build = json.loads((data / "envs" / f"ci_{label}" / "ci" / "build.json").read_text())
            median = statistics.median(runs)
            rows[f"mesh ci, {label} change"] = {
                "median_s": round(median, 2),
                "runs_s": [round(s, 2) for s in runs],
                "products_built": len(build),
                "ratio": round(median / full_s, 2),
            }
            _git(root, "checkout", "-q", "-f", "main")
    print(f"{'measure':<28} {'median s':>9} {'ratio':>6} {'built':>6}")
    for label, row in rows.items():
        print(f"{label:<28} {row['median_s']:>9.2f} {row['ratio']:>6.2f} {row['products_built']:>6}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {"scale": args.scale, "repeat": args.repeat, "cpus": os.cpu_count(), "results": rows}, indent=2
        )
        + "\n"
    )
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
