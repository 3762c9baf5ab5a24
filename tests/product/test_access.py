"""Access policies as code: who may read which port, the refusals, and PII protection per reader.

Policy decisions are pure functions of the specs (`mesh_assets.product.access`); refusals surface through the
registry and `mesh validate` in a private copy of the mesh (`mesh_copy`); PII protection is run for real
on an in-memory DuckDB database, through the SQL and Python builders' own read paths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
import yaml
from agreement_edits import agreement, with_agreements, write_agreement
from spec_edits import edit_spec, spec_path

from mesh_assets.assets.builders import python as python_builder
from mesh_assets.assets.builders import sql as sql_builder
from mesh_assets.govern.validate import validate
from mesh_assets.infra.warehouse.duckdb import DuckDBSession
from mesh_assets.product import access
from mesh_assets.product.addressing import Relation
from mesh_assets.product.errors import SpecIssue
from mesh_assets.product.registry import Registry, load_registry
from mesh_assets.product.spec import DataProductSpec, PiiHandling

CUSTOMER_MASTER = "customers.customer_master"
CUSTOMER_360 = "commercial_analytics.customer_360"
SALES = "sales.sales"
SALES_FORECAST = "commercial_analytics.sales_forecast"
ORDERS = "sales.orders"


# --- helpers ------------------------------------------------------------------------------------------


def issues_at(issues: list[SpecIssue], path: Path, field: str) -> list[SpecIssue]:
    return [i for i in issues if i.file.resolve() == path.resolve() and i.field == field]


def spec_of(registry: Registry, key: str) -> DataProductSpec:
    return registry.products[key].spec


def with_policy(spec: DataProductSpec, **policy: Any) -> DataProductSpec:
    """A copy of `spec` with access_policy fields replaced (validated like a spec file)."""
    data = spec.model_dump(mode="json", by_alias=True)
    data["access_policy"].update(policy)
    return DataProductSpec.model_validate(data)


def with_access(spec: DataProductSpec, **fields: Any) -> DataProductSpec:
    data = spec.model_dump(mode="json", by_alias=True)
    data.update(fields)
    return DataProductSpec.model_validate(data)


@pytest.fixture(scope="module")
def shipped(repo_root: Path) -> Registry:
    return load_registry(repo_root)


@pytest.fixture
def port_db(shipped: Registry) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB holding a published customer_master v1 port with two customers."""
    connection = duckdb.connect()
    connection.execute('CREATE SCHEMA "customers"')
    connection.execute(
        'CREATE TABLE "customers"."customer_master_v1" AS SELECT * FROM (VALUES '
        "('C1', 'Lab One', 'lab', 'ana@lab.ch', '+41611234567', 'CH', 'Basel', "
        "TIMESTAMP '2026-01-01', TIMESTAMP '2026-02-01', 1), "
        "('C2', 'Clinic Two', 'clinic', NULL, NULL, 'DE', 'Berlin', "
        "TIMESTAMP '2026-01-02', TIMESTAMP '2026-02-02', 2)) AS t(customer_id, customer_name, customer_type, "
        "contact_email, contact_phone, country_code, city, created_at, updated_at, crm_versions)"
    )
    return connection


# --- people and tools: roles --------------------------------------------------------------------------


def test_an_allowed_role_may_read_and_says_why(shipped: Registry) -> None:
    decision = access.role_may_read(spec_of(shipped, ORDERS), "finance")

    assert decision.allowed
    assert "allowed by sales.orders" in decision.reason


def test_a_denied_role_is_refused(shipped: Registry) -> None:
    decision = access.role_may_read(spec_of(shipped, ORDERS), "external_partner")

    assert not decision.allowed
    assert "denied" in decision.reason


def test_deny_wins_over_allow(shipped: Registry) -> None:
    spec = with_policy(
        spec_of(shipped, ORDERS), allowed_roles=["analyst", "finance"], denied_roles=["finance"]
    )

    assert not access.role_may_read(spec, "finance")
    assert access.reader_roles(spec) == ["analyst"]


def test_a_role_the_policy_does_not_name_is_refused(shipped: Registry) -> None:
    decision = access.role_may_read(spec_of(shipped, ORDERS), "marketing")

    assert not decision.allowed
    assert "not among the roles" in decision.reason


def test_secure_by_default_a_port_with_no_allowed_roles_is_readable_by_no_one(shipped: Registry) -> None:
    spec = with_policy(spec_of(shipped, ORDERS), allowed_roles=[], denied_roles=[])

    assert access.reader_roles(spec) == []
    for role in ["analyst", "finance", "sales_ops", access.PII_ROLE, "public"]:
        decision = access.role_may_read(spec, role)
        assert not decision.allowed, role
    assert "secure by default" in access.role_may_read(spec, "analyst").reason


def test_a_catch_all_role_never_reads(shipped: Registry) -> None:
    spec = with_policy(spec_of(shipped, ORDERS), allowed_roles=["public", "analyst"])

    assert access.reader_roles(spec) == ["analyst"]
    assert not access.role_may_read(spec, "PUBLIC")


