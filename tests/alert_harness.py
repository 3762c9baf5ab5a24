"""The alert test harness: a real HTTP receiver on loopback, a stand-in for the sensor daemon, and a
private DAGSTER_HOME. Shared by the SLO alert tests and the sunset alert tests.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from mesh_assets import observe as slo
from mesh_assets.infra import environment
from mesh_assets.infra.warehouse.duckdb import DuckDBWarehouse
from mesh_assets.observe import sensors
from mesh_assets.product.registry import load_registry

REPO = Path(__file__).resolve().parents[1]
DAGSTER_URL = "http://dagster.example.test"


# --- a real HTTP receiver -----------------------------------------------------------------------------------


HANG_S = 600
"""How long a held request waits for `Receiver.release` before answering anyway: only a hung test."""

ALERT_TIMEOUT_S = "30"
"""The alert client's timeout: generous, so a loaded machine never turns an answered request into a
timeout. The slow-receiver test lowers it only while the receiver is certain not to answer."""


class Receiver:
    """A webhook receiver on loopback that records the JSON bodies it accepted.

    `mode`: `ok` (200), `fail` (HTTP 500) or `slow` (holds each request unanswered until `release` is
    set, so it answers only after the client gave up, however loaded the machine; `answered_late`
    counts the held requests answered so far).
    """

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.attempts = 0
        self.answered_late = 0
        self.mode = "ok"
        self.release = threading.Event()
        self._count = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver._count:  # handlers run on concurrent threads
                    receiver.attempts += 1
                if receiver.mode == "fail":
                    self.send_response(500)
                    self.end_headers()
                    return
                if receiver.mode == "slow":
                    receiver.release.wait(timeout=HANG_S)
                    with receiver._count:
                        receiver.answered_late += 1
                else:
                    receiver.bodies.append(body)
                try:
                    self.send_response(200)
                    self.end_headers()
                    self.wfile.write(b"ok")
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the slow mode's client already gave up

            def log_message(self, *args: Any) -> None:  # keep the test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def take(self) -> list[dict[str, Any]]:
        """The bodies received since the last call."""
        taken, self.bodies = self.bodies, []
        return taken


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """A running receiver, every alert routed to it, with a short backoff (and a generous timeout)."""
    server = Receiver()
    server.thread.start()
    monkeypatch.setenv("MESH_ALERT_WEBHOOK_URL", server.url)
    monkeypatch.setenv("MESH_DAGSTER_URL", DAGSTER_URL)
    monkeypatch.setenv("MESH_ALERT_TIMEOUT_S", ALERT_TIMEOUT_S)
    monkeypatch.setenv("MESH_ALERT_BACKOFF_S", "0.01")
    monkeypatch.setenv("MESH_ALERT_TRIES", "3")
    monkeypatch.delenv("MESH_SLACK_TOKEN", raising=False)
    yield server
    server.release.set()  # let held requests finish before the server closes
    server.server.shutdown()
    server.server.server_close()


# --- the daemon, played -------------------------------------------------------------------------------------


class Daemon:
    """Evaluates a sensor the way the sensor daemon does: persisted cursor in, asset events written."""

    def __init__(self, defs: dg.Definitions, sensor_name: str) -> None:
        self.defs = defs
        self.sensor = defs.resolve_sensor_def(sensor_name)
        self.resources = {"warehouse": DuckDBWarehouse(path=str(environment.resolve().duckdb_path))}
        self.cursor: str | None = None
        self.instance = dg.DagsterInstance.get()

    def tick(self) -> dg.SensorResult:
        context = dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, definitions=self.defs, resources=self.resources
        )
        result = self.sensor(context)
        assert isinstance(result, dg.SensorResult)
        for event in result.asset_events:
            self.instance.report_runless_asset_event(event)
        self.cursor = result.cursor
        return result

    def restart(self) -> None:
        """A new process: a new instance object on the same DAGSTER_HOME, nothing in memory."""
        self.instance.dispose()
        sensors.forget_cached_state()
        self.instance = dg.DagsterInstance.get()

    @property
    def state(self) -> dict[str, Any]:
        return json.loads(self.cursor or "{}")


@pytest.fixture
def home(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private DAGSTER_HOME, with nothing cached from other tests.

    On a RAM disk when there is one: the SQLite instance syncs every event to disk, which costs more
    than everything else these tests do.
    """
    sensors.forget_cached_state()
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(prefix="mesh-slo-", dir=shm if shm.is_dir() else isolated))
    shutil.copy(REPO / "dagster.yaml", folder / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(folder))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def slo_definitions() -> dg.Definitions:
    """The SLO feature of the `mesh` location, with the warehouse resource the location provides."""
    env = environment.resolve()
    registry = load_registry(env.root)
    return dg.Definitions.merge(
        slo.definitions(registry, env),
        dg.Definitions(resources={"warehouse": DuckDBWarehouse(path=str(env.duckdb_path))}),
    )
