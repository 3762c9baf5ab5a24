"""`mesh contract diff`: every contract change is classified as breaking or not, with its rule and reason.

Pure-function tests load a shipped spec, change its mapping and diff the two models (consumers are the
shipped mesh). End-to-end tests commit a copy of the mesh to a git repository in tmp_path, change the
working tree and run the command through Typer's CliRunner.
"""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
import typer
import yaml
from agreement_edits import with_agreements
from conftest import REPO, copy_mesh
from spec_edits import spec_path
from typer.testing import CliRunner

from mesh_assets.cli.contract_diff import register
from mesh_assets.contracts.contract_diff import diff_mesh, diff_specs
from mesh_assets.contracts.diff_git import read_specs_at
from mesh_assets.contracts.diff_rules import Change, Rule
from mesh_assets.contracts.diff_schema import diff_ports
from mesh_assets.product.spec import DataProductSpec, OutputPort
from mesh_assets.product.versions import Semver

TODAY = date(2026, 11, 21)
SALES, ORDERS = "sales.sales", "sales.orders"
CUSTOMER_MASTER, CUSTOMER_360 = "customers.customer_master", "commercial_analytics.customer_360"
SALES_FORECAST = "commercial_analytics.sales_forecast"
KEYS = [SALES, ORDERS, CUSTOMER_MASTER, CUSTOMER_360, SALES_FORECAST, "diagnostics.instrument_runs"]

Spec = dict


# --- helpers ------------------------------------------------------------------------------------------


def shipped(key: str) -> Spec:
    """A shipped spec as a mapping, to change."""
    return yaml.safe_load(spec_path(REPO, key).read_text())


def model(data: Spec) -> DataProductSpec:
    """The spec model of a mapping."""
    return DataProductSpec.model_validate(data)


def port(data: Spec, major: int) -> Spec:
    """The output port of one major."""
    [found] = [p for p in data["output_ports"] if Semver.parse(p["version"]).major == major]
    return found


def column(data: Spec, major: int, name: str) -> Spec:
    """One column of one port."""
    [found] = [c for c in port(data, major)["columns"] if c["name"] == name]
    return found


def mesh(**replaced: Spec) -> dict[str, DataProductSpec]:
    """The shipped mesh as models, with some products' mappings replaced (keyed by `domain.product`)."""
    return {key: model(replaced.get(key) or shipped(key)) for key in KEYS}


def diff(
    key: str, change: Callable[[Spec], object], *, today: date = TODAY, base: Spec | None = None
) -> list[Change]:
    """Diff a product against a changed copy of itself; the shipped mesh (with the change) consumes it."""
    before = base or shipped(key)
    after = copy.deepcopy(before)
    change(after)
    consumers = mesh(**{key: after}).values()
    return diff_specs(model(before), model(after), consumers=consumers, today=today)


def only(changes: list[Change], rule: Rule) -> Change:
    """The one change of a rule."""
    found = [c for c in changes if c.rule == rule]
    assert len(found) == 1, f"expected one {rule}, got {changes}"
    return found[0]


def rules(changes: list[Change]) -> set[Rule]:
    """The rules hit."""
    return {c.rule for c in changes}


def consumer_names(change: Change) -> set[str]:
    """`<product> (<team>, <steward>)` of each affected consumer."""
    return {c.label() for c in change.consumers}


FORECAST_OWNER = f"{SALES_FORECAST} (commercial_analytics, lea.dubois@example.com)"
C360_OWNER = f"{CUSTOMER_360} (commercial_analytics, lea.dubois@example.com)"


def drop_column(major: int, name: str) -> Callable[[Spec], None]:
    """Remove a column from a port."""

    def change(data: Spec) -> None:
        port(data, major)["columns"] = [c for c in port(data, major)["columns"] if c["name"] != name]

    return change


def set_column(major: int, column_name: str, /, **values: object) -> Callable[[Spec], None]:
    """Set fields of a column (None removes the field)."""

    def change(data: Spec) -> None:
        target = column(data, major, column_name)
        for field, value in values.items():
            if value is None:
                target.pop(field, None)
            else:
                target[field] = value

    return change


def bump(major: int, version: str) -> Callable[[Spec], None]:
    """Set a port's version."""

    def change(data: Spec) -> None:
        port(data, major)["version"] = version

    return change


