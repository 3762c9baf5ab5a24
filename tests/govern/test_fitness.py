"""Fitness functions, the scorecard asset and `mesh fitness`.

Each characteristic passes on a product of the shipped mesh and fails for a reason a test introduces in a
private copy (`mesh_copy`) or in the facts handed to it; the shipped mesh scores green but for sales.sales,
whose v2 port shows no example values.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import time_machine
import typer
from agreement_edits import agreement, write_agreement
from spec_edits import edit_spec, spec_path
from typer.testing import CliRunner

from mesh_assets.catalog.runtime import PortRuntime, SloStatus
from mesh_assets.cli import fitness as fitness_command
from mesh_assets.contracts import odcs
from mesh_assets.govern import fitness, scorecard
from mesh_assets.infra import environment
from mesh_assets.product import addressing
from mesh_assets.product.registry import Product, Registry, load_registry

C = fitness.Characteristic
CUSTOMER_MASTER = "customers.customer_master"
CUSTOMER_360 = "commercial_analytics.customer_360"
INSTRUMENT_RUNS = "diagnostics.instrument_runs"
ORDERS = "sales.orders"
SALES = "sales.sales"


def verdict(
    root: Path, key: str, characteristic: C, facts: fitness.Facts = fitness.NO_FACTS
) -> fitness.Verdict:
    registry = load_registry(root)
    return fitness.CHARACTERISTICS[characteristic](registry.products[key], registry, facts)


@pytest.fixture(scope="module", autouse=True)
def a_fixed_day() -> Iterator[None]:
    """The shipped mesh judged on one fixed day, whatever day the tests run: its dates (sales v1's sunset
    2027-03-31, agreements' ends and reassessments) turn characteristics red as days pass, by design, and
    tests/product/test_calendar.py walks those days on purpose."""
    with time_machine.travel(datetime(2026, 12, 6, 9, 0), tick=True):
        yield


@pytest.fixture(scope="module")
def shipped(repo_root: Path) -> Registry:
    return load_registry(repo_root)


@pytest.fixture(scope="module")
def card(shipped: Registry) -> fitness.Scorecard:
    return fitness.evaluate(shipped)


# --- the shipped mesh -----------------------------------------------------------------------------------


def test_the_shipped_mesh_scores_green_but_for_sales_whose_v2_shows_no_examples(
    card: fitness.Scorecard,
) -> None:
    unfit = [p for p in card.products if not p.fit]

    assert len(card.products) == 6
    [sales] = unfit
    assert sales.key == SALES
    [failure] = sales.failures
    assert failure.characteristic == C.SELF_DESCRIBING and not failure.mandatory
    assert "v2 shows no example values" in failure.reason and "sales.orders" in failure.reason
    assert card.passed  # self-describing is not mandatory: the mesh passes the gate


def test_mandatory_characteristics_are_platform_config(card: fitness.Scorecard) -> None:
    assert card.mandatory == fitness.MANDATORY
    assert {r.characteristic for r in card.products[0].results if r.mandatory} == fitness.MANDATORY
    assert [r.characteristic for r in card.products[0].results] == list(C)


# --- self-describing ------------------------------------------------------------------------------------


def test_self_describing_passes_with_purpose_descriptions_and_examples(repo_root: Path) -> None:
    result = verdict(repo_root, CUSTOMER_MASTER, C.SELF_DESCRIBING)

    assert result.passed
    assert "all 10 columns described" in result.reason and "customer_id" in result.reason


def test_self_describing_counts_examples_a_column_takes_from_its_input(repo_root: Path) -> None:
    result = verdict(repo_root, CUSTOMER_360, C.SELF_DESCRIBING)

    assert result.passed
    assert "customer_id (from customers.customer_master)" in result.reason


def test_self_describing_fails_a_port_without_examples(repo_root: Path) -> None:
    result = verdict(repo_root, SALES, C.SELF_DESCRIBING)

    assert not result.passed
    assert "v2 shows no example values: none of its 6 columns has `examples`" in result.reason


def test_self_describing_fails_a_purpose_that_says_too_little(mesh_copy: Path) -> None:
    edit_spec(mesh_copy, ORDERS, lambda d: d["description"].update(purpose="ERP orders."))

    result = verdict(mesh_copy, ORDERS, C.SELF_DESCRIBING)

    assert not result.passed and "its purpose is 11 characters" in result.reason


def test_self_describing_fails_descriptions_that_only_restate_the_name(mesh_copy: Path) -> None:
    edit_spec(mesh_copy, ORDERS, lambda d: d["output_ports"][0]["columns"][2].update(description="Order ts"))
    edit_spec(mesh_copy, ORDERS, lambda d: d["description"].update(limitations="None."))

    result = verdict(mesh_copy, ORDERS, C.SELF_DESCRIBING)

    assert not result.passed
    assert "only restate the name: v1.order_ts" in result.reason
    assert "its limitations say nothing ('None.')" in result.reason


# --- addressable ----------------------------------------------------------------------------------------


def test_addressable_passes_with_unique_stable_uris(repo_root: Path) -> None:
    result = verdict(repo_root, SALES, C.ADDRESSABLE)

    assert result.passed
    assert "mesh://sales/sales/v2, mesh://sales/sales/v1: unique" in result.reason


def test_addressable_fails_when_two_ports_claim_one_uri(shipped: Registry) -> None:
    original = shipped.products[ORDERS]
    twin = Product(original.spec, original.path.parent.parent / "orders_twin" / "dataproduct.yaml")
    registry = Registry(root=shipped.root, products={ORDERS: original, "sales.orders_twin": twin})

    result = fitness.addressable(original, registry)

    assert not result.passed
    assert "mesh://sales/orders/v1 is claimed by 2 ports" in result.reason
    assert "table sales.orders_v1 is claimed by 2 ports" in result.reason


def test_addressable_fails_when_the_spec_does_not_live_where_its_address_says(mesh_copy: Path) -> None:
    folder = spec_path(mesh_copy, ORDERS).parent
    folder.rename(folder.with_name("sales_orders"))

    registry = load_registry(mesh_copy)
    result = fitness.addressable(registry.products[ORDERS], registry)

    assert not result.passed
    assert "lives in domains/sales/products/sales_orders but names itself sales.orders" in result.reason


# --- discoverable ---------------------------------------------------------------------------------------


def test_discoverable_passes_with_key_words_when_no_catalog_is_built(repo_root: Path) -> None:
    result = verdict(repo_root, ORDERS, C.DISCOVERABLE)

    assert result.passed
    assert result.reason == "key words sales, orders, erp, revenue; catalog not checked (not built)"


def test_discoverable_fails_with_fewer_than_two_key_words(mesh_copy: Path) -> None:
    edit_spec(mesh_copy, ORDERS, lambda d: d.update(tags=["orders"]))

    result = verdict(mesh_copy, ORDERS, C.DISCOVERABLE)

    assert not result.passed and "1 key word(s)" in result.reason


def test_discoverable_passes_when_the_built_catalog_finds_it_by_each_key_word(
    shipped: Registry, tmp_path: Path
) -> None:
    from mesh_assets.catalog.site import build_site

    build_site(shipped, tmp_path / "catalog")
    facts = fitness.Facts(catalog=fitness.CatalogFacts.read(tmp_path / "catalog"))

    result = fitness.discoverable(shipped.products[ORDERS], shipped, facts)

    assert result.passed and "found by each key word" in result.reason


def test_discoverable_fails_when_the_catalog_does_not_list_it_or_is_stale(
    shipped: Registry, tmp_path: Path
) -> None:
    entry = {"key": ORDERS, "title": "Orders", "text": "", "tags": ["sales"], "columns": []}
    stale = fitness.CatalogFacts(
        tmp_path, datetime(2026, 1, 1, tzinfo=UTC), {ORDERS: entry}, frozenset({ORDERS})
    )
    empty = fitness.CatalogFacts(tmp_path, datetime(2026, 1, 1, tzinfo=UTC), {}, frozenset())

    missing = fitness.discoverable(shipped.products[ORDERS], shipped, fitness.Facts(catalog=empty))
    outdated = fitness.discoverable(shipped.products[ORDERS], shipped, fitness.Facts(catalog=stale))

    assert not missing.passed and "not in the catalog built 2026-01-01" in missing.reason
    assert "mesh catalog build" in missing.reason
    assert not outdated.passed and "does not find it by erp, revenue (stale)" in outdated.reason


# --- secure ---------------------------------------------------------------------------------------------


def test_secure_passes_with_readers_denials_and_masked_pii(repo_root: Path) -> None:
    result = verdict(repo_root, CUSTOMER_MASTER, C.SECURE)

    assert result.passed
    assert "readers analyst, data_scientist, sales_ops; denied external_partner" in result.reason
    assert "PII (contact_email, contact_phone) mask" in result.reason


def test_secure_fails_without_an_access_policy(mesh_copy: Path) -> None:
    edit_spec(mesh_copy, ORDERS, lambda d: d["access_policy"].update(allowed_roles=[], denied_roles=[]))

    result = verdict(mesh_copy, ORDERS, C.SECURE)

    assert not result.passed and "no access policy: no role may read it" in result.reason


def test_secure_fails_a_catch_all_role(mesh_copy: Path) -> None:
    edit_spec(mesh_copy, ORDERS, lambda d: d["access_policy"]["allowed_roles"].append("everyone"))

    result = verdict(mesh_copy, ORDERS, C.SECURE)

    assert not result.passed and "everyone, which means everybody" in result.reason


def test_secure_fails_pii_in_a_product_classified_below_confidential(mesh_copy: Path) -> None:
    edit_spec(mesh_copy, CUSTOMER_MASTER, lambda d: d.update(classification="internal"))

    result = verdict(mesh_copy, CUSTOMER_MASTER, C.SECURE)

    assert not result.passed
    assert "holds PII (contact_email, contact_phone) but is classified internal" in result.reason


def test_secure_fails_a_column_that_looks_personal_but_is_not_marked_pii(mesh_copy: Path) -> None:
    edit_spec(mesh_copy, CUSTOMER_MASTER, lambda d: d["output_ports"][0]["columns"][3].update(pii=False))

    result = verdict(mesh_copy, CUSTOMER_MASTER, C.SECURE)

    assert not result.passed and "v1.contact_email look(s) like personal data" in result.reason


def test_secure_fails_pii_read_in_clear_text_and_republished_unmarked(mesh_copy: Path) -> None:
    write_agreement(mesh_copy, CUSTOMER_MASTER, agreement(INSTRUMENT_RUNS, pii_in_clear=True))
    column = {"name": "site_contact", "type": "string", "description": "Who to call at the site."}

    def republish(data: dict[str, Any]) -> None:
        data.update(classification="confidential")
        data["output_ports"][0]["columns"].append({**column, "name": "contact_phone"})

    edit_spec(mesh_copy, INSTRUMENT_RUNS, republish)

    result = verdict(mesh_copy, INSTRUMENT_RUNS, C.SECURE)

    assert not result.passed
    assert "v1.contact_phone come(s) in clear text from PII of customers.customer_master" in result.reason


# --- trustworthy ----------------------------------------------------------------------------------------


def test_trustworthy_passes_with_slos_and_blocking_checks(repo_root: Path) -> None:
    result = verdict(repo_root, ORDERS, C.TRUSTWORTHY)

    assert result.passed
    assert "freshness 24h, availability 99.0%" in result.reason
    assert "SLO adherence not measured" in result.reason


def test_trustworthy_fails_when_the_schema_check_only_warns(mesh_copy: Path) -> None:
    edit_spec(mesh_copy, ORDERS, lambda d: d["output_ports"][0]["quality"].update(schema_severity="warn"))

    result = verdict(mesh_copy, ORDERS, C.TRUSTWORTHY)

    assert not result.passed and "v1's schema check(s) only warn" in result.reason


def _runtime(status: str) -> dict[dg.AssetKey, PortRuntime]:
    slo = SloStatus("freshness", "updated within 24h", "last publish 3d 2h ago", status)
    return {addressing.port_key("sales", "orders", 1): PortRuntime(slos=[slo])}


def test_trustworthy_fails_when_the_instance_shows_an_slo_breached(repo_root: Path) -> None:
    result = verdict(repo_root, ORDERS, C.TRUSTWORTHY, fitness.Facts(runtime=_runtime("breached")))

    assert not result.passed
    assert (
        "SLO breached now: v1 freshness (last publish 3d 2h ago; target updated within 24h)" in result.reason
    )


def test_trustworthy_passes_when_the_instance_shows_every_slo_met(repo_root: Path) -> None:
    result = verdict(repo_root, ORDERS, C.TRUSTWORTHY, fitness.Facts(runtime=_runtime("met")))

    assert result.passed and "every measured SLO met" in result.reason


# --- interoperable --------------------------------------------------------------------------------------


def test_interoperable_passes_with_standard_types_keys_and_a_valid_contract(repo_root: Path) -> None:
    result = verdict(repo_root, CUSTOMER_MASTER, C.INTEROPERABLE)

    assert result.passed
    assert "v1 key (customer_id)" in result.reason and "ODCS contracts valid for 1 port(s)" in result.reason
    assert result.reason.endswith("; tables only")


def test_interoperable_counts_the_bindings_a_port_is_served_in_beyond_its_table(repo_root: Path) -> None:
    result = verdict(repo_root, "sales.sales", C.INTEROPERABLE)

    assert result.passed and result.reason.endswith("2 binding(s) beyond the table: v2 iceberg, v2 parquet")


def test_interoperable_fails_a_timestamp_name_typed_as_text(mesh_copy: Path) -> None:
    edit_spec(mesh_copy, ORDERS, lambda d: d["output_ports"][0]["columns"][11].update(type="string"))

    result = verdict(mesh_copy, ORDERS, C.INTEROPERABLE)

    assert not result.passed and "v1.updated_at is named like a timestamp but typed string" in result.reason


def test_interoperable_fails_a_business_key_typed_differently(mesh_copy: Path) -> None:
    edit_spec(mesh_copy, INSTRUMENT_RUNS, lambda d: d["output_ports"][0]["columns"][3].update(type="bigint"))

    result = verdict(mesh_copy, INSTRUMENT_RUNS, C.INTEROPERABLE)

    assert not result.passed
    assert "v1.customer_id is typed bigint, but customer_id is a business key (string in" in result.reason


def test_interoperable_fails_a_nullable_key_column(mesh_copy: Path) -> None:
    edit_spec(mesh_copy, ORDERS, lambda d: d["output_ports"][0]["columns"][0].update(nullable=True))

    result = verdict(mesh_copy, ORDERS, C.INTEROPERABLE)

    assert not result.passed and "key column(s) order_id are nullable" in result.reason


def test_interoperable_fails_a_contract_the_odcs_schema_refuses(
    repo_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = odcs.contract

    def broken(*args: Any, **kwargs: Any) -> dict[str, Any]:
        document = real(*args, **kwargs)
        document["schema"][0]["properties"][0]["logicalType"] = "text"  # not an ODCS logical type
        return document

    monkeypatch.setattr(odcs, "contract", broken)

    result = verdict(repo_root, ORDERS, C.INTEROPERABLE)

    assert not result.passed
    assert (
        "v1's ODCS contract is invalid: schema/0/properties/0/logicalType: 'text' is not one of"
        in result.reason
    )


def _mutations() -> list[tuple[str, Callable[[dict[str, Any]], None]]]:
    def column(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
        return lambda d: change(d["schema"][0]["properties"][1])

    return [
        ("unknown logical type", column(lambda c: c.update(logicalType="text"))),
        ("a column id with a space", column(lambda c: c.update(id="order id"))),
        ("an unknown column key", column(lambda c: c.update(colour="red"))),
        ("a required key dropped", lambda d: d.pop("apiVersion")),
        ("an unknown root key", lambda d: d.update(owner="me")),
        ("a custom property without value", lambda d: d["customProperties"][0].pop("value")),
        ("a wrong type deep down", column(lambda c: c.update(required="yes"))),
        ("a bad quality metric", lambda d: d["schema"][0]["quality"][0].update(metric="bogus")),
        ("a role without role", lambda d: d["roles"][0].pop("role")),
    ]


@pytest.mark.parametrize(("what", "mutate"), _mutations(), ids=[m[0] for m in _mutations()])
def test_the_fast_odcs_check_refuses_what_the_full_schema_refuses(
    shipped: Registry, what: str, mutate: Callable[[dict[str, Any]], None]
) -> None:
    product = shipped.products[ORDERS]
    document = copy.deepcopy(odcs.contract(product, product.spec.output_ports[0], shipped))
    assert fitness.odcs_errors(document) == [] == odcs.schema_errors(document)

    mutate(document)

    assert odcs.schema_errors(document), f"{what}: the mutation should break the contract"
    assert fitness.odcs_errors(document) == odcs.schema_errors(document)


def test_the_odcs_check_validates_each_served_contract_once_per_evaluation(shipped: Registry) -> None:
    before = fitness.odcs_validations()
    fitness.evaluate(shipped)
    served = sum(len(fitness.served_ports(p, shipped)) for p in shipped.products.values())

    assert 0 < served == fitness.odcs_validations() - before


# --- the scorecard asset --------------------------------------------------------------------------------


def test_the_scorecard_asset_materializes_with_one_check_per_product_and_an_html_page(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESH_CATALOG_DIR", str(isolated / "site" / "catalog"))
    env = environment.resolve()
    registry = load_registry(env.root)
    defs = scorecard.definitions(registry, env)

    with dg.DagsterInstance.get() as instance:
        result = defs.resolve_implicit_global_asset_job_def().execute_in_process(instance=instance)

    assert result.success
    [materialization] = result.asset_materializations_for_node("mesh__scorecard")
    assert materialization.asset_key == scorecard.ASSET_KEY
    table = materialization.metadata["scorecard"].value
    assert "| sales | active | 🔴 | 🟢 | 🟢 | 🟢 | 🟢 | 🟢 |" in table
    assert "| orders | active | 🟢 | 🟢 | 🟢 | 🟢 | 🟢 | 🟢 |" in table
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(checks) == {scorecard.check_name(k) for k in registry.products} and len(checks) == 6
    assert not checks["fitness__sales__sales"].passed
    assert checks["fitness__sales__sales"].severity == dg.AssetCheckSeverity.ERROR
    assert (
        "FAIL: v2 shows no example values"
        in checks["fitness__sales__sales"].metadata["self_describing"].value
    )
    assert all(e.passed for name, e in checks.items() if name != "fitness__sales__sales")
    page = isolated / "site" / "scorecard.html"
    assert materialization.metadata["path"] == dg.MetadataValue.path(str(page))
    html = page.read_text()
    assert html.startswith("<!doctype html>") and "<script" not in html
    assert 'href="catalog/products/sales.sales.html"' in html
    assert "v2 shows no example values" in html


def test_the_scorecard_asset_runs_after_every_port_and_the_catalog(repo_root: Path) -> None:
    registry = load_registry(repo_root)
    env = environment.Environment(
        target="duckdb", root=repo_root, duckdb_path=repo_root / "data" / "x.duckdb"
    )

    specs = scorecard.definitions(registry, env).resolve_all_asset_specs()

    [spec] = [s for s in specs if s.key == scorecard.ASSET_KEY]

    deps = {dep.asset_key for dep in spec.deps}
    assert scorecard.CATALOG_KEY in deps and dg.AssetKey(["sales", "sales", "v2"]) in deps
    assert spec.automation_condition is not None
    # Once per cascade, after the last port of it (mesh_assets/assets/automation.py).
    assert spec.automation_condition.get_label() == "eager, after upstream settles"


# --- mesh fitness ---------------------------------------------------------------------------------------


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    fitness_command.register(app)

    @app.callback()
    def mesh() -> None:
        """Keeps `fitness` a sub-command, as in the real `mesh` command."""

    return app


def test_mesh_fitness_exits_0_on_the_shipped_mesh_and_shows_the_red_product(
    cli: typer.Typer, monkeypatch: pytest.MonkeyPatch, repo_root: Path
) -> None:
    monkeypatch.setenv("MESH_ROOT", str(repo_root))

    result = CliRunner().invoke(cli, ["fitness", "--specs-only"])

    assert result.exit_code == 0, result.output
    assert "red sales.sales self-describing: v2 shows no example values" in result.output
    assert "6 products: 5 fit, 1 with red characteristics, 0 failing a mandatory one" in result.output


def test_mesh_fitness_exits_1_when_a_product_fails_a_mandatory_characteristic(
    cli: typer.Typer, mesh_copy: Path
) -> None:
    edit_spec(mesh_copy, ORDERS, lambda d: d["access_policy"].update(allowed_roles=[], denied_roles=[]))

    result = CliRunner().invoke(cli, ["fitness", "--specs-only"])

    assert result.exit_code == 1
    assert "mandatory sales.orders secure: no access policy" in result.output


def test_mesh_fitness_json_is_for_ci(cli: typer.Typer, mesh_copy: Path, tmp_path: Path) -> None:
    edit_spec(mesh_copy, ORDERS, lambda d: d["access_policy"].update(allowed_roles=[], denied_roles=[]))

    result = CliRunner().invoke(
        cli, ["fitness", "--json", "--specs-only", "--html", str(tmp_path / "card.html")]
    )

    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["passed"] is False
    orders = next(p for p in data["products"] if p["key"] == ORDERS)
    assert orders["mandatory_failures"] == ["secure"]
    assert orders["characteristics"]["secure"]["passed"] is False
    assert orders["characteristics"]["addressable"] == {
        "passed": True,
        "mandatory": True,
        "reason": orders["characteristics"]["addressable"]["reason"],
    }
    assert sorted(data["mandatory"]) == sorted(c.value for c in fitness.MANDATORY)
    assert (tmp_path / "card.html").exists()


def test_mesh_fitness_reads_the_instance_and_catalog_when_asked(
    cli: typer.Typer, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESH_CATALOG_DIR", str(isolated / "no_catalog"))

    result = CliRunner().invoke(cli, ["fitness", "--json"])

    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["facts"] == {"catalog": "not checked", "instance": "SLO status of every port"}
    trustworthy = data["products"][0]["characteristics"]["trustworthy"]
    assert "no SLO measured yet (not yet published)" in trustworthy["reason"]


def test_loading_the_governance_modules_imports_nothing_heavy() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from mesh_assets.product import access; "
        "from mesh_assets.govern import backdoors, fitness, grants, scorecard; "
        "import mesh_assets.cli.fitness, mesh_assets.cli.grants; "
        "heavy = ('sqlglot', 'jsonschema', 'jinja2', 'open_data_contract_standard', 'fakesnow', 'rich'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    output = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout

    assert output.strip() == "[]"


def test_the_scorecard_page_escapes_what_the_specs_say() -> None:
    reason = 'purpose says <script>alert("x")</script> & more'
    results = tuple(
        fitness.Result(c, c != fitness.Characteristic.SELF_DESCRIBING, reason, c in fitness.MANDATORY)
        for c in fitness.CHARACTERISTICS
    )
    product = fitness.ProductFitness("sales.orders", "sales", "orders", "active", results)
    card = fitness.Scorecard((product,), fitness.MANDATORY, {"catalog": "not checked"})

    page = card.html('x"><b')

    assert "<script" not in page and "<b" not in page.replace("<body", "")
    assert "&lt;script&gt;" in page and "&amp; more" in page
    assert page.count("<tr>") == 2  # the header row and the product's
