"""The production topology on the production instance: `deploy/dagster.yaml`, Postgres-backed.

The same deployment as `test_production_topology.py` (a code server per location, `dagster-daemon run`,
`mesh run`; harness in `tests/topology_harness.py`), on the instance file docs/deployment.md tells users to
copy (`tests/test_deploy.py` holds the docs and the file equal), against a throwaway PostgreSQL server
(`tests/postgres_server.py`). Besides the cascade's causality it proves what SQLite never exercised:

- the runs, their events and check results of a `mesh run` and of the daemon's cascade are rows in
  Postgres (read with SQL, not only through Dagster);
- every run worker's `NOTIFY run_events` reaches a listener (the statement psycopg 3 breaks);
- the `warehouse` pool is set and enforced by Postgres: while another `mesh run`, stopped mid-landing
  (`crash_points.py`), holds the only slot, the publish waits and names it;
- that run, killed with SIGKILL as an OOM kill would, is reclaimed (marked failed, its slot freed) by the
  waiting `mesh run` or the daemon's `mesh_reclaim_dead_runs` sensor, whichever looks first, and the
  publish then completes on its own.

Its own file, so `--dist loadfile` runs it on another worker than the SQLite topology test.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import topology_harness as harness
from postgres_server import PostgresServer, postgres_server
from topology_harness import REPO, Topology

from mesh_assets.infra.reclaim import PID_TAG, POOL, RECLAIM_SENSOR

# End to end and a few minutes long, but never skipped: `make test` runs it (CI installs PostgreSQL).
pytestmark = pytest.mark.slow

INSTANCE = REPO / "deploy" / "dagster.yaml"
PUBLISH_TIMEOUT_S = 600
NOTIFY_QUIET_S = 2.0
TESTS = Path(__file__).resolve().parents[1]
CRASHING_MESH = [sys.executable, "-c", "import crash_points; crash_points.main()"]


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    """One throwaway server for the module (skips loudly, or fails on CI, without PostgreSQL)."""
    with postgres_server() as server:
        yield server


@pytest.fixture
def topology(
    tmp_path: Path, small_sources: Path, postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Topology]:
    """The deployment on `deploy/dagster.yaml`, its `DAGSTER_PG_*` variables naming the test's server.

    The test's own process reads the instance too (`DagsterInstance.from_config`), so it gets them as well.
    """
    for name, value in postgres.env().items():
        monkeypatch.setenv(name, value)
    with harness.deployment(tmp_path, small_sources, INSTANCE, extra_env=postgres.env()) as deployment:
        yield deployment


def _rows(postgres: PostgresServer, sql: str, *params: object) -> list[tuple]:
    """Rows of one query, on a connection of its own (Postgres itself, not Dagster's reading of it)."""
    with closing(postgres.connect()) as connection, connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _notified_runs(listener: Any) -> set[str]:
    """The runs named by every `run_events` notification the listener was sent (payload `<run id>_<id>`).

    The server sends queued notifications only as fast as the listener reads them (its socket fills up
    during a cascade), so read until nothing more arrives, not once.
    """
    runs: set[str] = set()
    while True:
        listener.poll()
        runs.update(n.payload.rsplit("_", 1)[0] for n in listener.notifies if n.channel == "run_events")
        listener.notifies.clear()
        if select.select([listener], [], [], NOTIFY_QUIET_S) == ([], [], []):
            return runs


def test_on_postgres_a_publish_waits_for_a_live_run_holding_the_pool_reclaims_it_once_killed_and_cascades(
    topology: Topology, postgres: PostgresServer
) -> None:
    harness.build_mesh(topology)
    instance = dg.DagsterInstance.from_config(str(topology.home))
    listener = postgres.connect()
    try:
        # The instance is the documented one: Postgres storage through psycopg2, not a SQLite fallback.
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert instance.event_log_storage.postgres_url.startswith("postgresql+psycopg2://")
        # The pool exists in Postgres with the instance's default limit (one writer, DuckDB).
        assert _rows(postgres, 'SELECT "limit" FROM concurrency_limits WHERE concurrency_key = %s', POOL) == [
            (1,)
        ]

        daemon_started = harness.start_services(topology)
        harness.wait_for_first_ticks(
            instance,
            topology,
            daemon_started,
            [*harness.AUTOMATION_SENSORS, "mesh_slo_monitor", RECLAIM_SENSOR],
        )

        # A `mesh run` of the customers domain, frozen just after landing its source extract: its landing
        # step holds the pool's only slot.
        marker = topology.home.parent / "crash.json"
        crashed = topology.start_command(
            "crashed",
            [*CRASHING_MESH, "run", "--domain", "customers"],
            extra_env={
                "MESH_TEST_CRASH_AT": "landing",
                "MESH_TEST_CRASH_MARKER": str(marker),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
            },
        )
        harness.wait_until(
            "the crashing run to reach its crash point",
            lambda: marker.exists() or crashed.poll() is not None,
            harness.STARTUP_TIMEOUT_S,
            lambda: topology.log("crashed")[-3000:],
            topology,
        )
        assert crashed.poll() is None, f"the crashing run ended early:\n{topology.log('crashed')[-3000:]}"
        assert json.loads(marker.read_text())["relation"].startswith("customers_internal.")
        [dead] = [r.run_id for r in instance.get_runs() if r.tags.get(PID_TAG) == str(crashed.pid)]
        assert [s.run_id for s in instance.event_log_storage.get_concurrency_info(POOL).claimed_slots] == [
            dead
        ]
        runs_before = harness.runs_before_the_update(instance)

        # Every event a run stores is followed by `NOTIFY run_events, '<run id>_<event id>'`.
        listener.cursor().execute("LISTEN run_events")
        publish = topology.start_command("publish", [harness.MESH, "run", "--domain", "customers"])
        # Enforced: with the only slot held by a live process, the publish waits and says for whom.
        harness.wait_until(
            "the publish to wait for the held slot",
            lambda: f"run {dead[:8]}" in topology.log("publish") or publish.poll() is not None,
            harness.STARTUP_TIMEOUT_S,
            lambda: topology.log("publish")[-3000:],
            topology,
        )
        said = topology.log("publish")
        assert publish.poll() is None, f"the publish did not wait for the held slot:\n{said[-3000:]}"
        assert "`warehouse` pool slot" in said and f"pid {crashed.pid} on " in said and ", alive" in said

        # It dies as an OOM kill would: nobody frees its slot but the reclaimers.
        os.killpg(crashed.pid, signal.SIGKILL)
        crashed.wait()
        assert publish.wait(timeout=PUBLISH_TIMEOUT_S) == 0, topology.log("publish")[-4000:]
        # Both reclaimers may look at once (each then records its failure): any of them, never another reason.
        reasons = [
            r.event_log_entry.dagster_event.message
            for r in instance.get_records_for_run(dead, of_type=dg.DagsterEventType.RUN_FAILURE).records
        ]
        assert reasons and set(reasons) <= {
            f"process {crashed.pid} died; marked failed by mesh run",
            f"process {crashed.pid} died; marked failed by the {RECLAIM_SENSOR} sensor",
        }, reasons

        cascade = harness.check_cascade(instance, topology, runs_before, harness.latest_publish(instance))

        # What Dagster reported is what Postgres holds: every run with its status ...
        stored = dict(_rows(postgres, "SELECT run_id, status FROM runs"))
        assert stored == {r.run_id: r.status.value for r in instance.get_runs()}
        publish_run = harness.latest_publish(instance).run_id
        assert stored[dead] == "FAILURE" and stored[publish_run] == "SUCCESS"
        launched = {r.dagster_run.run_id for r in cascade.runs}
        assert launched and all(stored[run_id] == "SUCCESS" for run_id in launched), cascade.report
        assert all(r.dagster_run.tags.get("dagster/sensor_name") for r in cascade.runs), cascade.report
        # ... the check results of the publish and of the daemon's runs ...
        for run_id in [publish_run, cascade.published_by[dg.AssetKey(["mesh", "scorecard"])].run_id]:
            checks = {
                name
                for (name,) in _rows(
                    postgres, "SELECT check_name FROM asset_check_executions WHERE run_id = %s", run_id
                )
            }
            assert checks and checks == harness.check_names(instance, run_id), run_id
        # ... and the pool: still one slot, given back by every run (the dead one's by a reclaimer).
        assert _rows(
            postgres,
            "SELECT run_id FROM concurrency_slots WHERE concurrency_key = %s AND NOT deleted",
            POOL,
        ) == [(None,)]
        assert _rows(postgres, "SELECT run_id FROM pending_steps WHERE concurrency_key = %s", POOL) == []

        # Every run worker's NOTIFY went through: `mesh run`'s in-process run and the daemon's launched runs.
        assert {publish_run, *launched} <= _notified_runs(listener)
    finally:
        listener.close()
        instance.dispose()

    # Stopping is part of production: every process exits on SIGTERM (none needs SIGKILL).
    assert topology.stop() == [], "processes ignored SIGTERM"
