"""Crashes never stop the mesh: a `mesh run` killed at any instant leaves every port with its last good
data, and the next run completes on its own, reclaiming what the dead run held.

Every scenario starts from one mesh built from source extracts A, then runs `mesh run` on extracts B
(other data) in a real subprocess that is stopped at a chosen instant (see `crash_points.py`) and killed
with SIGKILL, as an OOM kill or a lost node would. The next `mesh run` must finish without manual cleanup,
every port must hold exactly the last good data (A) or the new data (B), never a mix, and no staging or
candidate table may be left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import psutil
import pytest
from conftest import REPO, TEST_SCALE

from mesh_assets.infra.reclaim import PID_TAG, pid_alive
from mesh_assets.product import addressing
from mesh_assets.selfservice.generate import AS_OF, generate_sources

TESTS = Path(__file__).resolve().parents[1]
BOUND_S = 600  # only a real hang reaches this: it is a bound, not a timing assertion
MESH = [sys.executable, "-c", "from mesh_assets.cli.app import main; main()"]
CRASHING_MESH = [sys.executable, "-c", "import crash_points; crash_points.main()"]


def _ports() -> list[addressing.Relation]:
    from mesh_assets.product.registry import load_registry

    registry = load_registry(REPO)
    return [
        addressing.port_relation(p.spec.domain, p.spec.name, port.major)
        for p in registry.products.values()
        for port in p.spec.output_ports
    ]


@dataclass
class World:
    """One mesh on disk: DuckDB file, Dagster instance, data folder; source extracts to build from."""

    root: Path
    sources: Path

    @property
    def database(self) -> Path:
        return self.root / "mesh.duckdb"

    @property
    def home(self) -> Path:
        return self.root / "dagster_home"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MESH_", "DAGSTER_"))}
        env.update(
            DAGSTER_HOME=str(self.home),
            MESH_DATA_DIR=str(self.root / "data"),
            MESH_DUCKDB_PATH=str(self.database),
            MESH_SOURCES_DIR=str(self.sources),
            PYTHONPATH=os.pathsep.join([str(TESTS), str(REPO)]),
            **extra,
        )
        return env

    def start(self, command: list[str], **extra: str) -> subprocess.Popen:
        log = (self.root / f"mesh-{time.monotonic_ns()}.log").open("w")
        return subprocess.Popen(
            [*command, "run"],
            cwd=REPO,
            env=self.env(**extra),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def run(self) -> str:
        """A whole `mesh run`; its output. Fails the test unless it succeeds."""
        process = self.start(MESH)
        code = process.wait(timeout=BOUND_S)
        output = self.output(process)
        assert code == 0, f"mesh run exited {code}:\n{output[-6000:]}"
        return output

    def output(self, process: subprocess.Popen) -> str:
        logs = sorted(self.root.glob("mesh-*.log"), key=lambda p: p.stat().st_mtime)
        return logs[-1].read_text() if logs else ""

    def checksums(self) -> dict[str, tuple[int, int]]:
        """Rows and an order-independent checksum of every column of every port."""
        with duckdb.connect(str(self.database), read_only=True) as connection:
            return {
                port.dotted: tuple(
                    connection.execute(f"SELECT COUNT(*), SUM(hash(t)) FROM {port.sql} t").fetchone()
                )
                for port in _ports()
            }

    def leftover_batches(self) -> list[str]:
        with duckdb.connect(str(self.database), read_only=True) as connection:
            rows = connection.execute(
                "SELECT table_schema || '.' || table_name FROM information_schema.tables "
                "WHERE suffix(table_name, '__staging') OR suffix(table_name, '__candidate')"
            ).fetchall()
        return sorted(r[0] for r in rows)

    def instance(self) -> dg.DagsterInstance:
        return dg.DagsterInstance.from_config(str(self.home))


@dataclass
class Baseline:
    world: World
    other_sources: Path
    old: dict[str, tuple[int, int]]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Baseline:
    """The mesh built once from extracts A (copied into each scenario), and extracts B with other data."""
    root = tmp_path_factory.mktemp("baseline")
    sources_a, sources_b = root / "sources_a", root / "sources_b"
    generate_sources(sources_a, scale=TEST_SCALE, seed=42, as_of=AS_OF)
    generate_sources(sources_b, scale=TEST_SCALE, seed=4242, as_of=AS_OF)
    world = World(root / "world", sources_a)
    world.home.mkdir(parents=True)
    shutil.copy(REPO / "dagster.yaml", world.home / "dagster.yaml")
    world.run()
    return Baseline(world, sources_b, world.checksums())


def scenario(baseline: Baseline, tmp_path: Path) -> World:
    """A copy of the baseline mesh whose next runs read extracts B."""
    # Symlinks kept: a Parquet binding's `latest` is one (relative), and a copy must stay one.
    shutil.copytree(
        baseline.world.root, tmp_path / "world", ignore=shutil.ignore_patterns("mesh-*.log"), symlinks=True
    )
    return World(tmp_path / "world", baseline.other_sources)


def wait_for_marker(world: World, process: subprocess.Popen, marker: Path) -> dict:
    deadline = time.monotonic() + BOUND_S
    while not marker.exists():
        if process.poll() is not None:
            pytest.fail(
                f"mesh run ended ({process.returncode}) before the crash point:\n{world.output(process)}"
            )
        assert time.monotonic() < deadline, f"the crash point was never reached:\n{world.output(process)}"
        time.sleep(0.05)
    return json.loads(marker.read_text())


def stop_dbt_inside_its_build(world: World, process: subprocess.Popen, dbt_pid: int) -> psutil.Process:
    """Suspend (SIGSTOP) the run's dbt once it is seen with the warehouse file open, i.e. building.

    Each look is taken with dbt suspended, so what is seen still holds when this returns: dbt is alive and
    inside its build, and stays so until resumed, however loaded the machine. Fails the test if dbt ends
    before it is ever seen building (the kill would then not land during dbt at all).
    """
    database = world.database.resolve()
    deadline = time.monotonic() + BOUND_S
    try:
        dbt = psutil.Process(dbt_pid)
        while True:
            dbt.suspend()
            # SIGSTOP lands when the kernel next schedules dbt: look only once it has.
            while (status := dbt.status()) != psutil.STATUS_STOPPED:
                if status == psutil.STATUS_ZOMBIE:
                    raise psutil.ZombieProcess(dbt_pid)
                assert time.monotonic() < deadline, f"dbt (pid {dbt_pid}) never stopped: {status}"
                time.sleep(0.01)
            if any(Path(f.path) == database for f in dbt.open_files()):
                return dbt
            dbt.resume()
            assert process.poll() is None, f"mesh run ended while dbt ran:\n{world.output(process)}"
            assert time.monotonic() < deadline, f"dbt never opened {database}:\n{world.output(process)}"
            time.sleep(0.05)
    except psutil.NoSuchProcess:
        pytest.fail(f"the run's dbt (pid {dbt_pid}) ended before it was seen building: nothing to kill it in")
    except BaseException:
        with contextlib.suppress(psutil.Error, UnboundLocalError):
            dbt.resume()  # never leave a stopped dbt behind a failed test
        raise


def kill_at(world: World, point: str, **extra: str) -> tuple[int, dict]:
    """Start `mesh run` on extracts B, SIGKILL it at `point`; the killed pid and what the marker said.

    At `dbt`, `mesh run` is killed while its dbt is alive and building (suspended for the kill, resumed
    right after it), so the orphan is certain to outlive the run; the marker then says `dbt_alive_at_kill`.
    """
    marker = world.root / "crash.json"
    process = world.start(
        CRASHING_MESH, MESH_TEST_CRASH_AT=point, MESH_TEST_CRASH_MARKER=str(marker), **extra
    )
    said = wait_for_marker(world, process, marker)
    dbt = stop_dbt_inside_its_build(world, process, said["dbt_pid"]) if point == "dbt" else None
    try:
        process.kill()
        process.wait(timeout=BOUND_S)
        if dbt is not None:
            # Suspended since it was seen building: it cannot have ended in between.
            said["dbt_alive_at_kill"] = dbt.is_running() and dbt.status() == psutil.STATUS_STOPPED
    finally:
        if dbt is not None and dbt.is_running():
            dbt.resume()  # never leave a stopped orphan behind, whatever failed
    return process.pid, said


def assert_reclaimed_and_clean(world: World, killed_pid: int, output: str) -> None:
    assert f"process {killed_pid} died; marked failed by mesh run" in output
    instance = world.instance()
    try:
        runs = [r for r in instance.get_runs() if r.tags.get(PID_TAG) == str(killed_pid)]
        assert runs, "the killed run recorded no owner"
        # Stages that finished before the kill keep their outcome; the one it interrupted is failed, not
        # left STARTED forever.
        assert dg.DagsterRunStatus.FAILURE in {r.status for r in runs}
        assert not [r.run_id for r in runs if not r.is_finished]
        assert instance.event_log_storage.get_concurrency_info("warehouse").claimed_slots == []
    finally:
        instance.dispose()
    assert world.leftover_batches() == []


def test_a_run_killed_while_landing_a_source_leaves_last_good_ports_and_the_next_run_completes(
    baseline: Baseline, tmp_path: Path
) -> None:
    world = scenario(baseline, tmp_path)
    pid, said = kill_at(world, "landing")
    assert said["relation"].startswith("customers_internal."), said

    instance = world.instance()
    try:  # the wedge this guards against: the dead run still STARTED, holding the pool's only slot
        [dead] = [r for r in instance.get_runs() if r.tags.get(PID_TAG) == str(pid)]
        assert dead.status == dg.DagsterRunStatus.STARTED
        assert [
            s.run_id for s in instance.event_log_storage.get_concurrency_info("warehouse").claimed_slots
        ] == [dead.run_id]
    finally:
        instance.dispose()
    at_kill = world.checksums()
    assert at_kill == baseline.old  # nothing was published yet: every port holds the last good data

    output = world.run()
    assert_reclaimed_and_clean(world, pid, output)
    new = world.checksums()
    assert all(new[port] != baseline.old[port] for port in new), "extracts B must change every port"


def test_a_run_killed_inside_a_publish_leaves_that_port_whole_and_the_next_run_completes(
    baseline: Baseline, tmp_path: Path
) -> None:
    at_kill, new = _killed_at_a_port_then_rerun(baseline, tmp_path, "publish", "sales.sales_v2")
    # Killed before COMMIT: the port being replaced still holds exactly its last good batch ...
    assert at_kill["sales.sales_v2"] == baseline.old["sales.sales_v2"]
    # ... ports published earlier in the killed run hold the new batch, and none holds anything else.
    assert at_kill["customers.customer_master_v1"] == new["customers.customer_master_v1"]
    assert at_kill["sales.orders_v1"] == new["sales.orders_v1"]
    _assert_each_port_holds_its_last_good_or_new_data(at_kill, baseline.old, new)


def test_a_run_killed_between_two_ports_of_one_dbt_stage_leaves_both_whole_and_the_next_run_completes(
    baseline: Baseline, tmp_path: Path
) -> None:
    # One dbt invocation built orders' candidate and sales' from it; orders then published, sales not yet.
    at_kill, new = _killed_at_a_port_then_rerun(baseline, tmp_path, "published", "sales.orders_v1")
    # The producer holds its new batch, the consumer still its last good one: each port whole.
    assert at_kill["sales.orders_v1"] == new["sales.orders_v1"] != baseline.old["sales.orders_v1"]
    assert at_kill["sales.sales_v2"] == baseline.old["sales.sales_v2"] != new["sales.sales_v2"]
    assert at_kill["sales.sales_v1"] == baseline.old["sales.sales_v1"] != new["sales.sales_v1"]
    _assert_each_port_holds_its_last_good_or_new_data(at_kill, baseline.old, new)


def _killed_at_a_port_then_rerun(
    baseline: Baseline, tmp_path: Path, point: str, port: str
) -> tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]]]:
    """Kill a run at `point` of `port`'s publish, run again: each port's checksum at the kill and after."""
    world = scenario(baseline, tmp_path)
    pid, said = kill_at(world, point, MESH_TEST_CRASH_PORT=port)
    assert said["port"] == port
    at_kill = world.checksums()
    output = world.run()
    assert_reclaimed_and_clean(world, pid, output)
    return at_kill, world.checksums()


def _assert_each_port_holds_its_last_good_or_new_data(
    at_kill: dict[str, tuple[int, int]], old: dict[str, tuple[int, int]], new: dict[str, tuple[int, int]]
) -> None:
    for port, checksum in at_kill.items():
        assert checksum in (old[port], new[port]), f"{port} holds neither its last good nor new data"


def test_a_run_killed_during_dbt_is_reclaimed_while_its_orphaned_dbt_finishes(
    baseline: Baseline, tmp_path: Path
) -> None:
    world = scenario(baseline, tmp_path)
    pid, said = kill_at(world, "dbt")
    dbt_pid = said["dbt_pid"]
    # Otherwise the check below would also pass for a dbt that had finished before the kill.
    assert said["dbt_alive_at_kill"], f"the run's dbt (pid {dbt_pid}) was not alive when mesh run was killed"

    # The next run starts at once, while the dead run's dbt may still have the DuckDB file open: it waits
    # for that process, saying so, rather than failing on DuckDB's own lock.
    output = world.run()
    assert_reclaimed_and_clean(world, pid, output)
    assert not pid_alive(dbt_pid), "the dead run's dbt outlived the run that waited for it"
    new = world.checksums()
    for port in ("sales.orders_v1", "sales.sales_v1", "sales.sales_v2"):
        assert new[port] != baseline.old[port]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_stops_the_whole_run_says_interrupted_and_exits_130(
    baseline: Baseline, tmp_path: Path, stop: signal.Signals
) -> None:
    world = scenario(baseline, tmp_path)
    marker = world.root / "crash.json"
    process = world.start(CRASHING_MESH, MESH_TEST_CRASH_AT="dbt", MESH_TEST_CRASH_MARKER=str(marker))
    wait_for_marker(world, process, marker)
    process.send_signal(stop)
    code = process.wait(timeout=BOUND_S)
    output = world.output(process)

    assert code == 130, output[-4000:]
    assert "interrupted" in output
    # Nothing after the interrupted stage was built.
    assert "▶ diagnostics" not in output and "▶ commercial_analytics" not in output
    assert "mesh governance" not in output
    assert (
        world.checksums()["diagnostics.instrument_runs_v1"] == baseline.old["diagnostics.instrument_runs_v1"]
    )
    # And nothing is left holding the pool: the next run completes.
    world.run()


HOLDER = textwrap.dedent(
    """
    import sys, time, uuid
    import dagster as dg
    from dagster._core.storage.dagster_run import DagsterRun
    from mesh_assets.infra.reclaim import Owner

    instance = dg.DagsterInstance.get()
    run_id = str(uuid.uuid4())
    instance.add_run(DagsterRun(job_name="holder", run_id=run_id, status=dg.DagsterRunStatus.STARTED,
                                tags=Owner.current().tags()))
    instance.event_log_storage.claim_concurrency_slot("warehouse", run_id, "holding_step")
    print(run_id, flush=True)
    time.sleep(3600)
    """
)


def test_a_run_waiting_for_the_pool_says_who_holds_it_and_reclaims_the_holder_once_it_dies(
    baseline: Baseline, tmp_path: Path
) -> None:
    world = scenario(baseline, tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER], cwd=REPO, env=world.env(), stdout=subprocess.PIPE, text=True
    )
    try:
        holder_run = (holder.stdout.readline() if holder.stdout else "").strip()
        assert holder_run, "the holder did not claim the slot"
        mesh = world.start(MESH)
        log = sorted(world.root.glob("mesh-*.log"), key=lambda p: p.stat().st_mtime)[-1]
        deadline = time.monotonic() + BOUND_S
        # A live holder: the run waits, and says on what and for whom.
        while f"run {holder_run[:8]}" not in log.read_text():
            assert mesh.poll() is None, f"mesh run did not wait for the held slot:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"mesh run waited silently:\n{log.read_text()}"
            time.sleep(0.1)
        said = log.read_text()
        assert "waiting" in said and "`warehouse` pool slot" in said
        assert f"pid {holder.pid} on " in said and ", alive" in said
        # The holder dies (kill -9): the waiting run reclaims its slot and finishes on its own.
        holder.kill()
        holder.wait()
        assert mesh.wait(timeout=BOUND_S) == 0, log.read_text()[-4000:]
        assert f"process {holder.pid} died; marked failed by mesh run" in log.read_text()
    finally:
        for process in (holder,):
            if process.poll() is None:
                process.kill()
                process.wait()


def test_a_run_killed_while_writing_bindings_leaves_each_readable_and_the_next_run_completes(
    baseline: Baseline, tmp_path: Path
) -> None:
    from binding_specs import fingerprints

    world = scenario(baseline, tmp_path)
    environ = world.env()
    before = fingerprints(environ)
    pid, said = kill_at(world, "binding")
    assert said["folder"].endswith("sales/sales/v2/parquet"), said
    # Killed before the Parquet switch, the table already published and the Iceberg binding (written in
    # parallel) committed or not: each binding is readable, at its last good snapshot or the new one,
    # never a mix.
    at_kill = fingerprints(environ)
    assert at_kill["table"] != before["table"]
    assert at_kill["parquet"] == before["parquet"]
    assert at_kill["iceberg"] in (before["iceberg"], at_kill["table"])

    output = world.run()
    assert_reclaimed_and_clean(world, pid, output)
    after = fingerprints(environ)
    assert after["iceberg"] == after["parquet"] == after["table"]
    # The killed write's hidden folder is gone; the snapshots kept are whole ones.
    snapshots = Path(said["folder"]) / "snapshots"
    assert not [p.name for p in snapshots.iterdir() if p.name.startswith(".")]
