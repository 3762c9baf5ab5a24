"""Whether a run's owner process lives, read through psutil: on any OS, with tags recorded before psutil.

`mesh/pid_started` was written by a /proc reader at 10 ms resolution; psutil reports a float. A live owner
must stay alive under either, a pid reused by a later process must not pass for the owner, and a zombie
(exited, not yet reaped) is gone.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesh_assets.infra.reclaim import (
    HOST_TAG,
    PID_STARTED_TAG,
    PID_TAG,
    STARTED_TOLERANCE_S,
    Owner,
    pid_alive,
    process_started,
)


def proc_started_as_the_old_code_recorded_it(pid: int) -> str:
    """`mesh/pid_started` as the /proc reader wrote it: boot time plus start jiffies, 10 ms resolution."""
    lines = Path("/proc/stat").read_text().splitlines()
    boot = next(float(line.split()[1]) for line in lines if line.startswith("btime "))
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return f"{round(boot + int(fields[19]) / os.sysconf('SC_CLK_TCK'), 2):.2f}"


@pytest.fixture
def exited_child() -> Iterator[int]:
    """A child that has exited and is not reaped yet: a zombie, with no wall-clock wait."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    # WNOWAIT: block until it exits but leave it unreaped, so it is a zombie for certain.
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
    yield child.pid
    child.wait()


def test_this_process_is_alive_and_has_a_start_time() -> None:
    assert pid_alive(os.getpid())
    started = process_started(os.getpid())
    assert started is not None and 0 < started <= time.time()
    assert Owner.current().liveness() == "alive"


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="the old tags were only written on Linux")
def test_an_owner_tagged_by_the_old_proc_reader_is_still_alive() -> None:
    tags = {
        HOST_TAG: socket.gethostname(),
        PID_TAG: str(os.getpid()),
        PID_STARTED_TAG: proc_started_as_the_old_code_recorded_it(os.getpid()),
    }
    owner = Owner.from_tags(tags)
    assert owner is not None
    assert owner.liveness() == "alive"
    assert abs(owner.started - process_started(os.getpid())) < STARTED_TOLERANCE_S  # type: ignore[operator]


def test_tags_written_now_keep_the_10_ms_format_and_read_back_alive() -> None:
    tags = Owner.current().tags()
    assert len(tags[PID_STARTED_TAG].split(".")[1]) == 2
    assert Owner.from_tags(tags).liveness() == "alive"  # type: ignore[union-attr]


def test_a_pid_reused_by_a_process_that_started_later_is_not_the_owner() -> None:
    now_started = process_started(os.getpid())
    assert now_started is not None
    recorded = Owner(socket.gethostname(), os.getpid(), now_started - 1.0)
    assert recorded.liveness() == "dead"


def test_a_zombie_counts_as_gone(exited_child: int) -> None:
    assert not pid_alive(exited_child)
    assert Owner(socket.gethostname(), exited_child).liveness() == "dead"


def test_a_reaped_pid_is_gone_and_has_no_start_time() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not pid_alive(child.pid)
    assert process_started(child.pid) is None


def test_another_hosts_process_is_unknown_not_dead() -> None:
    assert Owner("some-other-host.example", 1).liveness() == "unknown"


def test_a_hand_edited_negative_pid_has_no_start_time() -> None:
    assert process_started(-5) is None
    assert not pid_alive(-5)
