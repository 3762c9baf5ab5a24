"""Who owns a run, and reclaiming what dead runs hold.

A run killed at any instant (`kill -9`, an OOM kill, a closed laptop lid) cannot mark itself failed nor
free its `warehouse` pool slot, so the next run would wait for that slot forever. Every run the platform
executes therefore records its owner in run tags when it starts: host, pid, and the process's start time
(so a pid reused by an unrelated process is not mistaken for the owner). Before anything waits for the
pool, and while it waits, runs still STARTING/STARTED whose owner is gone are marked failed with the reason
and their slots are freed. A run of another host, or whose process is alive, is left alone: only its own
host can tell whether it lives (in production a run launcher with worker health checks does that).
"""

from __future__ import annotations

import multiprocessing
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import dagster as dg

HOST_TAG = "mesh/host"
PID_TAG = "mesh/pid"
PID_STARTED_TAG = "mesh/pid_started"
LAUNCHED_BY_TAG = "mesh/launched_by"
POOL = "warehouse"
"""Dagster pool of every step that writes to the warehouse (limit 1 on DuckDB: one writer per file); the
builders put their steps in it as `mesh_assets.assets.publish.WAREHOUSE_POOL`."""

Liveness = Literal["alive", "dead", "unknown"]


STARTED_TOLERANCE_S = 0.05
"""How far a process's start time may differ from the one recorded in `mesh/pid_started` and still be the
same process. Tags hold it to 10 ms (`f"{started:.2f}"`, as the /proc reader before psutil wrote them: jiffies
of 10 ms), while psutil gives a float (Linux: the same jiffies, boot time added; macOS: microseconds), so an
equality test would call a live owner dead. 50 ms is five jiffies: far above the rounding, far below the gap
between a pid's owner dying and the kernel handing that pid to a new process (it cycles through the whole
pid space first)."""


def process_started(pid: int) -> float | None:
    """When process `pid` started (epoch seconds), or None when it is gone or the system will not say."""
    # Imported here: reclaim is loaded with every code location, and psutil costs 10-40 ms to import
    # (most of it a garbage collection its import triggers in a process that has Dagster loaded).
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError, ValueError):  # ValueError: a negative pid, from a hand-edited tag
        return None


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (zombies count as gone)."""
    import psutil

    if not psutil.pid_exists(pid):
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except (psutil.Error, OSError):  # it exists, but this user may not inspect it: not ours to call dead
        return True


@dataclass(frozen=True)
class Owner:
    """The process a run lives in: if it is gone, so is the run."""

    host: str
    pid: int
    started: float | None = None

    @classmethod
    def current(cls) -> Owner:
        """This process."""
        pid = os.getpid()
        return cls(socket.gethostname(), pid, process_started(pid))

    @classmethod
    def run_worker(cls) -> Owner:
        """The process orchestrating the current run: the multiprocess executor's parent, else this one."""
        parent = multiprocessing.parent_process()
        if parent is None or parent.pid is None:
            return cls.current()
        return cls(socket.gethostname(), parent.pid, process_started(parent.pid))

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> Owner | None:
        """The owner recorded on a run, or None for a run the platform did not tag."""
        try:
            started = tags.get(PID_STARTED_TAG)
            return cls(tags[HOST_TAG], int(tags[PID_TAG]), float(started) if started else None)
        except (KeyError, ValueError):
            return None

    def tags(self) -> dict[str, str]:
        """Run tags recording this owner."""
        tags = {HOST_TAG: self.host, PID_TAG: str(self.pid)}
        if self.started is not None:
            # 10 ms, the format runs recorded before psutil carry: see STARTED_TOLERANCE_S.
            tags[PID_STARTED_TAG] = f"{self.started:.2f}"
        return tags

    def liveness(self) -> Liveness:
        """`alive`, `dead`, or `unknown` (another host's process: only that host can tell)."""
        if self.host != socket.gethostname():
            return "unknown"
        if not pid_alive(self.pid):
            return "dead"
        if self.started is not None:
            now_started = process_started(self.pid)
            # The pid was reused by a process that started after the owner: the owner is gone.
            if now_started is not None and abs(now_started - self.started) > STARTED_TOLERANCE_S:
                return "dead"
        return "alive"


def record_owner(instance: dg.DagsterInstance, run: dg.DagsterRun | None) -> None:
    """Tag `run` with the process that runs it, unless it already says (`mesh run` tags at launch).

    Called when a run's resources are set up, so runs launched by the daemon or the UI are covered too.
    """
    if run is None or Owner.from_tags(dict(run.tags)) is not None:
        return
    instance.add_run_tags(run.run_id, Owner.run_worker().tags())


@dataclass(frozen=True)
class Holder:
    """A run holding (or queued for) a slot of the pool."""

    run_id: str
    step_key: str
    status: str
    owner: Owner | None
    launched_by: str
    since: datetime | None

    @property
    def liveness(self) -> Liveness:
        """Whether the holder's process lives (`unknown` for untagged runs and other hosts)."""
        return self.owner.liveness() if self.owner else "unknown"

    def describe(self) -> str:
        """One line: which run, which step, which process, alive or dead, since when."""
        who = (
            f"pid {self.owner.pid} on {self.owner.host}, {self.liveness}"
            if self.owner
            else "no recorded process"
        )
        since = f", since {self.since.astimezone().strftime('%H:%M:%S')}" if self.since else ""
        by = f"{self.launched_by} " if self.launched_by else ""
        return f"{by}run {self.run_id[:8]} ({self.status.lower()}) step {self.step_key}: {who}{since}"


