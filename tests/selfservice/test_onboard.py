"""`mesh new domain <name> --from-dbt <path>`: an existing dbt project onboarded, validated and built.

The tests bring their own small dbt project on DuckDB (`tests/fixtures/dbt_shop`): seeds for raw data,
staging models whose tests use the legacy `tests:` key, and marts using `data_tests:` (with the newer
`arguments:` form), a custom generic test and a relationships test; `customers` is `access: public`,
`orders` is marked with `config.meta.mesh.port`. Onboarding happens in a private copy of the repository;
the build runs `mesh run` in a subprocess whose `PYTHONPATH` is the copy (a new domain is not importable
from this process).
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from conftest import REPO, copy_mesh, mesh_command_dir
from typer.testing import CliRunner

from mesh_assets.cli.app import app
from mesh_assets.govern.validate import validate
from mesh_assets.product.registry import load_registry
from mesh_assets.selfservice.contract_derivation import declared_type, logical_type
from mesh_assets.selfservice.dbt_manifest import build_empty, relation_types
from mesh_assets.selfservice.onboard import OnboardError, OnboardRequest, plan_onboarding
from mesh_assets.selfservice.onboard_plan import Plan
from mesh_assets.selfservice.project_edits import (
    remove_model_entries,
    rewrite_refs,
    rewrite_unit_test_inputs,
)
from mesh_assets.selfservice.templates import dbt_profiles

FIXTURE = Path(__file__).parent.parent / "fixtures" / "dbt_shop"
STEWARD = ["--steward", "shop.lead@example.com", "--owner-team", "shop_data"]


def mesh(*args: str) -> tuple[int, str]:
    """Run `mesh <args>` in-process; exit code and output (unwrapped)."""
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def files(folder: Path) -> dict[str, str]:
    """Every file under `folder` with its content (build output aside)."""
    skip = {"target", "logs", "__pycache__"}
    return {
        str(f.relative_to(folder)): f.read_text(errors="replace")
        for f in sorted(folder.rglob("*"))
        if f.is_file() and not skip & set(f.relative_to(folder).parts)
    }


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the mesh with its workspace.yaml, resolved as the root."""
    root = copy_mesh(tmp_path / "repo")
    shutil.copy(REPO / "workspace.yaml", root / "workspace.yaml")
    monkeypatch.setenv("MESH_ROOT", str(root))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    return root


@pytest.fixture(scope="module")
def shop_manifest(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict]:
    """The fixture project parsed and built empty once (as onboarding does), for the planning tests."""
    project = tmp_path_factory.mktemp("shop") / "dbt_shop"
    shutil.copytree(FIXTURE, project)
    (project / "profiles.yml").write_text(dbt_profiles("dbt_shop", "shop_internal"))
    scratch = tmp_path_factory.mktemp("scratch")
    manifest, problem = build_empty(project, scratch)
    assert problem is None, problem
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    return manifest, relation_types(scratch / "onboard.duckdb", models)


def plan(shop_manifest: tuple[dict[str, Any], dict], manifest_edit=None, **request: Any) -> Plan:
    manifest, types = shop_manifest
    if manifest_edit is not None:
        manifest = copy.deepcopy(manifest)
        manifest_edit(manifest)
    return plan_onboarding(manifest, types, "shop", OnboardRequest(domain="shop", path=FIXTURE, **request))


# --- the whole journey -----------------------------------------------------------------------------


