"""Crash points for the crash tests: `mesh run` in a subprocess that stops at a chosen instant.

`python -c "import crash_points; crash_points.main()" run ...` runs the real `mesh` CLI with one
platform function wrapped so that, at the chosen point, it writes a marker file (its own pid and what it
was doing) and then either freezes (so the test kills it right there, with `kill -9`) or carries on
(for dbt: the test kills `mesh run` while the dbt subprocess it started is still working).

Points (`MESH_TEST_CRASH_AT`):
- `landing`: a source extract has just been landed into the warehouse, the step not yet finished;
- `publish`: inside the publish transaction of port `MESH_TEST_CRASH_PORT` (e.g. `sales.sales_v2`),
  after the new batch replaced the port's table and before COMMIT;
- `published`: port `MESH_TEST_CRASH_PORT` has just been published (committed), before the step ends and
  before any port published after it in the same stage (e.g. `sales.orders_v1`, before `sales.sales_v2`);
- `dbt`: the dbt CLI subprocess has started (the marker names its pid); nothing freezes.
- `binding`: a port's bindings are being written: its Parquet snapshot is written aside and `latest` not
  yet switched (its Iceberg binding, written in a parallel thread, may or may not have committed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

FROZEN_S = 3600


def _mark(**facts: object) -> None:
    marker = Path(os.environ["MESH_TEST_CRASH_MARKER"])
    tmp = marker.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), **facts}))
    tmp.rename(marker)  # the test never reads a half-written marker


def _freeze(**facts: object) -> None:
    _mark(**facts)
    time.sleep(FROZEN_S)


def arm(point: str) -> None:
    """Wrap the function where `point` happens."""
    from mesh_assets.infra.warehouse import duckdb as backend

    session = backend.DuckDBSession
    if point == "landing":
        load_extract = session.load_extract

        def landing(self, relation, path, file_format):
            load_extract(self, relation, path, file_format)
            _freeze(point=point, relation=relation.dotted)

        session.load_extract = landing
    elif point == "publish":
        target = os.environ["MESH_TEST_CRASH_PORT"]
        publish, execute = session.publish, session.execute
        publishing = threading.local()

        def wrapped_publish(self, staging, port):
            publishing.port = port.dotted
            try:
                publish(self, staging, port)
            finally:
                publishing.port = None

        def wrapped_execute(self, sql, params=None):
            if sql.strip().upper() == "COMMIT" and getattr(publishing, "port", None) == target:
                _freeze(point=point, port=target)
            return execute(self, sql, params)

        session.publish, session.execute = wrapped_publish, wrapped_execute
    elif point == "published":
        target = os.environ["MESH_TEST_CRASH_PORT"]
        publish_port = session.publish

        def published(self, staging, port):
            publish_port(self, staging, port)
            if port.dotted == target:
                _freeze(point=point, port=target)

        session.publish = published
    elif point == "dbt":
        popen = subprocess.Popen

        class MarkingPopen(popen):  # type: ignore[misc, valid-type]
            def __init__(self, args, *rest, **kwargs):
                super().__init__(args, *rest, **kwargs)
                argv = [str(a) for a in (args if isinstance(args, list | tuple) else [args])]
                # The dbt executable itself: Dagster's compute-log `tail` names paths holding the test's
                # name ("..._during_dbt_i0"), and marking it made the kill land between stages.
                if argv and Path(argv[0]).name == "dbt":
                    _mark(point=point, dbt_pid=self.pid)

        subprocess.Popen = MarkingPopen  # type: ignore[misc]
    elif point == "binding":
        from mesh_assets.assets import binding_files

        switch_latest = binding_files.switch_latest

        def frozen_switch(folder, snapshot):
            _freeze(point=point, folder=str(folder), publish_id=snapshot.publish_id)
            switch_latest(folder, snapshot)

        binding_files.switch_latest = frozen_switch
    else:
        raise SystemExit(f"unknown crash point {point!r}")


def main() -> None:
    """Run the `mesh` CLI with the crash point of `MESH_TEST_CRASH_AT` armed."""
    arm(os.environ["MESH_TEST_CRASH_AT"])
    from mesh_assets.cli.app import main as mesh

    sys.argv = ["mesh", *sys.argv[1:]]
    mesh()
