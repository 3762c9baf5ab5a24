"""The production topology in subprocesses, shared by the SQLite and the Postgres topology tests.

One `dagster code-server start` per location of `workspace.yaml`, a workspace of `grpc_server` entries,
`dagster-daemon run`, and `mesh run` against the same private instance, DuckDB file and catalog folder.
Every process is in its own process group and is stopped (SIGTERM, then SIGKILL) whether the test passes
or fails. The checks of a cascade (`check_cascade`) judge by causality, not by time: every run succeeded,
each downstream port and governance asset refreshed exactly once, each after everything it reads, and the
catalog and scorecard show the new publish.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pytest
from dagster import DagsterEventType

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MESH = str(BIN / "mesh")
LOCATIONS = ["customers", "sales", "diagnostics", "commercial_analytics", "mesh"]
AUTOMATION_SENSORS = [f"{location}_automation" for location in LOCATIONS]
SLO_SENSORS = ["mesh_slo_monitor", "mesh_slo_data_time"]
RECLAIM_SENSOR = "mesh_reclaim_dead_runs"
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
    """The processes of one mesh deployment and the private state they share.

    `processes` run for the whole test (a code server, the daemon): one that exits fails the test.
    `commands` are started in the background and end on their own (a `mesh run` the test watches).
    """

    home: Path
    logs: Path
    env: dict[str, str]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    commands: dict[str, subprocess.Popen] = field(default_factory=dict)

    def _popen(
        self, name: str, args: list[str], extra_env: Mapping[str, str] | None = None
    ) -> subprocess.Popen:
        log = (self.logs / f"{name}.log").open("ab")
        try:
            return subprocess.Popen(
                args,
                cwd=REPO,
                env={**self.env, **(extra_env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_default_signals,
            )
        finally:
            log.close()

    def start(self, name: str, args: list[str]) -> None:
        """Start a long-running process in its own process group, logging to `<logs>/<name>.log`."""
        self.processes[name] = self._popen(name, args)

    def start_command(
        self, name: str, args: list[str], extra_env: Mapping[str, str] | None = None
    ) -> subprocess.Popen:
        """Start a command that ends on its own, in the background (stopped at teardown if it did not)."""
        self.commands[name] = self._popen(name, args, extra_env)
        return self.commands[name]

    def log(self, name: str) -> str:
        """What a process or command has written so far."""
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def run(self, name: str, args: list[str], timeout_s: float = 600) -> None:
        """Run a command to completion; fail with its output if it fails."""
        done = subprocess.run(args, cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout_s)
        (self.logs / f"{name}.log").write_text(done.stdout + done.stderr)
        assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"

    def assert_alive(self) -> None:
        """Fail naming the process (and its log's tail) if a long-running one exited."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                pytest.fail(f"{name} exited with {process.returncode}:\n{self.log(name)[-3000:]}")

    def stop(self) -> list[str]:
        """SIGTERM every process group, then SIGKILL what is left; returns the groups that needed it.

        A group is the process and its children (the code server behind each proxy, run workers).
        """
        everything = {**self.processes, **self.commands}
        for process in everything.values():
            _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline:
            for process in everything.values():
                process.poll()  # reap the leaders so their group can empty
            if not any(_signal_group(p.pid, 0) for p in everything.values()):
                break
            time.sleep(0.2)
        killed = [name for name, p in everything.items() if _signal_group(p.pid, signal.SIGKILL)]
        for process in everything.values():
            process.wait(timeout=STOP_GRACE_S)
        return killed


def _signal_group(pgid: int, signum: int) -> bool:
    """Signal a process group; False if it no longer exists."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def deployment(
    tmp_path: Path, sources: Path, instance_yaml: Path, extra_env: Mapping[str, str] | None = None
) -> Iterator[Topology]:
    """A private instance (from `instance_yaml`), DuckDB file and catalog folder; stopped on exit."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(instance_yaml, home / "dagster.yaml")
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MESH_", "DAGSTER_"))}
    env.update(
        DAGSTER_HOME=str(home),
        MESH_DUCKDB_PATH=str(tmp_path / "mesh.duckdb"),
        MESH_SOURCES_DIR=str(sources),
        MESH_DATA_DIR=str(tmp_path / "data"),
        PYTHONUNBUFFERED="1",
        **(extra_env or {}),
    )
    topology = Topology(home, logs, env)
    try:
        yield topology
    finally:
        topology.stop()


def wait_until(
    what: str,
    predicate: Callable[[], bool],
    timeout_s: float,
    describe: Callable[[], str],
    topology: Topology,
) -> None:
    """Poll `predicate` until it holds; fail with `describe()` on timeout or if a process died."""
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


def ticks(instance: dg.DagsterInstance) -> dict[str, list]:
    """Every sensor's ticks (newest first), by sensor name."""
    found: dict[str, list] = {}
    for state in instance.all_instigator_state():
        stored = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=200)
        found.setdefault(state.instigator_name, []).extend(stored)
    return found


def finished_tick_after(sensor_ticks: list, after: float) -> bool:
    """Whether one of these ticks finished (whatever its outcome) after `after` (epoch seconds)."""
    return any(t.timestamp > after and t.status.value != "STARTED" for t in sensor_ticks)


