"""The sales stage against a plain `dbt build` of the same project on the same DuckDB file.

Baseline (same run, same machine, same warehouse file): `dbt build` of `dbt_projects/sales`, with its own
target folder so dbt's partial parsing works for it as it would for a dbt user. Measured: `mesh run
--domain sales` in a fresh process (code location load, landing, the dbt invocations, audit and publish of
both ports, governance), after one warm-up run that lands the extracts and publishes the ports the project
reads. Also recorded, to show where the time goes: each dbt invocation of the mesh run (dbt's own elapsed
time and whether it re-parsed the project), the same plain build without partial parsing (what every
invocation paid before the parse was shared), and one extra invocation building `fx_rates` alone (what the
third invocation of the stage costs).

With `--whole`, the whole `mesh run` (every domain and the governance run) is timed in the same loop,
alternating with the other two, against the same plain `dbt build` (issue 29's second goal). With
`--root`, the mesh measured is another checkout (e.g. `git archive` of an earlier commit, to measure
"before" with this same script); its dbt project is the one built plainly.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from instance_ab import runs_since

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "dbt_projects" / "sales"
UNABLE_TO_PARTIAL_PARSE = "I024"
SKIPPED_PARSING = "I017"


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one child process; raises if it fails."""
    started = time.perf_counter()
    result = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return seconds


def _dbt(work: Path, *args: str) -> list[str]:
    dbt = str(Path(sys.executable).with_name("dbt"))
    return [
        dbt,
        "build",
        "--project-dir",
        str(PROJECT),
        "--profiles-dir",
        str(PROJECT),
        "--target",
        "local",
        "--target-path",
        str(work / "plain-target"),
        "--log-path",
        str(work / "plain-logs"),
        *args,
    ]


def _invocation(folder: Path) -> dict:
    """dbt's own account of one invocation of the mesh run: elapsed seconds, models, full parse or not."""
    elapsed, codes, models = 0.0, set(), 0
    for line in (folder / "dbt.log").read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        codes.add(event["info"]["code"])
        if event["info"]["name"] == "CommandCompleted":
            elapsed = event["data"]["elapsed"]
        if event["info"]["name"] == "LogModelResult":
            models += 1
    return {
        "op": folder.name.split("-")[-1],
        "models": models,
        "dbt_elapsed_s": round(elapsed, 2),
        "reparsed": UNABLE_TO_PARTIAL_PARSE in codes,
        "reused_parse": SKIPPED_PARSING in codes,
    }


def _last_elapsed(log: Path) -> float:
    """dbt's own elapsed seconds of the last command in a (text or JSON) dbt log."""
    elapsed = 0.0
    for line in log.read_text().splitlines():
        if '"CommandCompleted"' in line:
            elapsed = json.loads(line)["data"]["elapsed"]
    return elapsed


def _dagster_profile(home: Path, since: float) -> list[dict]:
    """Each Dagster run started after `since`: its wall seconds and its steps' (from the event log)."""
    return [
        {"job": run.job_name, "run_s": run_s, "steps_s": dict(sorted(steps.items(), key=lambda kv: -kv[1]))}
        for _, run, run_s, steps in runs_since(home, since)
    ]


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def main(scale: int, repeats: int, whole: bool = False) -> dict:
    """Time the plain dbt build and the sales stage side by side, `repeats` times each, alternating."""
    with tempfile.TemporaryDirectory(prefix="mesh-bench-dbt-") as tmp:
        work = Path(tmp)
        env = {
            **os.environ,
            # The mesh under measurement, whichever checkout this script is run from.
            "PYTHONPATH": str(ROOT),
            "MESH_ROOT": str(ROOT),
            "MESH_DATA_DIR": str(work / "data"),
            "MESH_DUCKDB_PATH": str(work / "mesh.duckdb"),
            "MESH_SOURCES_DIR": str(work / "sources"),
            "DAGSTER_HOME": str(work / "dagster_home"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
        env.pop("MESH_TARGET", None)
        (work / "dagster_home").mkdir()
        (work / "dagster_home" / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
        mesh = [sys.executable, "-m", "mesh_assets.cli", "run", "--domain", "sales"]
        whole_mesh = [sys.executable, "-m", "mesh_assets.cli", "run"]
        _timed([sys.executable, "-m", "mesh_assets.cli", "generate", "--scale", str(scale)], env)
        # Lands the extracts and publishes the ports dbt reads (the whole mesh: every location warm).
        warmup_s = _timed(whole_mesh if whole else mesh, env)
        _timed(_dbt(work), env)  # the plain build's own first (full) parse
        artifacts = work / "data" / "dbt" / "sales"
        plain, staged, runs, wholes = [], [], [], []
        for _ in range(repeats):
            plain.append(_timed(_dbt(work), env))
            before = {p.parent for p in artifacts.glob("*/dbt.log")}
            since = time.time()
            staged.append(_timed(mesh, env))
            new = sorted({p.parent for p in artifacts.glob("*/dbt.log")} - before)
            runs.append([_invocation(folder) for folder in new])
            dagster_runs = _dagster_profile(work / "dagster_home", since)
            if whole:
                wholes.append(_timed(whole_mesh, env))
        no_partial = [_timed(_dbt(work, "--no-partial-parse"), env) for _ in range(repeats)]
        fx_alone, fx_elapsed = [], []
        for _ in range(repeats):
            fx_alone.append(_timed(_dbt(work, "--select", "fx_rates", "--log-format-file", "json"), env))
            fx_elapsed.append(_last_elapsed(work / "plain-logs" / "dbt.log"))
    plain_s, staged_s = _median(plain), _median(staged)
    invocations = runs[-1]
    result = {
        "scale_orders": scale,
        "repeats": repeats,
        "plain_dbt_build_s": plain_s,
        "mesh_run_sales_s": staged_s,
        "ratio_mesh_to_dbt": round(staged_s / plain_s, 2),
        "mesh_run_sales_first_s": round(warmup_s, 2),
        "plain_dbt_build_no_partial_parse_s": _median(no_partial),
        "dbt_build_fx_rates_alone_s": _median(fx_alone),
        "dbt_build_fx_rates_alone_dbt_elapsed_s": _median(fx_elapsed),
        "dbt_invocations_per_mesh_run": len(invocations),
        "dbt_invocations_reparsed": sum(i["reparsed"] for run in runs for i in run),
        "dbt_elapsed_in_mesh_run_s": round(sum(i["dbt_elapsed_s"] for i in invocations), 2),
        "last_mesh_run_invocations": invocations,
        "last_mesh_run_dagster_runs": dagster_runs,
        "plain_dbt_build_runs_s": [round(s, 2) for s in plain],
        "mesh_run_sales_runs_s": [round(s, 2) for s in staged],
        "os_load_avg": [round(x, 2) for x in os.getloadavg()],
    }
    if whole:
        result.update(
            mesh_run_whole_s=_median(wholes),
            ratio_whole_to_dbt=round(_median(wholes) / plain_s, 2),
            mesh_run_whole_runs_s=[round(s, 2) for s in wholes],
        )
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--whole", action="store_true", help="also time the whole `mesh run`, alternating")
    parser.add_argument("--root", type=Path, help="the mesh checkout to measure (default: this one)")
    parser.add_argument("--out", default="dbt_stage.json", help="result file name under results/")
    args = parser.parse_args()
    if args.root is not None:
        ROOT = args.root.resolve()
        PROJECT = ROOT / "dbt_projects" / "sales"
    out = Path(__file__).parent / "results" / args.out
    out.write_text(json.dumps(main(args.scale, args.repeats, args.whole), indent=2) + "\n")
    print(f"recorded in {out}")
