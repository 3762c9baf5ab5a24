"""`mesh ci` on real changes to the example mesh: prod built once, each change proven in a branch beside it.

Prod is a real `MESH_ENV=prod mesh run` of a git copy of the mesh; each test commits a change on a branch
of that copy and runs `mesh ci --base main` as a subprocess, as a pull request would. Prod's file is
fingerprinted (bytes and every port's rows and checksum) before and after, and must not move.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import duckdb
import pytest
from conftest import REPO, copy_mesh

from mesh_assets.product import addressing
from mesh_assets.product.registry import load_registry

BOUND_S = 600  # only a real hang reaches this: it is a bound, not a timing assertion
MESH = [sys.executable, "-m", "mesh_assets.cli"]
CUSTOMER_360_SQL = "domains/commercial_analytics/products/customer_360/customer_360_v1.sql"
CUSTOMER_MASTER = "domains/customers/products/customer_master"


@dataclass
class Mesh:
    """A git copy of the mesh whose prod has been built, and the data folder every environment shares."""

    root: Path
    data: Path
    sources: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MESH_", "DAGSTER_"))}
        env.update(
            MESH_ROOT=str(self.root),
            MESH_DATA_DIR=str(self.data),
            MESH_SOURCES_DIR=str(self.sources),
            PYTHONPATH=str(REPO),
            **extra,
        )
        return env

    def mesh(self, *args: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*MESH, *args],
            cwd=self.root,
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=BOUND_S,
        )

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    def branch(self, name: str) -> None:
        self.git("checkout", "-q", "-B", name, "main")

    def edit(self, path: str, old: str, new: str) -> None:
        file = self.root / path
        text = file.read_text()
        assert old in text, f"{old!r} not in {path}"
        file.write_text(text.replace(old, new))

    @property
    def prod_file(self) -> Path:
        return self.data / "envs" / "prod" / "mesh.duckdb"

    def fingerprint(self) -> tuple[str, dict[str, tuple[int, int]]]:
        """The prod file's bytes (sha256) and, per port, its rows and an order-independent checksum."""
        digest = hashlib.sha256(self.prod_file.read_bytes()).hexdigest()
        registry = load_registry(self.root)
        ports = [
            addressing.port_relation(p.spec.domain, p.spec.name, port.major)
            for p in registry.products.values()
            for port in p.spec.output_ports
        ]
        with duckdb.connect(str(self.prod_file), read_only=True) as connection:
            sums = {
                port.dotted: tuple(
                    connection.execute(f"SELECT COUNT(*), SUM(hash(t)) FROM {port.sql} t").fetchone()
                )
                for port in ports
            }
        return digest, sums

    def report(self, env: str) -> tuple[str, ElementTree.Element, list[dict]]:
        folder = self.data / "envs" / env / "ci"
        build = folder / "build.json"
        return (
            (folder / "report.md").read_text(),
            ElementTree.parse(folder / "junit.xml").getroot(),
            json.loads(build.read_text()) if build.exists() else [],
        )


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory, small_sources: Path) -> Mesh:
    """The example mesh in a git repository (branch main), built once in prod."""
    base = tmp_path_factory.mktemp("ci")
    mesh = Mesh(copy_mesh(base / "repo"), base / "data", small_sources)
    mesh.git("init", "-q", "-b", "main")
    mesh.git("add", "-A")
    mesh.git("commit", "-q", "-m", "the example mesh")
    built = mesh.mesh("run", MESH_ENV="prod", DAGSTER_HOME=str(base / "prod_home"))
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    return mesh


@pytest.fixture
def clean(prod: Mesh):
    """Each test starts on main with a clean tree, and leaves prod as it found it."""
    prod.git("checkout", "-q", "-f", "main")
    before = prod.fingerprint()
    yield prod
    prod.git("checkout", "-q", "-f", "main")
    assert prod.fingerprint() == before, "mesh ci changed prod"


