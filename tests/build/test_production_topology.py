"""The mesh as production runs it: one code server per location, the Dagster daemon, a source update.

Every other test executes in-process, one run at a time. This one starts the real topology in
subprocesses (`dagster code-server start` per location of `workspace.yaml`, a workspace of `grpc_server`
entries, `dagster-daemon run`) on a private instance, DuckDB file and catalog folder, publishes one
source-aligned product with `mesh run --domain customers` against the same instance, and lets the
automation sensors carry the update through the mesh. It then checks the cascade by causality, not
by time: every run succeeded, each downstream port and governance asset refreshed exactly once, each
after everything it reads, and the catalog and scorecard show the new publish.

Every process the test starts is in its own process group and is stopped (SIGTERM, then SIGKILL)
whether the test passes or fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pytest
from dagster import DagsterEventType

# End to end and a few minutes long, but never skipped: `make test` runs it.
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOCATIONS = ["customers", "sales", "diagnostics", "commercial_analytics", "mesh"]
AUTOMATION_SENSORS = [f"{location}_automation" for location in LOCATIONS]
SLO_SENSORS = ["mesh_slo_monitor", "mesh_slo_data_time"]
SOURCE_PORT = dg.AssetKey(["customers", "customer_master", "v1"])
DOWNSTREAM_PORTS = {
    # port -> the ports of the cascade it reads (it must refresh after all of them)
    dg.AssetKey(["diagnostics", "instrument_runs", "v1"]): [SOURCE_PORT],
    dg.AssetKey(["commercial_analytics", "customer_360", "v1"]): [
        SOURCE_PORT,
        dg.AssetKey(["diagnostics", "instrument_runs", "v1"]),
    ],
    dg.AssetKey(["commercial_analytics", "sales_forecast", "v0"]): [
        dg.AssetKey(["commercial_analytics", "customer_360", "v1"])
    ],
}
GOVERNANCE = [dg.AssetKey(["mesh", name]) for name in ("catalog", "product_overview", "scorecard")]
STARTUP_TIMEOUT_S = 240
"""Code servers load and every sensor ticks once (2 shared cores, 5 locations)."""
SETTLE_TIMEOUT_S = 480
"""The cascade after one publish: generous, it usually settles in about two minutes."""
STOP_GRACE_S = 15
IN_PROGRESS = {
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
}


def _default_signals() -> None:
    """In the child: SIGINT/SIGTERM do what they do in production, whatever the test runner ignores."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


@dataclass
class Topology:
    """The processes of one mesh deployment and the private state they share."""

    home: Path
    logs: Path
    env: dict[str, str]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, args: list[str]) -> None:
        """Start a long-running process in its own process group, logging to `<logs>/<name>.log`."""
        log = (self.logs / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            args,
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_default_signals,
        )
        log.close()

    def run(self, name: str, args: list[str], timeout_s: float = 600) -> None:
        """Run a command to completion; fail with its output if it fails."""
        done = subprocess.run(args, cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout_s)
        (self.logs / f"{name}.log").write_text(done.stdout + done.stderr)
        assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"

    def assert_alive(self) -> None:
        """Fail naming the process (and its log's tail) if a long-running one exited."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
                pytest.fail(f"{name} exited with {process.returncode}:\n{tail}")

    def stop(self) -> list[str]:
        """SIGTERM every process group, then SIGKILL what is left; returns the groups that needed it.

        A group is the process and its children (the code server behind each proxy, run workers).
        """
        for process in self.processes.values():
            _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline:
            for process in self.processes.values():
                process.poll()  # reap the leaders so their group can empty
            if not any(_signal_group(p.pid, 0) for p in self.processes.values()):
                break
            time.sleep(0.2)
        killed = [name for name, p in self.processes.items() if _signal_group(p.pid, signal.SIGKILL)]
        for process in self.processes.values():
            process.wait(timeout=STOP_GRACE_S)
        return killed


def _signal_group(pgid: int, signum: int) -> bool:
    """Signal a process group; False if it no longer exists."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def topology(tmp_path: Path, small_sources: Path) -> Iterator[Topology]:
    """A private instance, DuckDB file and catalog folder; the processes are stopped at teardown."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MESH_", "DAGSTER_"))}
    env.update(
        DAGSTER_HOME=str(home),
        MESH_DUCKDB_PATH=str(tmp_path / "mesh.duckdb"),
        MESH_SOURCES_DIR=str(small_sources),
        MESH_DATA_DIR=str(tmp_path / "data"),
        PYTHONUNBUFFERED="1",
    )
    deployment = Topology(home, logs, env)
    try:
        yield deployment
    finally:
        deployment.stop()


def _wait_until(what: str, predicate, timeout_s: float, describe, topology: Topology) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        topology.assert_alive()
        if predicate():
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}\n{describe()}")
        time.sleep(2)


def _serving(port: int) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        with grpc.insecure_channel(f"localhost:{port}") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="DagsterApi"), timeout=2
            )
        return reply.status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False


def _ticks(instance: dg.DagsterInstance) -> dict[str, list]:
    """Every sensor's ticks (newest first), by sensor name."""
    found: dict[str, list] = {}
    for state in instance.all_instigator_state():
        ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=200)
        found.setdefault(state.instigator_name, []).extend(ticks)
    return found