def both(*changes: Callable[[Spec], object]) -> Callable[[Spec], None]:
    """Apply several changes."""

    def change(data: Spec) -> None:
        for one in changes:
            one(data)

    return change


# --- no change ----------------------------------------------------------------------------------------


def test_an_unchanged_mesh_has_no_changes() -> None:
    assert diff_mesh(mesh(), mesh(), today=TODAY) == []


# --- columns: breaking --------------------------------------------------------------------------------


def test_removing_a_column_is_breaking_and_names_the_column_the_rule_and_the_consumers() -> None:
    change = only(diff(SALES, drop_column(2, "units")), Rule.COLUMN_REMOVED)

    assert (change.product, change.port, change.column) == (SALES, "v2", "units")
    assert change.blocking and change.verdict == "breaking"
    assert consumer_names(change) == {FORECAST_OWNER}
    assert "new major v3" in change.fix


def test_a_removed_and_an_added_column_of_the_same_type_is_a_suspected_rename_and_still_breaking() -> None:
    changes = diff(SALES, set_column(2, "units", name="unit_count"))

    change = only(changes, Rule.COLUMN_RENAMED)
    assert change.column == "units" and change.blocking
    assert change.reason.startswith("renamed? units -> unit_count")
    assert Rule.COLUMN_ADDED not in rules(changes) and Rule.COLUMN_REMOVED not in rules(changes)


def test_a_removed_and_an_added_column_of_different_types_are_a_removal_and_an_addition() -> None:
    changes = diff(SALES, set_column(2, "units", name="unit_text", type="string"))

    assert only(changes, Rule.COLUMN_REMOVED).column == "units"
    assert only(changes, Rule.COLUMN_ADDED).column == "unit_text"


@pytest.mark.parametrize(
    ("key", "major", "name", "new_type"),
    [
        (ORDERS, 1, "order_id", {"type": "integer"}),  # bigint -> integer
        (CUSTOMER_360, 1, "lifetime_revenue_eur", {"type": "integer"}),  # double -> integer
        (CUSTOMER_360, 1, "lifetime_revenue_eur", {"type": "decimal", "precision": 18, "scale": 2}),
        (SALES, 2, "net_revenue_eur", {"precision": 12}),  # decimal(18,2) -> decimal(12,2)
        (SALES, 2, "net_revenue_eur", {"scale": 0}),  # decimal(18,2) -> decimal(18,0)
        (SALES, 2, "net_revenue_eur", {"type": "double", "precision": None, "scale": None}),
        (SALES, 2, "order_count", {"type": "double"}),  # bigint -> double (above 2^53)
        (SALES, 1, "month", {"type": "date"}),  # string -> anything
        (ORDERS, 1, "order_ts", {"type": "date"}),  # timestamp -> date
    ],
)
def test_a_type_change_that_loses_values_is_breaking(key: str, major: int, name: str, new_type: dict) -> None:
    change = only(diff(key, set_column(major, name, **new_type)), Rule.TYPE_NARROWED)

    assert change.column == name and change.blocking
    assert "loses values" in change.reason


@pytest.mark.parametrize(
    ("key", "major", "name", "new_type"),
    [
        (ORDERS, 1, "quantity", {"type": "bigint"}),  # integer -> bigint
        (ORDERS, 1, "quantity", {"type": "double"}),
        (ORDERS, 1, "quantity", {"type": "decimal", "precision": 12, "scale": 2}),
        (ORDERS, 1, "unit_price", {"precision": 14, "scale": 4}),  # decimal(12,2) -> decimal(14,4)
    ],
)
def test_a_type_change_that_keeps_every_value_is_a_widening_and_not_breaking(
    key: str, major: int, name: str, new_type: dict
) -> None:
    change = only(diff(key, set_column(major, name, **new_type)), Rule.TYPE_WIDENED)

    assert change.column == name and not change.breaking


def test_a_type_changed_to_string_keeps_the_values_but_breaks_readers() -> None:
    change = only(diff(ORDERS, set_column(1, "quantity", type="string")), Rule.TYPE_CHANGED)

    assert change.column == "quantity" and change.blocking