def test_a_non_breaking_sql_change_passes_builds_only_it_and_its_consumers_and_reports_the_data_diff(
    clean: Mesh,
) -> None:
    clean.branch("feature/round-failure-rate")
    clean.edit(
        CUSTOMER_360_SQL,
        "cast(i.run_failure_rate as double) as run_failure_rate",
        "cast(round(i.run_failure_rate, 1) as double) as run_failure_rate",
    )
    clean.git("commit", "-qam", "round the failure rate")

    done = clean.mesh("ci", "--base", "main", "--env", "ci_round")

    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    report, junit, build = clean.report("ci_round")
    assert "mesh ci passed" in report
    # Only the changed product and its downstream consumer were built; everything else came from prod.
    assert sorted(r["product"] for r in build) == [
        "commercial_analytics.customer_360",
        "commercial_analytics.sales_forecast",
    ]
    assert "deferring to prod: 2 built here, 5 read from prod" in done.stdout
    # The data diff: same customers, some rows changed in exactly the column that was rounded.
    assert "### Data diff: commercial_analytics.customer_360 v1" in report
    section = report.split("### Data diff: commercial_analytics.customer_360 v1")[1].split("### Data diff")[0]
    assert "0 added, 0 removed" in section
    assert "`run_failure_rate`" in section
    assert sum(int(suite.get("failures")) for suite in junit) == 0
    assert {s.get("name") for s in junit} == {"validate", "fitness", "contract diff", "build", "data diff"}


def test_a_column_removal_only_people_read_fails_naming_their_agreements_and_the_version(clean: Mesh) -> None:
    # No consumer product reads city (column lineage), but a person's agreement covers every column.
    clean.branch("feature/drop-city")
    clean.edit(
        f"{CUSTOMER_MASTER}/dataproduct.yaml",
        "      - {name: city, type: string, description: City of the customer's main site.}\n",
        "",
    )
    clean.edit(f"{CUSTOMER_MASTER}/transform.py", '            "city": latest["city"].str.strip(),\n', "")
    clean.git("commit", "-qam", "drop city")

    done = clean.mesh("ci", "--base", "main", "--env", "ci_drop_city")

    assert done.returncode == 1, done.stdout[-4000:]
    report, junit, _ = clean.report("ci_drop_city")
    assert "mesh ci failed" in report
    contract = report.split("### contract diff")[1].split("###")[0]
    assert "customers.customer_master v1 city" in contract
    assert "column_removed" in contract
    assert "new major v2" in contract
    assert "access covers it for person nora.berg@example.com" in contract
    assert "Affects" not in contract.split("city: column_removed")[1].split("\n")[0]
    failures = [case.get("name") for suite in junit for case in suite if case.find("failure") is not None]
    assert failures == ["contract customers.customer_master v1 city column_removed"]
    # The removal is in the data diff too: the column is gone from the branch's port.
    assert "city" in report.split("### Data diff: customers.customer_master v1")[1].split("### Data diff")[0]


def test_removing_a_column_no_consumer_reads_passes_as_no_reader(clean: Mesh) -> None:
    # sales_forecast reads only customer_id and country_code of customer_360 (its declared lineage).
    clean.branch("feature/drop-runs")
    clean.edit(
        "domains/commercial_analytics/products/customer_360/dataproduct.yaml",
        "      - {name: runs_last_90d, type: bigint, nullable: false, "
        "description: Instrument runs in the last 90 days of data.}\n",
        "",
    )
    clean.edit(CUSTOMER_360_SQL, "    coalesce(i.runs_last_90d, 0) as runs_last_90d,\n", "")
    clean.git("commit", "-qam", "drop runs_last_90d")

    done = clean.mesh("ci", "--base", "main", "--env", "ci_drop_runs")

    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    report, _, _ = clean.report("ci_drop_runs")
    contract = report.split("### contract diff")[1].split("###")[0]
    assert "breaking, no reader" in contract
    assert "no consumer product reads it" in contract


