"""Contract checks + publish as a share of each port's build, per product, at a chosen scale.

One whole `mesh run` on a fresh data folder (extracts generated first). For every port, from the Dagster
instance: the contract checks' time (`mesh/audit_seconds`), the learned monitors' (`mesh/monitor_seconds`)
and the publish's (`mesh/publish_seconds`, cast into staging + the atomic swap + clean-up), recorded by the
port's publish; and the port's build, the wall time of the steps that produce it (its own step, plus the
dbt steps of a dbt product, shared by that product's ports). The baseline is that build, in the same
run. Goal (issue 15): checks + publish ≤ 15% of the port's build at 1M orders. Results in
`benchmarks/results/wap_split_<scale>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MESH = [sys.executable, "-m", "mesh_assets.cli"]


def _step_seconds(instance, run_id: str) -> dict[str, float]:
    import dagster as dg

    starts, seconds = {}, {}
    records = instance.get_records_for_run(
        run_id, of_type={dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS}
    ).records
    for record in records:
        entry = record.event_log_entry
        if entry.dagster_event.event_type == dg.DagsterEventType.STEP_START:
            starts[entry.step_key] = entry.timestamp
        elif entry.step_key in starts:
            seconds[entry.step_key] = entry.timestamp - starts[entry.step_key]
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        home = work / "home"
        home.mkdir()
        shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MESH_", "DAGSTER_"))}
        env.update(MESH_DATA_DIR=str(work / "data"), DAGSTER_HOME=str(home))
        subprocess.run(
            [*MESH, "generate", "--scale", str(args.scale)],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        subprocess.run([*MESH, "run"], cwd=ROOT, env=env, check=True, capture_output=True)

        import dagster as dg

        os.environ["DAGSTER_HOME"] = str(home)
        instance = dg.DagsterInstance.get()
        steps: dict[str, float] = {}
        for record in instance.get_run_records():
            steps.update(_step_seconds(instance, record.dagster_run.run_id))
        rows = {}
        for key in instance.get_asset_keys():
            path = key.path
            if len(path) != 3 or not path[2].startswith("v"):
                continue
            event = instance.get_latest_materialization_event(key)
            meta = event.asset_materialization.metadata if event and event.asset_materialization else {}
            if "mesh/audit_seconds" not in meta:
                continue
            domain, product, version = path
            own = steps.get(f"{domain}__{product}__{version}", 0.0)
            # A dbt product's models are built by its domain's dbt steps, which every dbt product of the
            # project shares: against them the share is a lower bound, against its own step an upper one.
            dbt = sum(s for step, s in steps.items() if step.startswith(f"{domain}__") and "__dbt" in step)
            build = own + dbt
            audit = meta["mesh/audit_seconds"].value
            publish = meta["mesh/publish_seconds"].value
            monitors = meta["mesh/monitor_seconds"].value
            rows[f"{domain}.{product} {version}"] = {
                "rows": meta["dagster/row_count"].value,
                "port_step_s": round(own, 2),
                "dbt_steps_s": round(dbt, 2),
                "build_s": round(build, 2),
                "checks_s": audit,
                "publish_s": publish,
                "monitors_s": monitors,
                "checks_plus_publish_share": round((audit + publish) / build, 3) if build else None,
                "share_of_port_step_alone": round((audit + publish) / own, 3) if own else None,
            }
    print(f"{'port':<40} {'build s':>8} {'checks s':>9} {'publish s':>10} {'share':>6}")
    for name, row in sorted(rows.items()):
        print(
            f"{name:<40} {row['build_s']:>8.2f} {row['checks_s']:>9.2f} {row['publish_s']:>10.2f} "
            f"{row['checks_plus_publish_share']:>6.1%}"
        )
    out = ROOT / "benchmarks" / "results" / f"wap_split_{args.scale}.json"
    out.write_text(
        json.dumps(
            {"scale": args.scale, "cpus": os.cpu_count(), "load_avg": os.getloadavg(), "ports": rows},
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