def _finished_tick_after(ticks: list, after: float) -> bool:
    return any(t.timestamp > after and t.status.value != "STARTED" for t in ticks)


def _missing_ticks(instance: dg.DagsterInstance, topology: Topology) -> str:
    """Which sensors never ticked, with the log tail of their location's code server."""
    ticked = _ticks(instance)
    lines = []
    for location in LOCATIONS:
        if f"{location}_automation" not in ticked:
            log = (topology.logs / f"code_server_{location}.log").read_text(errors="replace")
            lines.append(f"{location}_automation never ticked; its code server's log ends:\n{log[-2000:]}")
    return "\n".join(lines) + "\n" + _runs_text(instance)


def _runs_text(instance: dg.DagsterInstance) -> str:
    lines = []
    for record in reversed(instance.get_run_records()):
        run = record.dagster_run
        took = f"{record.end_time - record.start_time:.1f}s" if record.end_time and record.start_time else "-"
        launched_by = run.tags.get("dagster/sensor_name", "mesh run")
        keys = ", ".join(sorted(k.to_user_string() for k in run.asset_selection or []))
        lines.append(f"  {run.run_id[:8]} {run.status.value:<9} {took:>7} {launched_by}: {keys}")
        if run.status == dg.DagsterRunStatus.FAILURE:
            for failure in instance.get_records_for_run(
                run.run_id, of_type=DagsterEventType.STEP_FAILURE
            ).records:
                event = failure.event_log_entry.dagster_event
                error = event.step_failure_data.error if event and event.step_failure_data else None
                lines.append(f"      {event.step_key}: {error.message.strip()[:300] if error else ''}")
    return "runs:\n" + "\n".join(lines)


def _materializations_after(instance: dg.DagsterInstance, key: dg.AssetKey, storage_id: int) -> list:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, after_storage_id=storage_id), limit=100, ascending=True
    ).records
    return list(records)


def _run_start(instance: dg.DagsterInstance, run_id: str) -> int:
    """Storage id of a run's RUN_START event, comparable with materializations' storage ids (run-status
    events are indexed with asset events; ids from `get_records_for_run` are per run on SQLite).
    Everything stored before it was visible to the run."""
    for record in instance.fetch_run_status_changes(
        dg.RunStatusChangeRecordsFilter(DagsterEventType.RUN_START), limit=1000
    ).records:
        if record.run_id == run_id:
            return record.storage_id
    raise AssertionError(f"run {run_id} has no RUN_START event")