# --- consumer products: approval ----------------------------------------------------------------------


def test_a_consumer_reading_an_approval_required_port_without_an_agreement_is_refused_naming_the_request(
    mesh_copy: Path,
) -> None:
    edit_spec(mesh_copy, SALES, lambda d: d["access"].update(mode="approval_required"))

    issues = load_registry(mesh_copy).errors

    [refusal] = issues_at(issues, spec_path(mesh_copy, CUSTOMER_360), "input_ports[1].product")
    assert "sales.sales v1 requires approval" in refusal.message
    assert "commercial_analytics.customer_360 holds no access agreement on it" in refusal.message
    assert "ana.lopez@example.com" in refusal.fix and "sales_data" in refusal.fix
    assert "#sales-data" in refusal.fix
    assert (
        "mesh access request sales.sales@v1 --for commercial_analytics.customer_360 --purpose" in refusal.fix
    )
    # Every consumer without an agreement is refused, not only the first one found.
    assert issues_at(issues, spec_path(mesh_copy, SALES_FORECAST), "input_ports[0].product")


def test_a_consumer_with_an_agreement_in_force_may_read_an_approval_required_port(mesh_copy: Path) -> None:
    edit_spec(mesh_copy, SALES, lambda d: d["access"].update(mode="approval_required"))
    write_agreement(mesh_copy, SALES, agreement(CUSTOMER_360, major=1))
    write_agreement(mesh_copy, SALES, agreement(SALES_FORECAST, major=2))

    assert load_registry(mesh_copy).errors == []


def test_an_agreement_still_awaiting_its_decision_lets_nobody_read_and_says_so(mesh_copy: Path) -> None:
    edit_spec(mesh_copy, SALES, lambda d: d["access"].update(mode="approval_required"))
    write_agreement(mesh_copy, SALES, agreement(CUSTOMER_360, major=1, approval="requested"))

    issues = load_registry(mesh_copy).errors

    [refusal] = issues_at(issues, spec_path(mesh_copy, CUSTOMER_360), "input_ports[1].product")
    assert f"agreement sales.sales/{CUSTOMER_360} is requested" in refusal.message


def test_an_agreement_on_another_major_version_does_not_open_this_one(shipped: Registry) -> None:
    spec = with_agreements(
        with_access(spec_of(shipped, SALES), access={"mode": "approval_required"}), CUSTOMER_360
    )

    assert access.consumer_may_read(spec, CUSTOMER_360, major=1).allowed
    refused = access.consumer_may_read(spec, CUSTOMER_360, major=2)
    assert not refused.allowed and "(for v1)" in refused.reason
    assert not access.consumer_may_read(spec, SALES_FORECAST).allowed


def test_an_open_product_may_be_read_by_any_product(shipped: Registry) -> None:
    decision = access.consumer_may_read(spec_of(shipped, CUSTOMER_MASTER), "anything.at_all")

    assert decision.allowed
    assert "open" in decision.reason


# --- policy lint in mesh validate ---------------------------------------------------------------------


def test_a_role_both_allowed_and_denied_is_a_validation_error(mesh_copy: Path) -> None:
    path = edit_spec(mesh_copy, ORDERS, lambda d: d["access_policy"].update(denied_roles=["finance"]))

    [issue] = issues_at(validate(mesh_copy).errors, path, "access_policy.denied_roles")
    assert "finance" in issue.message and "both allowed and denied" in issue.message


def test_a_catch_all_allowed_role_is_a_validation_error(mesh_copy: Path) -> None:
    path = edit_spec(mesh_copy, ORDERS, lambda d: d["access_policy"]["allowed_roles"].append("public"))

    [issue] = issues_at(validate(mesh_copy).errors, path, "access_policy.allowed_roles[4]")
    assert "means everybody" in issue.message


def test_a_role_name_that_cannot_be_a_warehouse_role_is_a_validation_error(mesh_copy: Path) -> None:
    path = edit_spec(mesh_copy, ORDERS, lambda d: d["access_policy"]["allowed_roles"].append("sales ops"))

    [issue] = issues_at(validate(mesh_copy).errors, path, "access_policy.allowed_roles[4]")
    assert "'sales ops' is not a role name" in issue.message


# --- PII: what a reader without the privilege sees ----------------------------------------------------


def test_a_consumer_without_the_pii_privilege_reads_pii_masked_and_nulls_stay_null(
    shipped: Registry, port_db: duckdb.DuckDBPyConnection
) -> None:
    producer, consumer = spec_of(shipped, CUSTOMER_MASTER), spec_of(shipped, CUSTOMER_360)
    sql = access.read_sql(consumer, producer, producer.output_ports[0])

    rows = port_db.execute(
        f"SELECT customer_id, contact_email, contact_phone, city FROM {sql} AS c ORDER BY 1"
    ).fetchall()

    assert rows == [("C1", "***", "***", "Basel"), ("C2", None, None, "Berlin")]