def _missing_ticks(instance: dg.DagsterInstance, topology: Topology) -> str:
    """Which sensors never ticked, with the log tail of their location's code server."""
    ticked = ticks(instance)
    lines = []
    for location in LOCATIONS:
        if f"{location}_automation" not in ticked:
            log = topology.log(f"code_server_{location}")
            lines.append(f"{location}_automation never ticked; its code server's log ends:\n{log[-2000:]}")
    return "\n".join(lines) + "\n" + runs_text(instance)


def runs_text(instance: dg.DagsterInstance) -> str:
    """Every run, oldest first: id, status, duration, who launched it, what it built; failed steps' errors."""
    lines = []
    for record in reversed(instance.get_run_records()):
        run = record.dagster_run
        took = f"{record.end_time - record.start_time:.1f}s" if record.end_time and record.start_time else "-"
        launched_by = run.tags.get("dagster/sensor_name", run.tags.get("mesh/launched_by", "-"))
        keys = ", ".join(sorted(k.to_user_string() for k in run.asset_selection or []))
        lines.append(
            f"  {run.run_id[:8]} {run.status.value:<9} {took:>7} {launched_by}: {keys or run.job_name}"
        )
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


def build_mesh(topology: Topology) -> None:
    """`mesh run`: the whole mesh, before any other process touches the instance.

    The update the test makes later is then the only change the daemon reacts to. It also creates the
    instance's storage: processes starting on a fresh instance at once race to create its tables.
    """
    topology.run("build", [MESH, "run"])


def start_services(topology: Topology) -> float:
    """A code server per location, then the daemon on a workspace of them; when the daemon started."""
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
    wait_until(
        "the code servers to serve",
        lambda: all(_serving(port) for port in ports.values()),
        STARTUP_TIMEOUT_S,
        lambda: "\n".join(f"{name}: {topology.log(name)[-1500:]}" for name in topology.processes),
        topology,
    )
    daemon_started = time.time()
    topology.start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)])
    return daemon_started


def wait_for_first_ticks(
    instance: dg.DagsterInstance, topology: Topology, daemon_started: float, sensors: list[str]
) -> None:
    """Every one of `sensors` has evaluated once since the daemon started."""
    wait_until(
        "every sensor's first tick",
        lambda: all(finished_tick_after(ticks(instance).get(name, []), daemon_started) for name in sensors),
        STARTUP_TIMEOUT_S,
        lambda: _missing_ticks(instance, topology),
        topology,
    )


def runs_before_the_update(instance: dg.DagsterInstance) -> set[str]:
    """The runs so far, asserting the daemon launched none of them: nothing has changed yet."""
    assert all(r.tags.get("dagster/sensor_name") is None for r in instance.get_runs()), (
        "the daemon launched runs before anything changed:\n" + runs_text(instance)
    )
    return {r.dagster_run.run_id for r in instance.get_run_records()}


def latest_publish(instance: dg.DagsterInstance) -> dg.EventLogRecord:
    """The source port's latest materialization: the update the cascade starts from."""
    return instance.fetch_materializations(SOURCE_PORT, limit=1).records[0]


@dataclass(frozen=True)
class Cascade:
    """What the automation sensors ran after one publish, and the materialization of each key."""

    runs: list[dg.RunRecord]
    published_by: dict[dg.AssetKey, dg.EventLogRecord]
    report: str


def check_cascade(
    instance: dg.DagsterInstance, topology: Topology, runs_before: set[str], publish: dg.EventLogRecord
) -> Cascade:
    """Wait for the cascade after `publish` to settle, and check it by causality (see the module doc)."""
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
        sensor_ticks = ticks(instance)
        return all(finished_tick_after(sensor_ticks.get(name, []), last_end) for name in AUTOMATION_SENSORS)

    wait_until("the cascade to settle", settled, SETTLE_TIMEOUT_S, lambda: runs_text(instance), topology)

    cascade = [
        r
        for r in reversed(instance.get_run_records())
        if r.dagster_run.run_id not in runs_before and r.dagster_run.run_id != publish.run_id
    ]
    report = runs_text(instance)
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
    assert "fitness__customers__customer_master" in check_names(
        instance, published_by[dg.AssetKey(["mesh", "scorecard"])].run_id
    )
    scorecard = Path(topology.env["MESH_DATA_DIR"]) / "scorecard.html"
    assert "not yet published" not in scorecard.read_text()

    # The SLO sensors ticked after the publish and none of their ticks raised.
    sensor_ticks = ticks(instance)
    for name in SLO_SENSORS:
        errors = [t.error.message for t in sensor_ticks.get(name, []) if t.status.value == "FAILURE"]
        assert not errors, f"{name} ticks failed: {errors}"
    assert finished_tick_after(sensor_ticks["mesh_slo_monitor"], publish.event_log_entry.timestamp)
    return Cascade(cascade, published_by, report)


def check_names(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    """The asset checks a run evaluated."""
    return {
        record.event_log_entry.dagster_event.asset_check_evaluation_data.check_name
        for record in instance.get_records_for_run(
            run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
    }