def test_a_column_that_becomes_nullable_is_breaking() -> None:
    change = only(diff(SALES, set_column(2, "units", nullable=True)), Rule.BECAME_NULLABLE)

    assert change.column == "units" and change.blocking


def test_a_column_that_becomes_not_null_is_a_stronger_promise() -> None:
    changes = diff(CUSTOMER_MASTER, both(set_column(1, "city", nullable=False), bump(1, "1.1.0")))

    assert only(changes, Rule.BECAME_NOT_NULL).breaking is False
    assert not any(c.breaking or c.warning for c in changes)


def test_a_column_that_is_no_longer_unique_is_breaking() -> None:
    base = shipped(CUSTOMER_MASTER)
    column(base, 1, "contact_email")["unique"] = True

    change = only(
        diff(CUSTOMER_MASTER, set_column(1, "contact_email", unique=False), base=base), Rule.NO_LONGER_UNIQUE
    )

    assert change.column == "contact_email" and change.blocking


def test_changing_the_primary_key_is_breaking() -> None:
    def narrower_grain(data: Spec) -> None:
        port(data, 2)["primary_key"] = ["sales_month", "customer_id"]

    change = only(diff(SALES, narrower_grain), Rule.PRIMARY_KEY_CHANGED)

    assert change.blocking and "grain" in change.reason
    assert consumer_names(change) == {FORECAST_OWNER}


def test_listing_the_same_primary_key_columns_in_another_order_is_not_a_key_change() -> None:
    def reorder(data: Spec) -> None:
        port(data, 2)["primary_key"] = ["customer_id", "sales_month", "product_line"]

    assert Rule.PRIMARY_KEY_CHANGED not in rules(diff(SALES, reorder))


def test_a_column_that_becomes_personal_data_is_breaking() -> None:
    change = only(diff(CUSTOMER_MASTER, set_column(1, "city", pii=True)), Rule.BECAME_PII)

    assert change.column == "city" and change.blocking


def test_changing_the_event_time_column_is_breaking() -> None:
    def other_time(data: Spec) -> None:
        port(data, 1)["event_time"] = "order_ts"

    change = only(diff(ORDERS, other_time), Rule.EVENT_TIME_CHANGED)

    assert change.column == "updated_at" and change.blocking


def test_a_contract_check_downgraded_to_warn_is_breaking() -> None:
    def warn_only(data: Spec) -> None:
        port(data, 1)["quality"]["schema_severity"] = "warn"

    assert only(diff(ORDERS, warn_only), Rule.QUALITY_WEAKER).blocking


def test_a_removed_accepted_value_is_breaking_and_an_added_one_is_a_warning() -> None:
    rules = [{"type": "accepted_values", "column": "status", "values": ["placed", "shipped", "cancelled"]}]
    base = OutputPort.model_validate(_port_dict(rules))
    removed = OutputPort.model_validate(_port_dict([{**rules[0], "values": ["placed", "shipped"]}]))
    added = OutputPort.model_validate(
        _port_dict([{**rules[0], "values": ["placed", "shipped", "cancelled", "lost"]}])
    )

    breaking = diff_ports("sales.orders", base, removed)
    assert [(c.rule, c.column, c.breaking) for c in breaking] == [
        (Rule.ACCEPTED_VALUE_REMOVED, "status", True)
    ]
    assert "cancelled" in breaking[0].reason
    widened = diff_ports("sales.orders", base, added)
    assert [(c.rule, c.breaking, c.warning) for c in widened] == [(Rule.ACCEPTED_VALUE_ADDED, False, True)]


def _port_dict(rules: list[dict]) -> dict:
    return {
        "version": "1.0.0",
        "primary_key": ["order_id"],
        "columns": [
            {"name": "order_id", "type": "bigint", "nullable": False, "description": "Order number."},
            {"name": "status", "type": "string", "nullable": False, "description": "Order status."},
        ],
        "quality": {"rules": rules},
    }


def test_an_added_nullable_column_with_a_minor_bump_is_not_breaking_and_needs_nothing_else() -> None:
    def add_column(data: Spec) -> None:
        port(data, 2)["columns"].append(
            {"name": "channel", "type": "string", "description": "Sales channel."}
        )

    changes = diff(SALES, both(add_column, bump(2, "2.1.0")))

    assert [(c.rule, c.column, c.breaking, c.warning) for c in changes] == [
        (Rule.COLUMN_ADDED, "channel", False, False)
    ]


