"""Output ports: the Dagster metadata, tags, kinds and FreshnessPolicy derived from a product's spec.

The shipped specs are read with `load_registry`; ports are built both directly (`port_spec`) and through a
domain's code location (`build_domain`), which is what the Dagster UI and the daemon load.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import time_machine

from mesh_assets.assets.location import build_domain
from mesh_assets.assets.ports import PortContext, freshness_policy, port_spec, refresh_cron
from mesh_assets.product.registry import Product, load_registry
from mesh_assets.product.spec import DataProductSpec, FreshnessSlo

CUSTOMER_MASTER_V1 = dg.AssetKey(["customers", "customer_master", "v1"])
SALES_V1 = dg.AssetKey(["sales", "sales", "v1"])
SALES_V2 = dg.AssetKey(["sales", "sales", "v2"])
DUCKDB = PortContext(target="duckdb", database="mesh")
BEFORE_SUNSET, AFTER_SUNSET = date(2026, 11, 21), date(2027, 4, 1)  # sales.sales v1: sunset 2027-03-31


@pytest.fixture(scope="module")
def customer_master(repo_root: Path) -> Product:
    registry = load_registry(repo_root)
    registry.raise_for_errors("customers")
    return registry.products["customers.customer_master"]


@pytest.fixture
def customers_specs(isolated: Path) -> dict[dg.AssetKey, dg.AssetSpec]:
    """Every asset spec of the `customers` code location, as Dagster loads it."""
    return {spec.key: spec for spec in build_domain("customers").resolve_all_asset_specs()}


@pytest.fixture
def port(customers_specs: dict[dg.AssetKey, dg.AssetSpec]) -> dg.AssetSpec:
    return customers_specs[CUSTOMER_MASTER_V1]


def with_freshness(product: Product, **freshness: Any) -> Product:
    """A copy of the product whose freshness SLO is replaced, validated like a YAML spec would be."""
    data = product.spec.model_dump(mode="json", by_alias=True)
    data["slos"]["freshness"] = freshness
    return Product(DataProductSpec.model_validate(data), product.path)


def build_port(
    product: Product, major: int = 1, where: PortContext = DUCKDB, today: date = BEFORE_SUNSET
) -> dg.AssetSpec:
    port = next(p for p in product.spec.output_ports if p.major == major)
    return port_spec(
        product, port, where, deps=[], tool=product.spec.transformation.kind, automation=None, today=today
    )


# --- identity: key, group, owners, tags, kinds ---------------------------------------------------------


def test_the_port_is_addressed_by_domain_product_and_major_version(port: dg.AssetSpec) -> None:
    assert port.key.to_user_string() == "customers/customer_master/v1"
    assert port.group_name == "customer_master"
    assert port.code_version == "1.0.0"


def test_the_port_is_owned_by_the_team_and_the_steward(port: dg.AssetSpec) -> None:
    assert port.owners == ["team:customer_data", "maria.keller@example.com"]


def test_the_port_is_tagged_with_role_domain_type_classification_and_status(port: dg.AssetSpec) -> None:
    assert port.tags["mesh/role"] == "output_port"
    assert port.tags["mesh/domain"] == "customers"
    assert port.tags["mesh/product"] == "customer_master"
    assert port.tags["mesh/product_type"] == "source-aligned"
    assert port.tags["mesh/classification"] == "confidential"
    assert port.tags["mesh/status"] == "active"
    assert port.tags["mesh/port_version"] == "v1"


def test_the_port_kinds_name_the_warehouse_and_the_transformation_tool(port: dg.AssetSpec) -> None:
    assert {"duckdb", "python", "table"} <= set(port.kinds)


def test_internal_assets_are_tagged_internal_and_share_the_product_group(
    customers_specs: dict[dg.AssetKey, dg.AssetSpec],
) -> None:
    internals = [spec for key, spec in customers_specs.items() if key != CUSTOMER_MASTER_V1]

    assert [spec.key.to_user_string() for spec in internals] == [
        "customers/customer_master/source/crm__customers"
    ]
    for spec in internals:
        assert spec.tags["mesh/role"] == "internal"
        assert spec.tags["mesh/domain"] == "customers"
        assert spec.group_name == "customer_master"
        assert spec.owners == ["team:customer_data", "maria.keller@example.com"]
        assert spec.freshness_policy is None


# --- the contract as metadata ----------------------------------------------------------------------------


def test_the_column_schema_carries_descriptions_nullability_uniqueness_and_pii(
    port: dg.AssetSpec, customer_master: Product
) -> None:
    schema = port.metadata["dagster/column_schema"]
    assert isinstance(schema, dg.TableSchema)
    columns = {c.name: c for c in schema.columns}
    contract = customer_master.spec.output_ports[0].columns

    assert [c.name for c in schema.columns] == [c.name for c in contract]
    for declared in contract:
        shown = columns[declared.name]
        assert shown.description == declared.description
        assert shown.type == declared.type.value
        assert shown.constraints.nullable == declared.nullable

    key = columns["customer_id"]
    assert key.constraints.nullable is False
    assert key.constraints.unique is True
    assert "primary key" in key.constraints.other

    email = columns["contact_email"]
    assert email.tags == {"mesh/pii": "true"}
    assert "pii" in email.constraints.other
    assert email.constraints.nullable is True
    assert email.constraints.unique is False

    assert columns["customer_name"].constraints.nullable is False
    assert columns["city"].tags == {}


def test_the_table_name_and_uri_address_the_published_table(port: dg.AssetSpec, isolated: Path) -> None:
    table_name = port.metadata["dagster/table_name"]
    assert table_name.endswith("customers.customer_master_v1")
    # The database is the DuckDB file's stem: the test's private `mesh.duckdb`.
    assert table_name == "mesh.customers.customer_master_v1"
    assert port.metadata["dagster/uri"] == dg.MetadataValue.url("mesh://customers/customer_master/v1")


def test_slos_access_policy_and_version_are_published_as_metadata(port: dg.AssetSpec) -> None:
    metadata = port.metadata
    assert metadata["mesh/version"] == "1.0.0"
    assert metadata["mesh/status"] == "active"
    assert metadata["mesh/primary_key"] == "customer_id"
    assert metadata["mesh/pii_columns"] == "contact_email, contact_phone"
    assert metadata["mesh/input_ports"] == "source:crm.customers"
    assert metadata["mesh/support"] == "slack: #customer-data"

    slos = metadata["mesh/slos"].data
    assert slos["freshness"]["max_age"] == "24h"
    assert slos["freshness"]["warn_after"] == "12h"
    assert slos["availability"] == 0.99
    assert slos["quality_pass_rate"] == 0.99

    assert metadata["mesh/access_policy"].data == {
        "allowed_roles": ["analyst", "data_scientist", "sales_ops"],
        "denied_roles": ["external_partner"],
        "pii_handling": "mask",
        "agreements": {
            "approvers": [],
            "auto_approve_purposes": None,
            "pii_in_clear_purposes": None,
            "max_days": {},
        },
    }
    assert metadata["mesh/access"].data == {"mode": "open"}
    assert metadata["mesh/data_sharing_agreement"].data["reference"] == "DSA-CUST-001"
    assert "mesh/deprecation" not in metadata


def test_code_references_point_at_the_spec_and_the_transform_module(
    port: dg.AssetSpec, customer_master: Product
) -> None:
    references = port.metadata["dagster/code_references"]
    assert isinstance(references, dg.CodeReferencesMetadataValue)
    paths = [Path(ref.file_path) for ref in references.code_references]

    assert paths == [
        customer_master.path.resolve(),
        (customer_master.folder / "transform.py").resolve(),
    ]
    assert all(path.is_file() for path in paths)
    assert port.metadata["mesh/spec"] == str(customer_master.path.resolve())


# --- freshness -------------------------------------------------------------------------------------------


def test_a_max_age_slo_becomes_a_time_window_policy_failing_at_24h_and_warning_at_12h(
    port: dg.AssetSpec,
) -> None:
    policy = port.freshness_policy
    assert isinstance(policy, dg.FreshnessPolicy)
    assert policy == dg.FreshnessPolicy.time_window(
        fail_window=timedelta(hours=24), warn_window=timedelta(hours=12)
    )
    assert policy.fail_window.to_timedelta() == timedelta(hours=24)
    assert policy.warn_window is not None
    assert policy.warn_window.to_timedelta() == timedelta(hours=12)


def test_a_max_age_without_warn_after_gives_a_policy_without_a_warn_window() -> None:
    policy = freshness_policy(FreshnessSlo(max_age="2d"))
    assert policy.fail_window.to_timedelta() == timedelta(days=2)
    assert policy.warn_window is None


def test_a_cron_slo_becomes_a_cron_policy_with_deadline_lower_bound_and_timezone(
    customer_master: Product,
) -> None:
    product = with_freshness(
        customer_master, cron="0 6 * * 1-5", lower_bound="3h", cron_timezone="Europe/Zurich"
    )

    policy = build_port(product).freshness_policy

    assert policy == dg.FreshnessPolicy.cron(
        deadline_cron="0 6 * * 1-5", lower_bound_delta=timedelta(hours=3), timezone="Europe/Zurich"
    )
    assert policy.deadline_cron == "0 6 * * 1-5"
    assert policy.lower_bound_delta == timedelta(hours=3)
    assert policy.timezone == "Europe/Zurich"
    # The metadata shows the same SLO the policy enforces.
    assert build_port(product).metadata["mesh/slos"].data["freshness"]["cron"] == "0 6 * * 1-5"


@pytest.mark.parametrize(
    ("freshness", "cron"),
    [
        ({"max_age": "24h"}, "0 5 * * *"),
        ({"max_age": "2d"}, "0 5 * * *"),
        ({"max_age": "6h"}, "0 */3 * * *"),
        ({"max_age": "1h"}, "0 */1 * * *"),
        ({"max_age": "30m"}, "*/15 * * * *"),
        ({"max_age": "5m"}, "*/5 * * * *"),
    ],
    ids=["24h-daily", "2d-daily", "6h-every-3-hours", "1h-hourly", "30m-every-15-min", "5m-floor"],
)
def test_refresh_cron_derives_an_ingest_cadence_from_a_max_age_slo(
    freshness: dict[str, str], cron: str
) -> None:
    assert refresh_cron(FreshnessSlo(**freshness)) == cron


def test_a_cron_deadline_whose_half_window_would_cross_midnight_is_kept_as_the_ingest_cadence() -> None:
    slo = FreshnessSlo(cron="30 6 * * 1-5", lower_bound="24h", cron_timezone="Europe/Zurich")

    assert refresh_cron(slo) == "30 6 * * 1-5"


def test_the_source_asset_ingests_on_the_cadence_of_the_freshness_slo(
    customers_specs: dict[dg.AssetKey, dg.AssetSpec],
) -> None:
    source = customers_specs[dg.AssetKey(["customers", "customer_master", "source", "crm__customers"])]
    expected = dg.AutomationCondition.on_cron("0 5 * * *")
    assert source.automation_condition is not None
    assert source.automation_condition.get_label() == expected.get_label()


# --- deprecation ------------------------------------------------------------------------------------------


def test_the_deprecated_sales_v1_port_warns_of_its_sunset_and_points_to_v2(
    mesh_copy: Path, isolated: Path
) -> None:
    # A private copy: loading the dbt location may (re)parse the project and write its manifest. The
    # clock is before the sunset, whatever day the test runs.
    with time_machine.travel(BEFORE_SUNSET):
        specs = {spec.key: spec for spec in build_domain("sales").resolve_all_asset_specs()}
    v1, v2 = specs[SALES_V1], specs[SALES_V2]

    assert v1.tags["mesh/status"] == "deprecated"
    assert v1.tags["mesh/role"] == "output_port"
    assert v1.metadata["mesh/status"] == "deprecated"
    assert v1.metadata["mesh/version"] == "1.4.0"
    assert v1.metadata["mesh/deprecation"].data == {
        "sunset": "2027-03-31",
        "replacement": "2",
        "reason": "v2 reports net revenue in EUR as an exact decimal and keys months by date.",
    }
    assert {"duckdb", "dbt", "table"} <= set(v1.kinds)

    # The title line, then the warning before anything else a reader sees.
    title, warning, *_rest = v1.description.split("\n\n")
    assert title == "**Monthly sales** (v1.4.0)"
    assert warning.startswith("> **Deprecated**: served until its sunset 2027-03-31. Move to v2.")
    assert v1.metadata["mesh/lifecycle"].value.startswith("deprecated: served until its sunset 2027-03-31")

    assert v2.tags["mesh/status"] == "active"
    assert "mesh/deprecation" not in v2.metadata
    assert "Deprecated" not in v2.description

    internals = [spec for key, spec in specs.items() if key not in {SALES_V1, SALES_V2}]
    internals = [spec for spec in internals if spec.key.path[:2] == ["sales", "sales"]]
    assert internals
    assert all(spec.tags["mesh/role"] == "internal" for spec in internals)


def test_port_spec_puts_the_deprecation_warning_before_the_port_description(repo_root: Path) -> None:
    sales = load_registry(repo_root).products["sales.sales"]

    v1 = build_port(sales, major=1)

    body = v1.description.split("\n\n", 1)[1]
    assert body.startswith("> **Deprecated**: served until its sunset 2027-03-31. Move to v2.")
    assert body.index("Deprecated") < body.index("v1 (deprecated): month as 'YYYY-MM'")


def test_after_its_sunset_the_port_says_in_red_it_is_overdue_yet_keeps_its_tags(repo_root: Path) -> None:
    sales = load_registry(repo_root).products["sales.sales"]

    before, after = build_port(sales, major=1), build_port(sales, major=1, today=AFTER_SUNSET)

    body = after.description.split("\n\n", 1)[1]
    assert body.startswith("> 🔴 **Overdue for retirement**: its sunset 2027-03-31 has passed. Still served")
    assert "move to v2 now" in body
    assert after.metadata["mesh/lifecycle"].value.startswith("overdue for retirement: its sunset 2027-03-31")
    # Tags are the location's reviewed interface (snapshotted): the calendar never changes them.
    assert after.tags == before.tags and after.tags["mesh/status"] == "deprecated"


# --- targets ----------------------------------------------------------------------------------------------


def test_the_customers_location_loads_on_snowflake_without_credentials_or_a_connection(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import snowflake.connector

    for name in ["ACCOUNT", "USER", "PASSWORD", "ROLE", "WAREHOUSE", "DATABASE"]:
        monkeypatch.delenv(f"SNOWFLAKE_{name}", raising=False)
    monkeypatch.setenv("MESH_TARGET", "snowflake")
    monkeypatch.setenv("MESH_ENV", "prod")  # prod's database is SNOWFLAKE_DATABASE itself (default MESH)

    def no_connection(*args: object, **kwargs: object) -> None:
        raise AssertionError("loading a code location must not connect to Snowflake")

    monkeypatch.setattr(snowflake.connector, "connect", no_connection)

    defs = build_domain("customers")
    specs = {spec.key: spec for spec in defs.resolve_all_asset_specs()}
    defs.resolve_implicit_global_asset_job_def()

    port = specs[CUSTOMER_MASTER_V1]
    assert {"snowflake", "python", "table"} <= set(port.kinds)
    assert "duckdb" not in port.kinds
    assert port.metadata["dagster/table_name"] == "MESH.customers.customer_master_v1"
    source = specs[dg.AssetKey(["customers", "customer_master", "source", "crm__customers"])]
    assert "snowflake" in source.kinds


def test_a_daily_cron_deadline_is_refreshed_inside_its_window_not_at_the_deadline() -> None:
    from mesh_assets.assets.ports import refresh_cron
    from mesh_assets.product.spec import FreshnessSlo

    slo = FreshnessSlo(cron="0 6 * * *", lower_bound="2h")
    assert refresh_cron(slo) == "0 5 * * *"
    # Shifting across midnight would move a weekday-bound deadline to the wrong day: left as is.
    assert refresh_cron(FreshnessSlo(cron="30 0 * * 1", lower_bound="2h")) == "30 0 * * 1"
