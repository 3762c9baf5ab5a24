"""The deployment files say one thing: what docs/deployment.md tells users to copy is what a test runs.

`deploy/dagster.yaml` is the production instance `test_production_topology_postgres.py` runs against a real
PostgreSQL server; here it is held equal to the block docs/deployment.md shows, its policy blocks to the
repo's own `dagster.yaml`, and the container deployment (deploy/Dockerfile, deploy/docker-compose.yaml,
deploy/workspace.yaml, never executed: no Docker engine on CI) to `workspace.yaml`'s locations and to the
variables the instance reads. Static checks, milliseconds each.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import REPO
from postgres_server import PostgresServer

DEPLOY = REPO / "deploy"
INSTANCE = DEPLOY / "dagster.yaml"
POLICY_BLOCKS = ("telemetry", "freshness", "concurrency", "run_monitoring")


def _load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _env_names(node: Any) -> set[str]:
    """Every variable a Dagster config reads with `{env: NAME}`."""
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]}
        return set().union(*(_env_names(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_env_names(v) for v in node)) if node else set()
    return set()


def _compose() -> dict[str, Any]:
    return _load(DEPLOY / "docker-compose.yaml")


def test_the_docs_show_the_tested_instance_file_verbatim() -> None:
    docs = (REPO / "docs" / "deployment.md").read_text()
    blocks = re.findall(r"^```yaml\n(.*?)^```$", docs, flags=re.S | re.M)
    assert INSTANCE.read_text() in blocks, (
        "docs/deployment.md must show deploy/dagster.yaml verbatim in a ```yaml block: "
        "users copy the docs, the test runs the file"
    )


def test_the_production_instance_is_postgres_through_psycopg2_with_the_repos_policy() -> None:
    production, local = _load(INSTANCE), _load(REPO / "dagster.yaml")
    database = production["storage"]["postgres"]["postgres_db"]
    # SQLAlchemy 2.1 maps a bare `postgresql` scheme to psycopg 3, on which run workers' NOTIFY fails.
    assert database["scheme"] == "postgresql+psycopg2"
    # Dagster refuses `event_log_storage` beside `storage`: the local SQLite block must not be copied.
    assert "event_log_storage" not in production
    for block in POLICY_BLOCKS:
        assert production[block] == local[block], f"deploy/dagster.yaml's `{block}` differs from the repo's"


def test_without_the_scheme_sqlalchemy_would_pick_psycopg_3_whose_notify_fails() -> None:
    # The contrast behind `scheme: postgresql+psycopg2`. With psycopg 3 installed, every stored event fails
    # at `NOTIFY run_events, $1` (a syntax error: psycopg 3 binds server-side); reproduced by hand, not here,
    # since psycopg 3 is not a dependency.
    from dagster_postgres.utils import get_conn_string
    from sqlalchemy.engine import make_url

    database = _load(INSTANCE)["storage"]["postgres"]["postgres_db"]
    login = {"username": "u", "hostname": "h", "db_name": "d"}
    assert make_url(get_conn_string(**login)).get_dialect().driver == "psycopg"
    assert make_url(get_conn_string(**login, scheme=database["scheme"])).get_dialect().driver == "psycopg2"


def test_the_instance_reads_the_variables_the_test_server_and_compose_set() -> None:
    read = _env_names(_load(INSTANCE))
    harness = PostgresServer("h", 1, Path("/"), "u", "p", "d").env()
    assert read == set(harness), "tests/postgres_server.py must set every variable deploy/dagster.yaml reads"
    for name, service in _compose()["services"].items():
        if name != "postgres":
            assert read <= set(service["environment"]), f"compose service {name} lacks {read}"


def test_the_image_installs_the_tested_instance_with_only_a_run_launcher_added() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert 'cat deploy/dagster.yaml deploy/dagster.docker.yaml > "$DAGSTER_HOME/dagster.yaml"' in dockerfile
    assert "'.[postgres,docker]'" in dockerfile
    image_instance = yaml.safe_load(INSTANCE.read_text() + (DEPLOY / "dagster.docker.yaml").read_text())
    assert {k: v for k, v in image_instance.items() if k != "run_launcher"} == _load(INSTANCE)
    launcher = image_instance["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_docker", "DockerRunLauncher")
    # Each run's container gets what it needs from the launching daemon or webserver, which must have it.
    for name in ("daemon", "webserver"):
        assert set(launcher["config"]["env_vars"]) <= set(_compose()["services"][name]["environment"])


def _locations() -> dict[str, str]:
    """workspace.yaml: location name -> module."""
    return {
        entry["python_module"]["location_name"]: entry["python_module"]["module_name"]
        for entry in _load(REPO / "workspace.yaml")["load_from"]
    }


def test_compose_serves_every_location_of_the_workspace_each_from_its_own_code_server() -> None:
    services = _compose()["services"]
    servers = _load(DEPLOY / "workspace.yaml")["load_from"]
    assert [s["grpc_server"]["location_name"] for s in servers] == list(_locations())
    for server in (s["grpc_server"] for s in servers):
        location, host, port = server["location_name"], server["host"], str(server["port"])
        assert host in services, f"deploy/workspace.yaml names {host}, which compose does not define"
        command = services[host]["command"]
        assert command[:3] == ["dagster", "code-server", "start"]
        flags = dict(zip(command[3::2], command[4::2], strict=True))
        assert flags == {
            "-h": "0.0.0.0",
            "-p": port,
            "-m": _locations()[location],
            "--location-name": location,
        }, f"{host} does not serve {location} where deploy/workspace.yaml looks for it"
    code_servers = {name for name, s in services.items() if "code-server" in s.get("command", [])}
    assert code_servers == {s["grpc_server"]["host"] for s in servers}


@pytest.mark.parametrize("service", ["webserver", "daemon"])
def test_the_webserver_and_daemon_load_the_compose_workspace(service: str) -> None:
    command = _compose()["services"][service]["command"]
    assert command[command.index("-w") + 1] == "deploy/workspace.yaml"