def test_a_new_description_and_added_examples_with_a_patch_bump_are_not_breaking() -> None:
    changes = diff(
        SALES,
        both(
            set_column(2, "units", description="Units ordered in the counted orders.", examples=[12]),
            bump(2, "2.0.1"),
        ),
    )

    assert rules(changes) == {Rule.COLUMN_DESCRIPTION, Rule.COLUMN_EXAMPLES}
    assert not any(c.breaking or c.warning for c in changes)


# --- SLOs ---------------------------------------------------------------------------------------------


def set_slos(**values: object) -> Callable[[Spec], None]:
    """Set SLO fields (`freshness` replaces the whole freshness block)."""

    def change(data: Spec) -> None:
        data["slos"].update(values)

    return change


@pytest.mark.parametrize(
    ("slos", "field"),
    [
        ({"freshness": {"max_age": "48h"}}, "slos.freshness"),
        ({"availability": 0.95}, "slos.availability"),
        ({"quality_pass_rate": 0.9}, "slos.quality_pass_rate"),
        # A daily deadline with a 24h window lets data reach 48h just before the next deadline.
        ({"freshness": {"cron": "0 6 * * *", "lower_bound": "24h"}}, "slos.freshness"),
    ],
)
def test_a_weaker_slo_is_breaking_for_every_consumer_of_the_product(slos: dict, field: str) -> None:
    change = only(diff(SALES, set_slos(**slos)), Rule.SLO_WEAKER)

    assert change.port is None and change.column == field and change.blocking
    assert consumer_names(change) == {FORECAST_OWNER, C360_OWNER}


def test_a_later_freshness_deadline_is_weaker_even_with_the_same_window() -> None:
    base = shipped(SALES)
    base["slos"]["freshness"] = {"cron": "0 6 * * *", "lower_bound": "2h"}

    changes = diff(SALES, set_slos(freshness={"cron": "0 9 * * *", "lower_bound": "2h"}), base=base)

    assert only(changes, Rule.SLO_WEAKER).blocking


def test_an_earlier_freshness_deadline_is_a_stronger_slo() -> None:
    base = shipped(SALES)
    base["slos"]["freshness"] = {"cron": "0 9 * * *", "lower_bound": "24h"}

    changes = diff(SALES, set_slos(freshness={"cron": "0 6 * * *", "lower_bound": "24h"}), base=base)

    assert only(changes, Rule.SLO_STRONGER).column == "slos.freshness"
    assert Rule.SLO_WEAKER not in rules(changes)


def test_a_stronger_slo_is_not_breaking() -> None:
    changes = diff(SALES, both(set_slos(freshness={"max_age": "12h"}, availability=0.999), bump(2, "2.1.0")))

    assert {c.rule for c in changes if c.port is None} == {Rule.SLO_STRONGER}
    assert not any(c.breaking for c in changes)


# --- classification and access ------------------------------------------------------------------------


def test_a_more_sensitive_classification_is_breaking_for_the_products_consumers() -> None:
    change = only(
        diff(SALES, lambda d: d.update(classification="confidential")), Rule.CLASSIFICATION_STRICTER
    )

    assert change.blocking and consumer_names(change) == {FORECAST_OWNER, C360_OWNER}


def test_a_less_sensitive_classification_is_not_breaking() -> None:
    changes = diff(CUSTOMER_MASTER, lambda d: d.update(classification="internal"))

    assert not only(changes, Rule.CLASSIFICATION_RELAXED).breaking


def requiring_approval(*holders: str) -> list[Change]:
    """Diff sales.sales made approval-required, with agreements in force for `holders`."""
    after = copy.deepcopy(shipped(SALES))
    after["access"] = {"mode": "approval_required"}
    head = with_agreements(model(after), *holders)
    consumers = mesh(**{SALES: after}).values()
    return diff_specs(model(shipped(SALES)), head, consumers=consumers, today=TODAY)


def test_requiring_approval_is_breaking_naming_the_consumers_that_hold_no_agreement() -> None:
    change = only(requiring_approval(CUSTOMER_360), Rule.ACCESS_RESTRICTED)

    assert change.blocking and consumer_names(change) == {FORECAST_OWNER}
    assert "1 current consumer(s) hold no access agreement" in change.reason