def test_one_source_update_refreshes_each_consumer_and_governance_once_after_its_inputs(
    topology: Topology,
) -> None:
    mesh = str(BIN / "mesh")
    # The mesh exists before the daemon starts: the update below is the only change it reacts to. It
    # also creates the instance's storage: processes starting on a fresh SQLite instance at once race to
    # migrate it, so nothing else starts before it.
    topology.run("build", [mesh, "run"])

    ports = {location: _free_port() for location in LOCATIONS}
    for location, port in ports.items():
        topology.start(
            f"code_server_{location}",
            [
                str(BIN / "dagster"),
                "code-server",
                "start",
                "-m",
                f"domains.{location}.definitions",
                "--location-name",
                location,
                "-h",
                "localhost",
                "-p",
                str(port),
            ],
        )
    workspace = topology.home / "workspace.yaml"
    workspace.write_text(
        "load_from:\n"
        + "".join(
            f"  - grpc_server: {{host: localhost, port: {port}, location_name: {location}}}\n"
            for location, port in ports.items()
        )
    )
    _wait_until(
        "the code servers to serve",
        lambda: all(_serving(port) for port in ports.values()),
        STARTUP_TIMEOUT_S,
        lambda: "\n".join(
            f"{name}: {(topology.logs / f'{name}.log').read_text(errors='replace')[-1500:]}"
            for name in topology.processes
        ),
        topology,
    )
    daemon_started = time.time()
    topology.start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)])

    instance = dg.DagsterInstance.from_config(str(topology.home))
    try:
        # Every sensor has evaluated the built mesh once, so the update is news to each of them.
        _wait_until(
            "every sensor's first tick",
            lambda: all(
                _finished_tick_after(_ticks(instance).get(name, []), daemon_started)
                for name in [*AUTOMATION_SENSORS, "mesh_slo_monitor"]
            ),
            STARTUP_TIMEOUT_S,
            lambda: _missing_ticks(instance, topology),
            topology,
        )
        runs_before = {r.dagster_run.run_id for r in instance.get_run_records()}
        assert all(r.tags.get("dagster/sensor_name") is None for r in instance.get_runs()), (
            "the daemon launched runs before anything changed:\n" + _runs_text(instance)
        )

        topology.run("publish", [mesh, "run", "--domain", "customers"])
        publish = instance.fetch_materializations(SOURCE_PORT, limit=1).records[0]
        publish_run = publish.run_id

        expected = [*DOWNSTREAM_PORTS, *GOVERNANCE]

        def settled() -> bool:
            records = instance.get_run_records()
            if any(r.dagster_run.status in IN_PROGRESS for r in records):
                return False
            if not all(_materializations_after(instance, key, publish.storage_id) for key in expected):
                # Not yet, unless a run failed: then nothing more will come, and the assertions say why.
                failed = [r for r in records if r.dagster_run.status == dg.DagsterRunStatus.FAILURE]
                if not any(r.dagster_run.run_id not in runs_before for r in failed):
                    return False
            # Quiet: every automation sensor evaluated the final state (after the last run ended).
            last_end = max((r.end_time or 0.0) for r in records)
            ticks = _ticks(instance)
            return all(_finished_tick_after(ticks.get(name, []), last_end) for name in AUTOMATION_SENSORS)

        _wait_until(
            "the cascade to settle",
            settled,
            SETTLE_TIMEOUT_S,
            lambda: _runs_text(instance),
            topology,
        )

        cascade = [
            r
            for r in reversed(instance.get_run_records())
            if r.dagster_run.run_id not in runs_before and r.dagster_run.run_id != publish_run
        ]
        report = _runs_text(instance)
        print(report)  # the cascade, with durations (-s shows it)
        failed = [
            r.dagster_run.run_id[:8] for r in cascade if r.dagster_run.status != dg.DagsterRunStatus.SUCCESS
        ]
        assert not failed, f"cascade runs did not succeed: {failed}\n{report}"

        published_by: dict[dg.AssetKey, dg.EventLogRecord] = {SOURCE_PORT: publish}
        for key in expected:
            found = _materializations_after(instance, key, publish.storage_id)
            assert len(found) == 1, (
                f"{key.to_user_string()} materialized {len(found)} times after the publish, "
                f"expected exactly once\n{report}"
            )
            published_by[key] = found[0]

        # Causality: each consumer's one run started after every port of the cascade it reads updated,
        # or published that port itself (in one run, Dagster runs a step after the steps it reads).
        for key, inputs in DOWNSTREAM_PORTS.items():
            run_id = published_by[key].run_id
            start = _run_start(instance, run_id)
            for upstream in inputs:
                assert published_by[upstream].run_id == run_id or published_by[upstream].storage_id < start, (
                    f"{key.to_user_string()} ran before {upstream.to_user_string()} was published: "
                    f"it read stale data\n{report}"
                )
        # Governance refreshed once, after the last port of the cascade.
        last_port = max(published_by[key].storage_id for key in [SOURCE_PORT, *DOWNSTREAM_PORTS])
        for key in GOVERNANCE:
            assert _run_start(instance, published_by[key].run_id) > last_port, (
                f"{key.to_user_string()} refreshed before the cascade finished\n{report}"
            )

        # The catalog shows the runs that published each port; the scorecard judged the published mesh.
        pages = Path(topology.env["MESH_DATA_DIR"]) / "catalog" / "products"
        for key in [SOURCE_PORT, *DOWNSTREAM_PORTS]:
            page = (pages / f"{key.path[0]}.{key.path[1]}.html").read_text()
            assert published_by[key].run_id in page, (
                f"the catalog page of {key.to_user_string()} does not show its latest publish"
            )
        scorecard_run = published_by[dg.AssetKey(["mesh", "scorecard"])].run_id
        fitness = {
            record.event_log_entry.dagster_event.asset_check_evaluation_data.check_name
            for record in instance.get_records_for_run(
                scorecard_run, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
            ).records
        }
        assert "fitness__customers__customer_master" in fitness
        scorecard = Path(topology.env["MESH_DATA_DIR"]) / "scorecard.html"
        assert "not yet published" not in scorecard.read_text()

        # The SLO sensors ticked after the publish and none of their ticks raised.
        ticks = _ticks(instance)
        for name in SLO_SENSORS:
            errors = [t.error.message for t in ticks.get(name, []) if t.status.value == "FAILURE"]
            assert not errors, f"{name} ticks failed: {errors}"
        assert _finished_tick_after(ticks["mesh_slo_monitor"], publish.event_log_entry.timestamp)
    finally:
        instance.dispose()

    # Stopping is part of production: every process exits on SIGTERM (none needs SIGKILL).
    assert topology.stop() == [], "processes ignored SIGTERM"