def test_hashed_pii_is_a_sha256_pseudonym_that_still_joins(
    shipped: Registry, port_db: duckdb.DuckDBPyConnection
) -> None:
    producer = with_policy(spec_of(shipped, CUSTOMER_MASTER), pii_handling="hash")
    sql = access.read_sql(spec_of(shipped, CUSTOMER_360), producer, producer.output_ports[0])

    [(email,)] = port_db.execute(f"SELECT contact_email FROM {sql} AS c WHERE customer_id = 'C1'").fetchall()

    [(expected,)] = port_db.execute("SELECT sha256('ana@lab.ch')").fetchall()
    assert email == expected and len(email) == 64


def test_removed_pii_columns_are_not_there_for_the_consumer(
    shipped: Registry, port_db: duckdb.DuckDBPyConnection
) -> None:
    producer = with_policy(spec_of(shipped, CUSTOMER_MASTER), pii_handling="remove")
    sql = access.read_sql(spec_of(shipped, CUSTOMER_360), producer, producer.output_ports[0])

    columns = [d[0] for d in port_db.execute(f"SELECT * FROM {sql} AS c").description]

    assert "contact_email" not in columns and "contact_phone" not in columns
    assert columns[:3] == ["customer_id", "customer_name", "customer_type"]


def test_a_consumer_granted_pii_in_clear_and_classified_at_least_as_sensitively_reads_it_in_clear(
    shipped: Registry,
) -> None:
    producer = with_agreements(spec_of(shipped, CUSTOMER_MASTER), CUSTOMER_360, pii_in_clear=True)
    consumer = with_access(spec_of(shipped, CUSTOMER_360), classification="confidential")

    assert access.pii_privilege(producer, consumer).allowed
    assert access.read_sql(consumer, producer, producer.output_ports[0]) == '"customers"."customer_master_v1"'


def test_a_consumer_granted_pii_in_clear_but_classified_below_the_producer_still_reads_it_protected(
    shipped: Registry,
) -> None:
    producer = with_agreements(spec_of(shipped, CUSTOMER_MASTER), CUSTOMER_360, pii_in_clear=True)
    consumer = spec_of(shipped, CUSTOMER_360)  # internal < confidential

    decision = access.pii_privilege(producer, consumer)

    assert not decision.allowed and "classified internal" in decision.reason
    assert access.protection(producer, producer.output_ports[0], consumer) == {
        "contact_email": PiiHandling.MASK,
        "contact_phone": PiiHandling.MASK,
    }


def test_a_port_without_pii_is_read_as_is(shipped: Registry) -> None:
    producer = spec_of(shipped, ORDERS)

    assert (
        access.read_sql(spec_of(shipped, SALES), producer, producer.output_ports[0]) == '"sales"."orders_v1"'
    )


def test_the_sql_builder_reads_a_pii_port_through_the_protection(shipped: Registry) -> None:
    rendered = sql_builder.render(
        shipped.products["diagnostics.instrument_runs"], shipped, "instrument_runs_v1"
    )

    assert 'CASE WHEN "contact_email" IS NULL THEN NULL ELSE \'***\' END AS "contact_email"' in rendered.sql
    assert 'FROM "customers"."customer_master_v1")' in rendered.sql
    assert dg.AssetKey(["customers", "customer_master", "v1"]) in rendered.deps


def test_the_python_builder_hands_a_consumer_pii_masked(
    mesh_copy: Path, port_db: duckdb.DuckDBPyConnection
) -> None:
    # A Python consumer of the customer master, without the PII privilege.
    folder = mesh_copy / "domains" / "commercial_analytics" / "products" / "contact_list"
    folder.mkdir()
    spec = yaml.safe_load(spec_path(mesh_copy, SALES_FORECAST).read_text())
    spec.update(
        name="contact_list", status="active", input_ports=[{"product": CUSTOMER_MASTER, "version": "^1"}]
    )
    spec["output_ports"][0].update(version="1.0.0", primary_key=["customer_id"], quality={})
    spec["output_ports"][0]["columns"] = [
        {"name": "customer_id", "type": "string", "nullable": False, "description": "The customer."},
        {"name": "contact_email", "type": "string", "description": "Whatever the port gave."},
    ]
    (folder / "dataproduct.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (folder / "transform.py").write_text(
        "def contact_list_v1(inputs):\n"
        "    return inputs['customers.customer_master'][['customer_id', 'contact_email']]\n"
    )
    registry = load_registry(mesh_copy)
    product = registry.products["commercial_analytics.contact_list"]
    build, deps = python_builder.port_builder(product, registry, product.spec.output_ports[0])
    session = DuckDBSession(port_db)
    candidate = Relation("commercial_analytics_internal", "contact_list_v1__candidate")
    port_db.execute('CREATE SCHEMA "commercial_analytics_internal"')

    build(dg.build_asset_context(), session, candidate)

    rows = port_db.execute(f"SELECT * FROM {candidate.sql} ORDER BY 1").fetchall()
    assert rows == [("C1", "***"), ("C2", None)]
    assert deps == [dg.AssetKey(["customers", "customer_master", "v1"])]