def test_requiring_approval_is_not_breaking_when_every_consumer_holds_an_agreement() -> None:
    assert not only(requiring_approval(CUSTOMER_360, SALES_FORECAST), Rule.ACCESS_RESTRICTED).breaking


def test_removing_an_allowed_role_is_breaking_and_adding_one_is_not() -> None:
    def swap_roles(data: Spec) -> None:
        data["access_policy"]["allowed_roles"] = ["analyst", "data_scientist", "sales_ops", "controller"]

    changes = diff(SALES, swap_roles)

    assert only(changes, Rule.ROLE_REMOVED).column == "access_policy.allowed_roles.finance"
    assert only(changes, Rule.ROLE_REMOVED).blocking
    assert not only(changes, Rule.ROLE_ADDED).breaking


def test_denying_a_role_is_breaking() -> None:
    assert only(
        diff(SALES, lambda d: d["access_policy"].update(denied_roles=["finance"])), Rule.ROLE_DENIED
    ).blocking


# --- addresses: ports and products removed or moved ---------------------------------------------------


def test_removing_a_major_port_that_still_has_consumers_is_breaking_and_names_them() -> None:
    def drop_v1(data: Spec) -> None:
        data["output_ports"] = [port(data, 2)]

    change = only(diff(SALES, drop_v1), Rule.PORT_REMOVED)

    assert change.port == "v1" and change.blocking
    assert consumer_names(change) == {C360_OWNER}
    assert "mesh://sales/sales/v1" in change.reason


def test_removing_a_deprecated_port_nobody_reads_any_more_is_not_breaking() -> None:
    after = shipped(SALES)
    after["output_ports"] = [port(after, 2)]
    moved = shipped(CUSTOMER_360)
    moved["input_ports"][1]["version"] = "^2"

    changes = diff_mesh(mesh(), mesh(**{SALES: after, CUSTOMER_360: moved}), today=TODAY)

    removed = only([c for c in changes if c.product == SALES], Rule.PORT_REMOVED)
    assert not removed.breaking and "no consumer reads it" in removed.reason


def test_removing_a_port_past_its_sunset_is_breaking_while_a_consumer_still_reads_it() -> None:
    def drop_v1(data: Spec) -> None:
        data["output_ports"] = [port(data, 2)]

    # Past its sunset the port is overdue for retirement but still served: removing it is the code change
    # that would break its reader, so the diff refuses it naming the reader and its owner.
    for today in (date(2027, 4, 1), date(2030, 4, 2)):
        change = only(diff(SALES, drop_v1, today=today), Rule.PORT_REMOVED)
        assert change.blocking and "1 consumer(s) still read it" in change.reason
        assert consumer_names(change) == {C360_OWNER}


def test_removing_a_declared_retired_port_is_not_breaking_as_its_consumers_are_already_refused() -> None:
    base = shipped(SALES)
    port(base, 1)["status"] = "retired"

    def drop_v1(data: Spec) -> None:
        data["output_ports"] = [port(data, 2)]

    change = only(diff(SALES, drop_v1, base=base), Rule.PORT_REMOVED)

    assert not change.breaking and "it was retired" in change.reason
    assert consumer_names(change) == {C360_OWNER}


def test_a_product_moved_to_another_domain_is_breaking_and_reported_as_a_guessed_move() -> None:
    moved = shipped(SALES)
    moved["domain"] = "finance"
    head = {k: v for k, v in mesh().items() if k != SALES} | {"finance.sales": model(moved)}

    changes = [c for c in diff_mesh(mesh(), head, today=TODAY) if c.rule == Rule.PRODUCT_MOVED]

    assert {c.port for c in changes} == {"v1", "v2"} and all(c.blocking for c in changes)
    assert "moved? to mesh://finance/sales/v2" in next(c.reason for c in changes if c.port == "v2")


# --- new majors ---------------------------------------------------------------------------------------


def add_v3_without_units(data: Spec) -> None:
    """Publish v3 beside v2: the same port without `units`."""
    v3 = copy.deepcopy(port(data, 2))
    v3["version"] = "3.0.0"
    v3["columns"] = [c for c in v3["columns"] if c["name"] != "units"]
    data["output_ports"].insert(0, v3)