@pytest.mark.slow
def test_the_shop_project_is_onboarded_validated_and_built(
    repo: Path, isolated: Path, tmp_path: Path
) -> None:
    fixture_before = files(FIXTURE)
    code, out = mesh("new", "domain", "shop", "--from-dbt", str(FIXTURE), *STEWARD)
    assert code == 0, out
    text = " ".join(out.split())
    assert "published as the product stg_orders" in text, "a staging model two products read"
    assert files(FIXTURE) == fixture_before, "a copy: the team's project is untouched"

    registry = load_registry(repo)
    products = {p.spec.name: p.spec for p in registry.domain_products("shop")}
    assert set(products) == {"customers", "orders", "stg_orders", "stg_payments"}

    customers = products["customers"]
    port = customers.output_ports[0]
    assert port.model == "customers" and port.version == "1.0.0" and port.primary_key == ["customer_id"]
    columns = {c.name: c for c in port.columns}
    assert [c.name for c in port.columns] == [
        "customer_id",
        "first_name",
        "last_name",
        "first_order",
        "most_recent_order",
        "number_of_orders",
        "customer_lifetime_value",
    ]
    assert columns["customer_id"].type == "integer" and not columns["customer_id"].nullable
    assert columns["customer_id"].unique
    assert columns["first_name"].pii and not columns["first_name"].nullable, "meta.pii and not_null"
    assert columns["last_name"].pii and columns["last_name"].nullable
    assert columns["first_order"].type == "date"
    assert columns["number_of_orders"].type == "bigint"
    value = columns["customer_lifetime_value"]
    assert (value.type, value.precision, value.scale) == ("decimal", 12, 2)
    assert value.description == "Total paid by the customer over all orders, in EUR."
    assert customers.description.purpose.startswith("One record per customer")
    assert customers.classification == "confidential", "it holds PII"
    assert customers.owner.steward == "shop.lead@example.com" and customers.owner.team == "shop_data"
    assert customers.transformation.kind == "dbt" and customers.transformation.project == "shop"
    assert sorted(customers.transformation.internals) == ["raw_customers", "stg_customers"]
    assert {i.product for i in customers.product_inputs} == {"shop.stg_orders", "shop.stg_payments"}

    orders = products["orders"].output_ports[0]
    assert orders.primary_key == ["order_id"]
    rules = {r.check_name: r for r in orders.quality.rules}
    assert rules["references__customer_id"].port == "shop.customers", "relationships -> references"
    assert rules["accepted_values__status"].severity == "warn", "`arguments:` form, severity kept"
    assert "{{ this }}" in rules["not_negative_amount"].query, "a custom generic test, as a SQL rule"
    assert {i.product for i in products["orders"].product_inputs} == {
        "shop.customers",
        "shop.stg_orders",
        "shop.stg_payments",
    }
    staging = products["stg_orders"].output_ports[0]
    assert staging.primary_key == ["order_id"], "from the legacy `tests:` key"
    assert [r.check_name for r in staging.quality.rules] == ["accepted_values__status"]
    assert products["stg_orders"].transformation.internals == ["raw_orders"], "a seed as its source"

    project = repo / "dbt_projects" / "shop"
    marts = (project / "models" / "marts" / "schema.yml").read_text()
    assert "# The current `data_tests:` key." in marts, "the team's comments survive"
    assert "name: customers" not in marts, "the port models' YAML moved to the specs"
    staging_yaml = yaml.safe_load((project / "models" / "staging" / "schema.yml").read_text())
    assert [m["name"] for m in staging_yaml["models"]] == ["stg_customers"]
    assert "{{ source('port_shop', 'stg_orders_v1') }}" in (project / "models/marts/orders.sql").read_text()
    assert "local:" in (project / "profiles.yml").read_text()
    assert "domains.shop.definitions" in (repo / "workspace.yaml").read_text()
    report = validate(repo)
    assert not report.errors, [e.render(repo) for e in report.errors]

    env = {**os.environ, "PYTHONPATH": str(repo)}
    run = subprocess.run(
        [str(mesh_command_dir() / "mesh"), "run", "--domain", "shop"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    with duckdb.connect(str(isolated / "mesh.duckdb"), read_only=True) as con:
        counts = {
            name: con.execute(f"SELECT COUNT(*) FROM shop.{name}_v1").fetchone()[0]
            for name in ("customers", "orders", "stg_orders", "stg_payments")
        }
    assert counts == {"customers": 8, "orders": 12, "stg_orders": 12, "stg_payments": 14}

    # Every asset key is namespaced by the domain: the shop's `orders` never meets sales' `orders`.
    import dagster as dg

    keys = {key.to_user_string() for key in dg.DagsterInstance.get().get_asset_keys()}
    assert all(key.startswith("shop/") for key in keys), sorted(keys)
    assert {
        "shop/orders/v1",
        "shop/stg_orders/internal/raw_orders",
        "shop/customers/internal/customers",
    } <= keys


# --- refusals ------------------------------------------------------------------------------------


def test_a_project_dbt_cannot_parse_is_refused_with_dbts_message_and_undone(
    repo: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken_shop"
    shutil.copytree(FIXTURE, broken)
    model = broken / "models" / "marts" / "customers.sql"
    model.write_text(model.read_text().replace("ref('stg_customers')", "ref('stg_custmers')"))
    before, project_before = files(repo), files(broken)
    # Linked, so undoing must also restore the team's own folder.
    code, out = mesh("new", "domain", "shop", "--from-dbt", str(broken), "--link", *STEWARD)
    assert code == 1, out
    text = " ".join(out.split())
    assert "dbt could not parse the project" in text
    assert "depends on a node named 'stg_custmers' which was not found" in text, "dbt's own message"
    assert files(repo) == before and not (repo / "dbt_projects" / "shop").exists()
    assert files(broken) == project_before


def test_bad_requests_are_refused_before_anything_is_written(repo: Path, tmp_path: Path) -> None:
    before = files(repo)
    for args, expected in [
        (["shop", "--from-dbt", str(tmp_path)], "is not a dbt project: it has no dbt_project.yml"),
        (["sales", "--from-dbt", str(FIXTURE)], "domain 'sales' already exists"),
        (["Shop", "--from-dbt", str(FIXTURE)], "not a valid domain name"),
        (["shop", "--from-dbt", str(FIXTURE), "--project", "sales"], "dbt_projects/sales already exists"),
        (["shop", "--from-dbt", str(FIXTURE), "--primary-key", "orders"], "write <model>=<column>"),
    ]:
        code, out = mesh("new", "domain", *args, *STEWARD)
        assert code == 2, (args, out)
        assert expected in " ".join(out.split()), (args, out)
    assert files(repo) == before


def _unmarked(manifest: dict[str, Any]) -> None:
    for node in manifest["nodes"].values():
        node["access"] = "protected"
        node["meta"] = {}
        node.get("config", {})["meta"] = {}


def test_without_marked_models_or_ports_it_names_the_candidates(shop_manifest) -> None:
    with pytest.raises(OnboardError, match="no model is marked as an output port") as refused:
        plan(shop_manifest, _unmarked)
    assert "candidates (models nothing else reads): customers, orders" in str(refused.value)
    with pytest.raises(OnboardError, match="no model 'ordrs' in the project; did you mean orders"):
        plan(shop_manifest, ports=["ordrs"])
    with pytest.raises(OnboardError, match="'raw_orders' is a seed or snapshot"):
        plan(shop_manifest, ports=["raw_orders"])


def test_a_port_selection_replaces_the_markers(shop_manifest) -> None:
    selected = plan(shop_manifest, _unmarked, ports=["customers"])
    assert [p.product for p in selected.ports] == ["customers"]
    internals = selected.ports[0].internals
    assert "orders" in internals and "raw_payments" in internals, "everything else is its internal"
    assert not selected.rewrites


def test_a_port_without_a_key_needs_one_from_the_command_line(shop_manifest) -> None:
    def no_tests(manifest: dict[str, Any]) -> None:
        manifest["nodes"] = {k: v for k, v in manifest["nodes"].items() if v["resource_type"] != "test"}

    with pytest.raises(OnboardError, match=r"pass --primary-key customers=<column>"):
        plan(shop_manifest, no_tests, ports=["customers"])
    keyed = plan(shop_manifest, no_tests, ports=["customers"], primary_keys={"customers": ["customer_id"]})
    assert keyed.ports[0].primary_key == ["customer_id"]


def test_types_the_contract_cannot_hold_are_refused_with_the_cast_to_write_and_hugeint_widens() -> None:
    assert logical_type("DECIMAL(18,4)") == {"type": "decimal", "precision": 18, "scale": 4}
    assert logical_type("VARCHAR") == {"type": "string"}
    assert logical_type("HUGEINT") == {"type": "decimal", "precision": 38, "scale": 0, "widened": "HUGEINT"}
    assert "cast it as timestamp" in logical_type("TIMESTAMP WITH TIME ZONE")["problem"]
    assert declared_type("numeric(10, 2)") == {"type": "decimal", "precision": 10, "scale": 2}
    assert declared_type("text") == {"type": "string"}
    assert declared_type("geography") is None


def test_port_entries_leave_the_yaml_and_refs_point_at_published_ports() -> None:
    text = (
        "version: 2\n\n# shared comment\nmodels:\n"
        "  # the customers mart\n  - name: customers\n    description: c\n"
        "    columns:\n      - name: id\n        data_tests: [unique]\n\n"
        "  # staging, kept\n  - name: stg\n    description: s\n"
    )
    kept = remove_model_entries(text, {"customers"})
    assert "# shared comment" in kept and "# staging, kept" in kept and "customers" not in kept
    assert yaml.safe_load(kept)["models"] == [{"name": "stg", "description": "s"}]
    assert yaml.safe_load(remove_model_entries(text, {"customers", "stg"})).get("models") in (
        None,
        [],
    )
    sql = "select * from {{ ref('orders') }} join {{ ref(\"shop\", \"orders\") }} join {{ ref('orders_x') }}"
    rewritten = rewrite_refs(sql, {"orders": "source('port_shop', 'orders_v1')"})
    assert rewritten.count("source('port_shop', 'orders_v1')") == 2 and "ref('orders_x')" in rewritten


def test_a_unit_tests_given_model_is_pointed_at_the_port_its_model_now_reads() -> None:
    text = (
        "unit_tests:\n  - name: t\n    description: \"it's the customer's\"\n    model: order_items\n"
        "    given:\n      - input: ref('stg_products')\n        rows: [{product_id: 1}]\n"
        "      - input: ref(\"stg_supplies\")\n"
    )
    rewritten = rewrite_unit_test_inputs(text, {"stg_products": "source('port_shop', 'stg_products_v1')"})
    assert "      - input: source('port_shop', 'stg_products_v1')\n" in rewritten
    assert "ref(\"stg_supplies\")" in rewritten and "it's the customer's" in rewritten, "the rest as it was"


class Answers:
    """A scripted person at the terminal: an empty answer takes the default offered."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, str | None]] = []

    def ask(self, label: str, default: str | None) -> str:
        self.asked.append((label, default))
        answer = self.answers.pop(0)
        return (default or "") if answer == "" else answer

    def tell(self, message: str) -> None:
        raise AssertionError(f"unexpected refusal of an answer: {message}")


def test_a_person_at_a_terminal_picks_the_ports_and_keys(shop_manifest) -> None:
    manifest, types = shop_manifest
    edited = copy.deepcopy(manifest)
    _unmarked(edited)
    edited["nodes"] = {k: v for k, v in edited["nodes"].items() if v["resource_type"] != "test"}
    person = Answers("", "customer_id", "order_id", "order_id", "payment_id")
    chosen = plan_onboarding(edited, types, "shop", OnboardRequest(domain="shop", path=FIXTURE), person)
    assert person.asked[0][1] == "customers,orders", "the models nothing else reads, offered"
    keys = {p.product: p.primary_key for p in chosen.ports}
    assert keys == {
        "customers": ["customer_id"],
        "orders": ["order_id"],
        "stg_orders": ["order_id"],
        "stg_payments": ["payment_id"],
    }
    assert [label.split(" (")[0] for label, _ in person.asked[1:]] == [
        "Primary key of customers",
        "Primary key of orders",
        "Primary key of stg_orders",
        "Primary key of stg_payments",
    ]