def test_a_change_that_fails_a_blocking_check_fails_the_gate_and_keeps_prod(clean: Mesh) -> None:
    clean.branch("feature/lose-names")
    clean.edit(CUSTOMER_360_SQL, "    c.customer_name,\n", "    cast(null as varchar) as customer_name,\n")
    clean.git("commit", "-qam", "lose the names")

    done = clean.mesh("ci", "--base", "main", "--env", "ci_lose_names")

    assert done.returncode == 1, done.stdout[-4000:]
    report, junit, build = clean.report("ci_lose_names")
    assert "mesh ci failed" in report
    by_product = {r["product"]: r for r in build}
    assert by_product["commercial_analytics.customer_360"]["blocking_failed"] >= 1
    build_suite = next(s for s in junit if s.get("name") == "build")
    assert int(build_suite.get("failures")) >= 1


def test_without_a_change_to_any_product_nothing_is_built_and_the_gate_passes(clean: Mesh) -> None:
    clean.branch("feature/docs")
    (clean.root / "NOTES.md").write_text("notes\n")
    clean.git("add", "NOTES.md")
    clean.git("commit", "-qm", "notes")

    done = clean.mesh("ci", "--base", "main", "--env", "ci_docs")

    assert done.returncode == 0, done.stdout[-4000:]
    report, _, build = clean.report("ci_docs")
    assert build == []
    assert "nothing to build: no product changed" in report


def test_two_developers_build_the_same_product_at_once_in_their_own_environments(clean: Mesh) -> None:
    processes = {}
    for name in ("alice", "bob"):
        created = clean.mesh("env", "create", name)
        assert created.returncode == 0, created.stdout + created.stderr
        processes[name] = subprocess.Popen(
            [*MESH, "run", "--product", "customers.customer_master"],
            cwd=clean.root,
            env=clean.env(MESH_ENV=name, DAGSTER_HOME=str(clean.root / ".dagster_home" / name)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    for name, process in processes.items():
        output, _ = process.communicate(timeout=BOUND_S)
        assert process.returncode == 0, f"{name}: {output[-3000:]}"
    for name in ("alice", "bob"):
        with duckdb.connect(str(clean.data / "envs" / name / "mesh.duckdb"), read_only=True) as connection:
            kinds = dict(
                connection.execute(
                    "select table_schema || '.' || table_name, table_type from information_schema.tables "
                    "where table_schema in ('customers', 'sales')"
                ).fetchall()
            )
        # Each built its own table and reads the rest from prod; neither wrote into the other's file.
        assert kinds["customers.customer_master_v1"] == "BASE TABLE"
        assert kinds["sales.orders_v1"] == "VIEW"


def test_a_spec_that_no_longer_parses_is_named_as_the_change_and_its_consumers_as_affected(
    tmp_path: Path,
) -> None:
    # No prod is needed: a mesh that does not validate is never built.
    mesh = Mesh(copy_mesh(tmp_path / "repo"), tmp_path / "data", tmp_path / "sources")
    mesh.git("init", "-q", "-b", "main")
    mesh.git("add", "-A")
    mesh.git("commit", "-q", "-m", "the example mesh")
    mesh.branch("feature/broken-spec")
    mesh.edit(
        f"{CUSTOMER_MASTER}/dataproduct.yaml", "status: active\n", "status: active\nnot_a_field: true\n"
    )
    mesh.git("commit", "-qam", "break the spec")

    done = mesh.mesh("ci", "--base", "main", "--env", "ci_broken")

    assert done.returncode == 1, done.stdout[-4000:] + done.stderr[-2000:]
    assert "changed against main: customers.customer_master; downstream: " in done.stdout
    report, _, build = mesh.report("ci_broken")
    assert "| `customers.customer_master` | `commercial_analytics.customer_360`" in report
    contract = report.split("### contract diff")[1].split("###")[0]
    unreadable = next(line for line in contract.splitlines() if "spec_unreadable" in line)
    # Its consumers are known from the base, where the spec parsed.
    assert "Affects commercial_analytics.customer_360 (" in unreadable
    assert "diagnostics.instrument_runs (" in unreadable
    assert build == [] and "not built: the mesh does not validate" in report