def test_a_breaking_change_in_a_new_major_beside_the_old_one_is_allowed() -> None:
    changes = diff(SALES, add_v3_without_units)

    change = only(changes, Rule.COLUMN_REMOVED)
    assert (change.port, change.column) == ("v3", "units")
    assert change.breaking and not change.blocking and change.verdict == "breaking, in new major v3"
    assert only(changes, Rule.PORT_ADDED).port == "v3"
    assert not any(c.blocking for c in changes)


def test_bumping_a_port_to_the_next_major_in_place_drops_the_old_major_its_consumers_read() -> None:
    changes = diff(SALES, both(drop_column(2, "units"), bump(2, "3.0.0")))

    removed = only(changes, Rule.PORT_REMOVED)
    assert removed.port == "v2" and removed.blocking and consumer_names(removed) == {FORECAST_OWNER}
    assert only(changes, Rule.COLUMN_REMOVED).verdict == "breaking, in new major v3"


# --- versions -----------------------------------------------------------------------------------------


def test_a_contract_change_without_a_version_bump_warns_with_the_version_to_use() -> None:
    change = only(
        diff(SALES, set_column(2, "units", description="Units in the counted orders.")),
        Rule.VERSION_NOT_BUMPED,
    )

    assert change.warning and not change.breaking
    assert change.fix == "bump it to 2.0.1"


def test_an_added_column_with_only_a_patch_bump_warns_that_it_needs_a_minor() -> None:
    def add_column(data: Spec) -> None:
        port(data, 2)["columns"].append(
            {"name": "channel", "type": "string", "description": "Sales channel."}
        )

    change = only(diff(SALES, both(add_column, bump(2, "2.0.1"))), Rule.VERSION_BUMP_TOO_SMALL)

    assert change.warning and change.fix == "bump it to 2.1.0"


def test_a_version_that_goes_backwards_is_breaking() -> None:
    assert only(diff(SALES, bump(1, "1.3.0")), Rule.VERSION_WENT_BACKWARDS).blocking


# --- lifecycle ----------------------------------------------------------------------------------------


def deprecate_v2_for_v3(sunset: str = "2027-06-30") -> Callable[[Spec], None]:
    """Deprecate v2 in favour of v3."""

    def change(data: Spec) -> None:
        port(data, 2).update(
            status="deprecated",
            deprecation={"sunset": sunset, "replacement": "3", "reason": "v3 drops units."},
        )

    return change


def test_deprecating_a_port_warns_its_consumers_by_name_and_owner() -> None:
    changes = diff(SALES, both(add_v3_without_units, deprecate_v2_for_v3(), bump(2, "2.1.0")))

    change = only(changes, Rule.PORT_DEPRECATED)
    assert change.warning and not change.breaking
    assert "served until 2027-06-30" in change.reason and "v3" in change.reason
    assert consumer_names(change) == {FORECAST_OWNER}
    assert not any(c.blocking for c in changes)


def test_deprecating_in_favour_of_a_major_that_is_not_published_is_breaking() -> None:
    change = only(diff(SALES, both(deprecate_v2_for_v3(), bump(2, "2.1.0"))), Rule.REPLACEMENT_MISSING)

    assert change.blocking and consumer_names(change) == {FORECAST_OWNER}


def test_retiring_a_port_that_still_has_consumers_is_breaking() -> None:
    change = only(diff(SALES, lambda d: port(d, 1).update(status="retired")), Rule.PORT_RETIRED)

    assert change.port == "v1" and change.blocking and consumer_names(change) == {C360_OWNER}


def test_a_sunset_moved_into_the_past_is_breaking_for_its_consumers_but_does_not_retire_the_port() -> None:
    changes = diff(SALES, lambda d: port(d, 1)["deprecation"].update(sunset=date(2026, 11, 1)))

    change = only(changes, Rule.SUNSET_EARLIER)
    assert change.blocking and "already past: overdue for retirement" in change.reason
    assert consumer_names(change) == {C360_OWNER}
    assert Rule.PORT_RETIRED not in rules(changes)  # only `status: retired` or removing it retires it


