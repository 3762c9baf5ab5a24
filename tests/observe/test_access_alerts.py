"""Access alerts: a product's owners hear of requests waiting for them, of people's access about to end and
of agreements due for reassessment, once per step, across restarts, on any day the test chooses."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import dagster as dg
from alert_harness import Receiver

from mesh_assets.observe.access_alerts import access_tick, due, render
from mesh_assets.observe.alerts import AlertRouting
from mesh_assets.product.registry import load_registry

NORA = "customers.customer_master/nora.berg@example.com"
LEA = "customers.customer_master/lea.dubois@example.com"
FINANCE = "sales.sales/team.finance"


def kinds(repo_root: Path, day: date, sent: dict | None = None) -> dict[str, str]:
    notes, _ = due(load_registry(repo_root, day), day, sent or {})
    return {n["agreement"]: n["kind"] for n in notes}


def test_a_request_waiting_two_days_is_brought_to_its_deciders_then_weekly(repo_root: Path) -> None:
    assert LEA not in kinds(repo_root, date(2026, 12, 7))
    notes, sent = due(load_registry(repo_root, date(2026, 12, 8)), date(2026, 12, 8), {})
    [waiting] = [n for n in notes if n["agreement"] == LEA]

    assert waiting["kind"] == "access_waiting" and waiting["support"]["channel"] == "#customer-data"
    assert "Decide: mesh access approve|reject customers.customer_master/lea.dubois@example.com" in render(
        waiting, AlertRouting()
    )
    assert LEA not in kinds(repo_root, date(2026, 12, 10), sent)  # the same step: not again
    assert kinds(repo_root, date(2026, 12, 15), sent)[LEA] == "access_waiting"  # a week on


def test_a_persons_access_is_announced_14_7_and_1_days_before_it_ends_and_not_after(repo_root: Path) -> None:
    assert NORA not in kinds(repo_root, date(2027, 5, 20))
    for day in (date(2027, 5, 21), date(2027, 5, 28), date(2027, 6, 3)):
        assert kinds(repo_root, day)[NORA] == "access_expiring", day
    assert NORA not in kinds(repo_root, date(2027, 6, 5))  # expired: sync revokes it, nothing to decide


def test_an_agreement_past_its_reassessment_is_announced_weekly_and_says_it_stays_in_force(
    repo_root: Path,
) -> None:
    notes, _ = due(load_registry(repo_root, date(2027, 12, 20)), date(2027, 12, 20), {})
    [late] = [n for n in notes if n["agreement"] == FINANCE]

    text = render(late, AlertRouting())
    assert late["kind"] == "access_reassess" and late["support"]["channel"] == "#sales-data"
    assert "Reassessment was due 2027-12-06" in text and "it stays in force until revoked" in text
    assert "mesh access approve sales.sales/team.finance" in text


def test_the_sensor_delivers_each_alert_once_across_ticks(repo_root: Path, receiver: Receiver) -> None:
    registry = load_registry(repo_root, date(2026, 12, 8))
    context = dg.build_sensor_context(cursor=None)

    first = access_tick(context, registry, today=date(2026, 12, 8))
    again = access_tick(dg.build_sensor_context(cursor=first.cursor), registry, today=date(2026, 12, 9))

    [body] = receiver.take()
    assert body["kind"] == "access_waiting" and body["agreement"] == LEA
    assert "Access request waiting 2 day(s)" in body["text"]
    assert again.skip_reason is not None and "0 new access alert(s)" in again.skip_reason.skip_message
    assert receiver.take() == []
