"""The consumer registry and `mesh impact`: who reads which port, their owners, and what a change breaks.

The example mesh: sales.sales v1 (deprecated, sunset 2027-03-31) is read by customer_360, v2 by
sales_forecast; both consumers belong to commercial_analytics (steward lea.dubois@example.com).
"""

from __future__ import annotations

import json
import subprocess
from datetime import date
from pathlib import Path

import pytest
import typer
import yaml
from conftest import REPO, copy_mesh
from spec_edits import spec_path
from typer.testing import CliRunner

from mesh_assets.cli.impact import register
from mesh_assets.contracts.contract_diff import diff_mesh
from mesh_assets.contracts.impact import ConsumerUse, ImpactError, ImpactReport, consumer_registry, impact
from mesh_assets.product.registry import Registry, load_registry
from mesh_assets.product.spec import DataProductSpec

SALES = "sales.sales"
CUSTOMER_360, SALES_FORECAST = "commercial_analytics.customer_360", "commercial_analytics.sales_forecast"
OWNER = ("commercial_analytics", "lea.dubois@example.com")
BEFORE_SUNSET, SUNSET, AFTER_SUNSET = date(2026, 11, 21), date(2027, 3, 31), date(2027, 4, 1)


def registry(today: date = BEFORE_SUNSET, root: Path = REPO) -> Registry:
    """The registry of a mesh, judged on `today`."""
    return load_registry(root, today)


def readers(report: ImpactReport, port: str) -> dict[str, tuple[str, str]]:
    """Consumer product to (team, steward) for one port of the report."""
    [found] = [p for p in report.ports if f"v{p.major}" == port]
    return {u.consumer.product: (u.consumer.team, u.consumer.steward) for u in found.consumers}


def use_of(report: ImpactReport, consumer: str) -> ConsumerUse:
    """The one reading of `consumer` in the report."""
    [found] = [u for u in report.uses if u.consumer.product == consumer]
    return found


# --- the consumer registry ----------------------------------------------------------------------------


def test_the_consumer_registry_knows_every_consumer_of_every_product() -> None:
    found = {
        key: sorted((u.consumer.product, u.port) for u in uses)
        for key, uses in consumer_registry(registry()).items()
    }

    assert found == {
        "commercial_analytics.customer_360": [(SALES_FORECAST, "v1")],
        "commercial_analytics.sales_forecast": [],
        "customers.customer_master": [(CUSTOMER_360, "v1"), ("diagnostics.instrument_runs", "v1")],
        "diagnostics.instrument_runs": [(CUSTOMER_360, "v1")],
        "sales.orders": [(SALES, "v1")],
        SALES: [(CUSTOMER_360, "v1"), (SALES_FORECAST, "v2")],
    }


def test_sales_v1_is_read_by_customer_360_and_v2_by_sales_forecast_each_with_its_owner() -> None:
    report = impact(registry(), SALES)

    assert (report.team, report.steward) == ("sales_data", "ana.lopez@example.com")
    assert readers(report, "v1") == {CUSTOMER_360: OWNER}
    assert readers(report, "v2") == {SALES_FORECAST: OWNER}
    customer_360 = use_of(report, CUSTOMER_360)
    assert customer_360.consumer.version_range == ">=1.0.0,<2.0.0"
    assert customer_360.consumer.purpose == "Lifetime revenue and order history per customer."


def test_the_reader_of_the_deprecated_v1_is_warned_with_the_sunset_and_the_version_to_move_to() -> None:
    use = use_of(impact(registry(), SALES), CUSTOMER_360)

    assert use.standing == "warning"
    [note] = use.notes
    assert "served until its sunset 2027-03-31" in note and "version: '^2'" in note


@pytest.mark.parametrize("selector", ["1", "v1", "1.4.0", "^1"])
def test_a_version_selector_limits_the_report_to_that_port(selector: str) -> None:
    report = impact(registry(), f"{SALES}@{selector}")

    assert [p.major for p in report.ports] == [1]
    assert [u.consumer.product for u in report.uses] == [CUSTOMER_360]


def test_an_unknown_product_is_refused_with_a_did_you_mean() -> None:
    with pytest.raises(ImpactError, match=r"did you mean 'sales\.sales'"):
        impact(registry(), "sales.sale")


def test_a_version_no_port_has_is_refused_listing_the_published_versions() -> None:
    with pytest.raises(ImpactError, match=r"no port matching '3'; it publishes 2.0.0, 1.4.0"):
        impact(registry(), f"{SALES}@3")


# --- sunset -------------------------------------------------------------------------------------------


def test_on_its_sunset_day_a_deprecated_port_is_still_served_with_a_warning() -> None:
    judged = registry(SUNSET)

    assert judged.errors == []
    [warning] = judged.warnings
    assert "sales.sales v1 (1.4.0) is deprecated" in warning.message


def test_after_its_sunset_a_deprecated_port_is_overdue_still_served_and_its_consumer_only_warned() -> None:
    judged = registry(AFTER_SUNSET)

    assert judged.errors == []  # time alone never breaks the mesh
    consumer, producer = sorted(judged.warnings, key=lambda w: str(w.file))
    assert consumer.file == REPO / "domains/commercial_analytics/products/customer_360/dataproduct.yaml"
    assert consumer.field == "input_ports[1].version"
    assert consumer.message.startswith(
        "sales.sales v1 (1.4.0) is overdue for retirement: its sunset 2027-03-31 passed yesterday"
    )
    assert consumer.fix == "move to version 2: product: sales.sales, version: '^2'"
    # The producer is told who still reads it, so it knows whom to chase before retiring it.
    assert producer.file == REPO / "domains/sales/products/sales/dataproduct.yaml"
    assert producer.field == "output_ports[1].deprecation.sunset"
    assert "still read by commercial_analytics.customer_360 (team commercial_analytics" in producer.message