def test_the_verdict_on_a_deprecated_port_does_not_depend_on_the_day() -> None:
    def verdicts(today: date) -> list[tuple[str, bool]]:
        return sorted(
            (c.rule.value, c.blocking)
            for change in (
                lambda d: port(d, 1).update(status="retired"),
                lambda d: port(d, 1).update(version="1.5.0"),
            )
            for c in diff(SALES, change, today=today)
        )

    assert verdicts(TODAY) == verdicts(date(2027, 4, 1)) == verdicts(date(2030, 4, 2))


def test_moving_a_sunset_earlier_is_breaking_and_later_is_not() -> None:
    earlier = diff(
        SALES, both(lambda d: port(d, 1)["deprecation"].update(sunset=date(2027, 1, 31)), bump(1, "1.4.1"))
    )
    later = diff(
        SALES, both(lambda d: port(d, 1)["deprecation"].update(sunset=date(2027, 9, 30)), bump(1, "1.4.1"))
    )

    assert only(earlier, Rule.SUNSET_EARLIER).blocking
    assert not only(later, Rule.SUNSET_CHANGED).breaking


def test_taking_an_active_port_back_to_beta_is_breaking_for_consumers_without_preview() -> None:
    change = only(diff(CUSTOMER_MASTER, lambda d: d.update(status="beta")), Rule.STATUS_RESTRICTED)

    assert change.blocking
    assert {c.product for c in change.consumers} == {CUSTOMER_360, "diagnostics.instrument_runs"}


def test_a_breaking_change_to_a_beta_port_is_allowed_and_still_names_its_readers() -> None:
    changes = diff(SALES_FORECAST, both(drop_column(0, "method"), bump(0, "0.3.1")))

    change = only(changes, Rule.COLUMN_REMOVED)
    assert change.verdict == "breaking, port is in beta" and not change.blocking


def test_an_active_0x_port_may_break_on_a_minor_bump_but_not_on_a_patch() -> None:
    base = shipped(SALES_FORECAST)
    base["status"] = "active"

    on_minor = diff(SALES_FORECAST, both(drop_column(0, "method"), bump(0, "0.4.0")), base=base)
    on_patch = diff(SALES_FORECAST, both(drop_column(0, "method"), bump(0, "0.3.1")), base=base)

    assert only(on_minor, Rule.COLUMN_REMOVED).verdict == "breaking, in new minor 0.4.0 (0.x)"
    assert only(on_patch, Rule.COLUMN_REMOVED).blocking


def test_a_consumer_whose_open_range_now_resolves_to_a_new_major_is_warned() -> None:
    open_range = shipped(SALES)
    open_range["input_ports"][0]["version"] = ">=1.0.0"
    orders_v2 = shipped(ORDERS)
    v2 = copy.deepcopy(port(orders_v2, 1))
    v2["version"] = "2.0.0"
    orders_v2["output_ports"].append(v2)

    changes = diff_mesh(
        mesh(**{SALES: open_range}), mesh(**{SALES: open_range, ORDERS: orders_v2}), today=TODAY
    )

    change = only(changes, Rule.CONSUMER_SWITCHES_MAJOR)
    assert change.warning and {c.product for c in change.consumers} == {SALES}
    assert "now resolves to v2 instead of v1" in change.reason


# --- specs that do not parse --------------------------------------------------------------------------


def test_a_spec_unreadable_at_the_base_is_reported_and_compared_as_new() -> None:
    base = {k: v for k, v in mesh().items() if k != SALES}

    changes = diff_mesh(base, mesh(), base_unreadable={SALES: "not valid YAML"}, today=TODAY)

    assert only(changes, Rule.BASE_SPEC_UNREADABLE).warning
    assert only(changes, Rule.PRODUCT_ADDED).product == SALES
    assert not any(c.blocking for c in changes)


def test_a_working_tree_spec_that_does_not_parse_is_blocking() -> None:
    head = {k: v for k, v in mesh().items() if k != SALES}

    change = only(
        diff_mesh(mesh(), head, head_unreadable={SALES: "output_ports: field required"}), Rule.SPEC_UNREADABLE
    )

    assert change.blocking and "mesh validate" in change.fix


# --- end to end on a git repository -------------------------------------------------------------------