def owner_of(instance: dg.DagsterInstance, run: dg.DagsterRun) -> Owner | None:
    """The run's recorded owner; for an untagged run on a local (SQLite) instance, the pid Dagster logged.

    Runs started before the platform tagged owners, or that died before their resources were set up,
    carry no tags. Dagster's first engine event of a run names the process executing it; a SQLite
    instance is only shared by processes of one host, so that pid is this host's.
    """
    owner = Owner.from_tags(dict(run.tags))
    if owner is not None or "sqlite" not in type(instance.run_storage).__name__.lower():
        return owner
    for record in instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=20
    ).records:
        event = record.event_log_entry.dagster_event
        data = event.engine_event_data if event else None
        pid = data.metadata.get("pid") if data and data.metadata else None
        if pid is not None:
            return Owner(socket.gethostname(), int(pid.value))
    return None


def _run_facts(instance: dg.DagsterInstance, run_id: str) -> tuple[str, Owner | None, str, datetime | None]:
    record = instance.get_run_record_by_id(run_id)
    if record is None:
        return "GONE", None, "", None
    tags = dict(record.dagster_run.tags)
    started = record.start_time or record.create_timestamp.timestamp()
    return (
        record.dagster_run.status.value,
        owner_of(instance, record.dagster_run),
        tags.get(LAUNCHED_BY_TAG, ""),
        datetime.fromtimestamp(started, UTC) if started else None,
    )


def pool_holders(instance: dg.DagsterInstance, pool: str = POOL) -> list[Holder]:
    """The runs holding slots of `pool` now, with their owners."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    info = storage.get_concurrency_info(pool)
    holders = []
    for slot in info.claimed_slots:
        status, owner, by, since = _run_facts(instance, slot.run_id)
        holders.append(Holder(slot.run_id, slot.step_key, status, owner, by, since))
    return holders


def waiting_steps(instance: dg.DagsterInstance, run_id: str, pool: str = POOL) -> list[str]:
    """Steps of `run_id` queued for a slot of `pool` and not yet given one."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    info = storage.get_concurrency_info(pool)
    return [p.step_key for p in info.pending_steps if p.run_id == run_id and p.assigned_timestamp is None]


@dataclass(frozen=True)
class Reclaimed:
    """A dead run marked failed, or a finished run's slots freed."""

    run_id: str
    reason: str


def reclaim_dead_runs(instance: dg.DagsterInstance, reclaimer: str) -> list[Reclaimed]:
    """Mark failed every in-progress run of this host whose process is gone, and free dead runs' slots.

    Also frees slots still held by runs that already ended (failed or canceled elsewhere), so nothing
    waits on a run that will never give its slot back. Live runs and other hosts' runs are left alone.
    """
    reclaimed: list[Reclaimed] = []
    in_progress = instance.get_run_records(
        filters=dg.RunsFilter(
            statuses=[
                dg.DagsterRunStatus.NOT_STARTED,
                dg.DagsterRunStatus.STARTING,
                dg.DagsterRunStatus.STARTED,
                dg.DagsterRunStatus.CANCELING,
            ]
        )
    )
    storage = instance.event_log_storage
    for record in in_progress:
        run = record.dagster_run
        owner = owner_of(instance, run)
        if owner is None or owner.liveness() != "dead":
            continue
        reason = f"process {owner.pid} died; marked failed by {reclaimer}"
        instance.report_run_failed(run, message=reason)
        if storage.supports_global_concurrency_limits:
            storage.free_concurrency_slots_for_run(run.run_id)
        reclaimed.append(Reclaimed(run.run_id, reason))
    if storage.supports_global_concurrency_limits:
        for run_id in storage.get_concurrency_run_ids() | {h.run_id for h in pool_holders(instance)}:
            record = instance.get_run_record_by_id(run_id)
            if record is None or record.dagster_run.is_finished:
                storage.free_concurrency_slots_for_run(run_id)
                if all(r.run_id != run_id for r in reclaimed):
                    status = record.dagster_run.status.value.lower() if record else "deleted"
                    reclaimed.append(Reclaimed(run_id, f"run already {status}: freed its slots"))
    return reclaimed


RECLAIM_SENSOR = "mesh_reclaim_dead_runs"


def reclaim_sensor() -> dg.SensorDefinition:
    """The daemon's side of reclaiming: every 30 s, dead runs of this host are failed and their slots freed.

    Dagster's run monitoring cannot see a dead run worker under the default run launcher (it has no
    worker health check), and `mesh run`'s in-process runs are no launcher's at all; this sensor covers
    both under `make dev` and any single-host deployment.
    """

    @dg.sensor(
        name=RECLAIM_SENSOR,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Marks failed the runs whose process died (kill -9, OOM) and frees their pool slots.",
    )
    def _reclaim(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        reclaimed = reclaim_dead_runs(context.instance, reclaimer=f"the {RECLAIM_SENSOR} sensor")
        for item in reclaimed:
            context.log.warning(f"run {item.run_id}: {item.reason}")
        return dg.SkipReason(
            f"reclaimed {len(reclaimed)} run(s): "
            + "; ".join(f"{r.run_id[:8]} {r.reason}" for r in reclaimed)
            if reclaimed
            else "no dead runs"
        )

    return _reclaim


def definitions(registry: object, env: object) -> dg.Definitions:
    """The governance location's share: the reclaim sensor."""
    return dg.Definitions(sensors=[reclaim_sensor()])
