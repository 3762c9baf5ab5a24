"""What the mesh's event log storage saves: Dagster's stock SQLite event log vs `MeshSqliteEventLogStorage`.

Two measures, each alternating stock and mesh, medians of `--repeats`, on disk (the temp folder):

- `store_event`: `--events` calls of `store_event` on a fresh storage, half asset-check evaluations (each
  also mirrored into the index shard), half log lines, as a run's event stream is;
- `mesh run`: the whole example mesh at `--scale` with `DAGSTER_HOME` holding the repository's
  `dagster.yaml` (mesh storage) or the same file without its `event_log_storage` block (stock), on the
  same warehouse file, after one warm-up run each (dbt parse, instance creation).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml
from instance_ab import ROOT, mesh_runs_by_home


def _events(count: int) -> list:
    import dagster as dg
    from dagster._core.events import DagsterEvent, DagsterEventType
    from dagster._core.events.log import EventLogEntry

    entries = []
    for i in range(count):
        if i % 2:
            entries.append(
                EventLogEntry(
                    error_info=None, level=20, user_message=f"line {i}", run_id="run", timestamp=time.time()
                )
            )
            continue
        evaluation = dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey(["domain", f"port_{i % 7}"]), check_name=f"check_{i}", passed=True
        )
        event = DagsterEvent(
            DagsterEventType.ASSET_CHECK_EVALUATION.value, "job", event_specific_data=evaluation
        )
        entries.append(
            EventLogEntry(
                error_info=None,
                level=20,
                user_message="",
                run_id="run",
                timestamp=time.time(),
                dagster_event=event,
            )
        )
    return entries


def _store_events(storage_class: type, count: int) -> float:
    entries = _events(count)
    with tempfile.TemporaryDirectory(prefix="mesh-bench-event-log-") as folder:
        storage = storage_class(folder)
        started = time.perf_counter()
        for entry in entries:
            storage.store_event(entry)
        elapsed = time.perf_counter() - started
        storage.dispose()
    return elapsed


def _alternate(measures: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    runs: dict[str, list[float]] = {name: [] for name in measures}
    for _ in range(repeats):
        for name, measure in measures.items():
            runs[name].append(measure())
    return runs


def store_event_times(count: int, repeats: int) -> dict[str, list[float]]:
    """Seconds for `count` `store_event` calls, per storage class."""
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    from mesh_assets.infra.instance_storage import MeshSqliteEventLogStorage

    return _alternate(
        {
            "stock": lambda: _store_events(SqliteEventLogStorage, count),
            "mesh": lambda: _store_events(MeshSqliteEventLogStorage, count),
        },
        repeats,
    )


def mesh_run_times(scale: int, repeats: int) -> dict[str, list[float]]:
    """Seconds for `mesh run` at `scale`, with the stock and with the mesh event log storage."""
    with tempfile.TemporaryDirectory(prefix="mesh-bench-event-log-") as tmp:
        work = Path(tmp)
        config = yaml.safe_load((ROOT / "dagster.yaml").read_text())
        stock = {key: value for key, value in config.items() if key != "event_log_storage"}
        homes = {"stock": work / "home_stock", "mesh": work / "home_mesh"}
        for name, home in homes.items():
            home.mkdir()
            if name == "mesh":
                shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
            else:
                (home / "dagster.yaml").write_text(yaml.safe_dump(stock))
        return mesh_runs_by_home(work, homes, scale, repeats)


def _summary(runs: dict[str, list[float]], digits: int) -> dict:
    stock, mesh = statistics.median(runs["stock"]), statistics.median(runs["mesh"])
    return {
        "stock_s": round(stock, digits),
        "mesh_s": round(mesh, digits),
        "saved_share": round((stock - mesh) / stock, 2),
        "runs_s": {name: [round(s, digits) for s in values] for name, values in runs.items()},
    }


def main(events: int, scale: int, repeats: int, skip_mesh_run: bool) -> dict:
    """Both measures, stock vs mesh storage."""
    result: dict = {
        "repeats": repeats,
        "measured_under_load": "2 cores shared with other people's work; see os_load_avg",
        "store_event": {"events": events, **_summary(store_event_times(events, repeats), 3)},
    }
    if not skip_mesh_run:
        result["mesh_run"] = {"scale_orders": scale, **_summary(mesh_run_times(scale, repeats), 2)}
    result["os_load_avg"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--scale", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-mesh-run", action="store_true", help="only the store_event measure")
    args = parser.parse_args()
    measured = main(args.events, args.scale, args.repeats, args.skip_mesh_run)
    if not args.skip_mesh_run:
        out = Path(__file__).parent / "results" / "event_log.json"
        out.write_text(json.dumps(measured, indent=2) + "\n")
        print(f"recorded in {out}")