def git(root: Path, *args: str) -> str:
    """Run git in `root` with an identity, so commits work on a bare CI machine."""
    done = subprocess.run(
        ["git", "-c", "user.email=t@t", "-c", "user.name=t", "-c", "commit.gpgsign=false", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def commit_all(root: Path, message: str) -> None:
    """Commit everything in the repository."""
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository holding a committed copy of the mesh in a subfolder (MESH_ROOT)."""
    # Stop git from finding a repository above tmp_path.
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    git(tmp_path, "-c", "init.defaultBranch=main", "init", "-q")
    root = copy_mesh(tmp_path / "mesh")
    commit_all(tmp_path, "the mesh")
    monkeypatch.setenv("MESH_ROOT", str(root))
    return root


def edit(root: Path, key: str, change: Callable[[Spec], object]) -> None:
    """Change a spec in the working tree."""
    path = spec_path(root, key)
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def mesh_cli(*args: str) -> tuple[int, str]:
    """Run `mesh contract diff ...` on an app holding only this verb."""
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(app, ["contract", "diff", *args])
    return result.exit_code, result.output


def test_the_command_exits_0_without_changes(repo: Path) -> None:
    code, output = mesh_cli()

    assert code == 0, output
    assert "no contract changes against HEAD" in output


def test_the_command_exits_1_naming_product_column_and_rule_for_a_breaking_change_without_a_new_major(
    repo: Path,
) -> None:
    # net_revenue_eur, which sales_forecast reads (its lineage); `units` it does not read.
    edit(repo, SALES, drop_column(2, "net_revenue_eur"))

    code, output = mesh_cli()

    assert code == 1, output
    assert "✗ sales.sales v2 column net_revenue_eur: column_removed" in output
    assert "commercial_analytics.sales_forecast (commercial_analytics, lea.dubois@example.com)" in output


def test_the_command_exits_0_when_the_breaking_change_comes_in_a_new_major(repo: Path) -> None:
    edit(repo, SALES, add_v3_without_units)

    code, output = mesh_cli()

    assert code == 0, output
    assert "breaking, in new major v3" in output


def test_the_json_output_parses_and_lists_each_change(repo: Path) -> None:
    edit(repo, SALES, drop_column(2, "net_revenue_eur"))

    code, output = mesh_cli("--json")

    report = json.loads(output)
    assert code == 1 and report["ok"] is False
    [change] = [c for c in report["changes"] if c["rule"] == "column_removed"]
    assert change["product"] == SALES and change["column"] == "net_revenue_eur" and change["blocking"] is True
    assert change["consumers"][0]["steward"] == "lea.dubois@example.com"


def test_ci_compares_the_last_commit_with_the_one_before(repo: Path) -> None:
    edit(repo, SALES, drop_column(2, "units"))
    commit_all(repo.parent, "drop units")

    assert mesh_cli("--base", "HEAD")[0] == 0
    code, output = mesh_cli("--base", "HEAD~1")
    assert code == 1 and "column_removed" in output


def test_a_spec_that_does_not_parse_at_the_base_ref_is_reported_not_a_crash(repo: Path) -> None:
    path = spec_path(repo, SALES)
    good = path.read_text()
    path.write_text(good.replace("output_ports:", "output_ports: [", 1))
    commit_all(repo.parent, "break the sales spec")
    path.write_text(good)

    code, output = mesh_cli("--json")

    assert code == 0, output
    [change] = [c for c in json.loads(output)["changes"] if c["rule"] == "base_spec_unreadable"]
    assert change["product"] == SALES and "not valid YAML" in change["reason"]


def test_an_unknown_base_ref_exits_2_naming_the_ref(repo: Path) -> None:
    code, output = mesh_cli("--base", "no-such-branch")

    assert code == 2
    assert "'no-such-branch' is not a commit" in output


def test_specs_are_read_at_the_ref_for_a_mesh_at_the_repository_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    root = copy_mesh(tmp_path / "top")
    git(root, "-c", "init.defaultBranch=main", "init", "-q")
    commit_all(root, "the mesh")
    edit(root, SALES, drop_column(2, "units"))

    snapshot = read_specs_at(root, "HEAD")

    assert sorted(snapshot.specs) == sorted(KEYS) and snapshot.unreadable == {}
    assert "units" in {c.name for c in snapshot.specs[SALES].output_ports[0].columns}
