"""The mesh as production runs it: one code server per location, the Dagster daemon, a source update.

Every other test executes in-process, one run at a time. This one starts the real topology in
subprocesses (`dagster code-server start` per location of `workspace.yaml`, a workspace of `grpc_server`
entries, `dagster-daemon run`) on a private instance (the repo's `dagster.yaml`: SQLite), DuckDB file and
catalog folder, publishes one source-aligned product with `mesh run --domain customers` against the same
instance, and lets the automation sensors carry the update through the mesh. It then checks the cascade by
causality, not by time: every run succeeded, each downstream port and governance asset refreshed exactly
once, each after everything it reads, and the catalog and scorecard show the new publish.

The harness is `tests/topology_harness.py`; `test_production_topology_postgres.py` runs the same topology
on the production instance (`deploy/dagster.yaml`, Postgres). Every process the test starts is in its own
process group and is stopped (SIGTERM, then SIGKILL) whether the test passes or fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import topology_harness as harness
from topology_harness import REPO, Topology

# End to end and a few minutes long, but never skipped: `make test` runs it.
pytestmark = pytest.mark.slow


@pytest.fixture
def topology(tmp_path: Path, small_sources: Path) -> Iterator[Topology]:
    """A private SQLite instance (the repo's dagster.yaml), DuckDB file and catalog folder."""
    with harness.deployment(tmp_path, small_sources, REPO / "dagster.yaml") as deployment:
        yield deployment


def test_one_source_update_refreshes_each_consumer_and_governance_once_after_its_inputs(
    topology: Topology,
) -> None:
    harness.build_mesh(topology)
    daemon_started = harness.start_services(topology)

    instance = dg.DagsterInstance.from_config(str(topology.home))
    try:
        # Every sensor has evaluated the built mesh once, so the update is news to each of them.
        harness.wait_for_first_ticks(
            instance, topology, daemon_started, [*harness.AUTOMATION_SENSORS, "mesh_slo_monitor"]
        )
        runs_before = harness.runs_before_the_update(instance)

        topology.run("publish", [harness.MESH, "run", "--domain", "customers"])
        harness.check_cascade(instance, topology, runs_before, harness.latest_publish(instance))
    finally:
        instance.dispose()

    # Stopping is part of production: every process exits on SIGTERM (none needs SIGKILL).
    assert topology.stop() == [], "processes ignored SIGTERM"