def test_impact_after_the_sunset_shows_the_port_overdue_and_its_reader_red_but_served() -> None:
    report = impact(registry(AFTER_SUNSET), SALES)

    [v1] = [p for p in report.ports if p.major == 1]
    assert v1.status == "deprecated" and v1.overdue
    assert "overdue for retirement since its sunset 2027-03-31" in v1.label
    assert v1.to_dict()["overdue"] is True
    use = use_of(report, CUSTOMER_360)
    assert use.standing == "overdue" and use.port == "v1" and "version: '^2'" in use.notes[0]


def test_impact_before_the_sunset_does_not_call_the_port_overdue() -> None:
    [v1] = [p for p in impact(registry(SUNSET), SALES).ports if p.major == 1]

    assert not v1.overdue and v1.label == "v1 (1.4.0, deprecated until 2027-03-31, replaced by v2)"
    assert use_of(impact(registry(SUNSET), SALES), CUSTOMER_360).standing == "warning"


# --- what a change breaks -----------------------------------------------------------------------------


def without_revenue(root: Path = REPO) -> dict:
    """The sales spec with `net_revenue_eur`, which sales_forecast reads, removed from v2 (breaking)."""
    data = yaml.safe_load(spec_path(root, SALES).read_text())
    v2 = data["output_ports"][0]
    v2["columns"] = [c for c in v2["columns"] if c["name"] != "net_revenue_eur"]
    return data


def test_a_breaking_change_to_sales_v2_names_sales_forecast_and_its_owner_only() -> None:
    shipped = registry()
    base = {k: p.spec for k, p in shipped.products.items()}
    head = base | {SALES: DataProductSpec.model_validate(without_revenue())}

    report = impact(shipped, SALES, diff_mesh(base, head, today=BEFORE_SUNSET))

    [change] = report.breaks(SALES_FORECAST)
    assert (change.port, change.column, str(change.rule)) == ("v2", "net_revenue_eur", "column_removed")
    assert {c.label() for c in change.consumers} == {
        f"{SALES_FORECAST} (commercial_analytics, lea.dubois@example.com)"
    }
    assert report.breaks(CUSTOMER_360) == []


# --- the command --------------------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with a committed copy of the mesh, which the platform resolves (MESH_ROOT)."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # never find a repo above
    root = copy_mesh(tmp_path / "repo")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "the mesh"]):
        subprocess.run(
            ["git", "-c", "user.email=t@t", "-c", "user.name=t", "-c", "commit.gpgsign=false", *args],
            cwd=root,
            check=True,
            capture_output=True,
        )
    monkeypatch.setenv("MESH_ROOT", str(root))
    return root


def mesh_impact(*args: str) -> tuple[int, str]:
    """Run `mesh impact ...` on an app holding only this verb."""
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_mesh_impact_lists_consumers_and_owners_and_what_the_working_tree_breaks(repo: Path) -> None:
    spec_path(repo, SALES).write_text(yaml.safe_dump(without_revenue(repo), sort_keys=False))

    code, output = mesh_impact(SALES)

    assert code == 0, output
    assert CUSTOMER_360 in output and SALES_FORECAST in output and "lea.dubois@example.com" in output
    assert "v1 (1.4.0, deprecated until 2027-03-31, replaced by v2)" in output
    forecast = "commercial_analytics.sales_forecast (commercial_analytics, lea.dubois@example.com)"
    assert f"breaks {forecast} reading v2: column_removed (v2 net_revenue_eur)" in output


def test_mesh_impact_says_nothing_breaks_on_an_unchanged_working_tree(repo: Path) -> None:
    code, output = mesh_impact(SALES)

    assert code == 0 and "nothing: no breaking change to sales.sales against HEAD" in output


def test_mesh_impact_json_parses_and_maps_each_consumer_to_what_breaks(repo: Path) -> None:
    spec_path(repo, SALES).write_text(yaml.safe_dump(without_revenue(repo), sort_keys=False))

    code, output = mesh_impact(SALES, "--json")

    report = json.loads(output)
    assert code == 0 and report["owner"] == {"team": "sales_data", "steward": "ana.lopez@example.com"}
    assert [c["rule"] for c in report["breaks"][SALES_FORECAST]] == ["column_removed"]
    assert report["breaks"][CUSTOMER_360] == []


def test_mesh_impact_without_git_still_lists_the_consumers(
    mesh_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(mesh_copy.parent.parent))

    code, output = mesh_impact(f"{SALES}@2")

    assert code == 0, output
    assert SALES_FORECAST in output and CUSTOMER_360 not in output
    assert "no diff against HEAD" in output and "not inside a git repository" in output


def test_mesh_impact_refuses_an_unknown_product_with_exit_2(mesh_copy: Path) -> None:
    code, output = mesh_impact("sales.sale")

    assert code == 2 and "did you mean 'sales.sales'" in output
