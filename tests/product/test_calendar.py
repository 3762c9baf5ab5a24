"""Time alone never breaks the mesh: sunsets and as-of dates, with the clock moved.

The example mesh's only date is the sunset of `sales.sales` v1 (2027-03-31), read by
`commercial_analytics.customer_360`. On the day after every date in the example specs, and three years
ahead, the mesh still validates (with warnings), every code location loads (in this process and in a
subprocess whose clock is moved too) and a whole `mesh run` builds every
port. Before the sunset the consumer's owners are alerted 30, 7 and 1 days ahead, then weekly while the
port is overdue, through the real alert routing to a real HTTP receiver on loopback, from a real Dagster
instance, once each across restarts. Retiring the port stays a code change that is refused while it is
read.

The clock is moved with `time_machine` (in-process) or a `sitecustomize` that starts it (subprocess).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import time_machine
import yaml
from alert_harness import Daemon, Receiver, slo_definitions
from conftest import REPO
from spec_edits import edit_spec
from typer.testing import CliRunner

from mesh_assets.catalog.site import build_site
from mesh_assets.cli.app import app
from mesh_assets.govern import fitness
from mesh_assets.govern.validate import validate
from mesh_assets.observe.sunset import SENSOR
from mesh_assets.product.lifecycle import notice_stage
from mesh_assets.product.registry import load_registry
from mesh_assets.run.runner import load_location, run_mesh

SALES, CUSTOMER_360 = "sales.sales", "commercial_analytics.customer_360"
SUNSET = date(2027, 3, 31)
LOCATIONS = ["customers", "sales", "diagnostics", "commercial_analytics", "mesh"]
OWNER = "team commercial_analytics, steward lea.dubois@example.com"


def spec_dates(root: Path = REPO) -> set[date]:
    """Every date written in the example specs (today: the sunset of sales.sales v1)."""
    found: set[date] = set()

    def walk(node: Any) -> None:
        if isinstance(node, date):
            found.add(node)
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in (root / "domains").glob("*/products/*/dataproduct.yaml"):
        walk(yaml.safe_load(path.read_text()))
    return found


AGREEMENT_DATES = ("start", "end", "reassess_by")
"""The dates of an access agreement that change what it allows: it starts, ends, or is due for review."""


def agreement_dates(root: Path = REPO) -> set[date]:
    """Every start, end and reassess-by date of the example's access agreements."""
    found: set[date] = set()
    for path in (root / "domains").glob("*/products/*/access/*.yaml"):
        agreement = yaml.safe_load(path.read_text()) or {}
        found |= {date.fromisoformat(str(agreement[key])) for key in AGREEMENT_DATES if agreement.get(key)}
    return found


# The day after every date in the specs and the agreements from the sunset on (before it, the mesh is the
# one every other test builds), and three years after the latest of them and of today.
DAYS = sorted(
    {d + timedelta(days=1) for d in spec_dates() | agreement_dates() if d >= SUNSET}
    | {max([*spec_dates(), *agreement_dates(), date.today()]) + timedelta(days=3 * 365)}
)
IDS = [d.isoformat() for d in DAYS]
# Whole runs on the day after the sunset and past every date: a build reads no person's or team's agreement
# (only product-to-product ones, which time never ends), so the days between change what validation and the
# fitness say, which the tests above check on every day, not what a run builds.
RUN_DAYS = [DAYS[0], DAYS[-1]]


def at(day: date) -> time_machine.travel:
    """The clock moved to 09:00 of `day` (ticking on)."""
    return time_machine.travel(datetime(day.year, day.month, day.day, 9, 0), tick=True)


def test_the_calendar_covers_the_example_sunset_and_its_agreements() -> None:
    assert SUNSET in spec_dates()
    assert DAYS[0] == SUNSET + timedelta(days=1) and DAYS[-1] >= date.today() + timedelta(days=3 * 365)
    # Each agreement date after the sunset is a day of its own (people's ends, teams' reassessments).
    assert {d + timedelta(days=1) for d in agreement_dates() if d >= SUNSET} <= set(DAYS)
    assert len(DAYS) > 2


# --- validation, loading and building with the clock moved -------------------------------------------


@pytest.mark.parametrize("day", DAYS, ids=IDS)
def test_mesh_validate_exits_0_with_an_overdue_warning_on_any_later_day(day: date) -> None:
    with at(day):
        report = validate(REPO)
        result = CliRunner().invoke(app, ["validate"])

    assert report.errors == [], [e.render(REPO) for e in report.errors]
    assert result.exit_code == 0, result.output
    overdue = [w for w in report.warnings if "overdue for retirement" in w.message]
    assert {w.file.parent.name for w in overdue} == {"sales", "customer_360"}
    assert "warning" in result.output and "overdue for retirement" in result.output


@pytest.mark.parametrize("day", DAYS, ids=IDS)
def test_every_code_location_loads_in_process_on_any_later_day(day: date, isolated: Path) -> None:
    with at(day):
        loaded = {name: load_location(name) for name in LOCATIONS}
        v1 = loaded["sales"].resolve_assets_def(dg.AssetKey(["sales", "sales", "v1"]))
        description = v1.specs_by_key[dg.AssetKey(["sales", "sales", "v1"])].description or ""

    customer_360 = {s.key.to_user_string() for s in loaded["commercial_analytics"].resolve_all_asset_specs()}
    assert "commercial_analytics/customer_360/v1" in customer_360
    assert "🔴 **Overdue for retirement**" in description  # the port says so in the Dagster UI


SITECUSTOMIZE = textwrap.dedent(
    """
    # Moves this interpreter's clock before anything runs (test harness only; see test_calendar.py).
    import datetime
    import os

    import time_machine

    time_machine.travel(datetime.datetime.fromisoformat(os.environ["MESH_TEST_CLOCK"]), tick=True).start()
    """
)


LOAD_EVERY_LOCATION = (
    "import datetime\n"
    "from mesh_assets.run.runner import load_location\n"
    "print(datetime.date.today())\n"
    f"for name in {LOCATIONS!r}:\n"
    "    load_location(name)\n"
    "    print(name, 'loaded')\n"
)


@pytest.mark.parametrize("day", DAYS, ids=IDS)
def test_every_code_location_loads_in_a_process_whose_clock_is_moved(day: date, isolated: Path) -> None:
    clock = isolated / "clock"
    clock.mkdir()
    (clock / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {**os.environ, "PYTHONPATH": str(clock), "MESH_TEST_CLOCK": f"{day.isoformat()}T09:00:00"}

    result = subprocess.run(
        [sys.executable, "-c", LOAD_EVERY_LOCATION],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0] == day.isoformat()  # the subprocess really lives on that day
    assert lines[1:] == [f"{name} loaded" for name in LOCATIONS]


@pytest.mark.slow
@pytest.mark.parametrize("day", RUN_DAYS, ids=[d.isoformat() for d in RUN_DAYS])
def test_a_whole_mesh_run_builds_every_port_on_any_later_day(day: date, isolated: Path) -> None:
    with at(day):
        results = run_mesh()

    assert [r.status for r in results] == ["ok"] * len(results), [(r.product, r.error) for r in results]
    built = {r.product: r.rows for r in results}
    assert built[SALES]["v1"] and built[SALES]["v2"]  # the overdue port is still served
    assert built[CUSTOMER_360]["v1"]  # and its consumer still built from it


# --- before and after the sunset, in words and colours ------------------------------------------------


def test_the_consumers_fitness_turns_red_after_the_sunset_without_failing_the_mesh() -> None:
    before = fitness.evaluate(load_registry(REPO, SUNSET))
    after = fitness.evaluate(load_registry(REPO, SUNSET + timedelta(days=1)))

    trust_before = next(p for p in before.products if p.key == CUSTOMER_360).result(
        fitness.Characteristic.TRUSTWORTHY
    )
    assert trust_before.passed and "sunset 2027-03-31 (today)" in trust_before.reason
    trust = next(p for p in after.products if p.key == CUSTOMER_360).result(
        fitness.Characteristic.TRUSTWORTHY
    )
    assert not trust.passed and not trust.mandatory
    assert "reads sales.sales v1, overdue for retirement since its sunset 2027-03-31" in trust.reason
    assert after.passed == before.passed  # red, but time alone never fails `mesh fitness`
    sales = next(p for p in after.products if p.key == SALES)
    assert sales.result(fitness.Characteristic.TRUSTWORTHY).passed  # the producer keeps serving it


@pytest.mark.parametrize("day", DAYS, ids=IDS)
def test_mesh_fitness_exits_as_before_the_sunset_on_any_later_day(day: date) -> None:
    with at(SUNSET):
        before = CliRunner().invoke(app, ["fitness", "--specs-only"])
    with at(day):
        after = CliRunner().invoke(app, ["fitness", "--specs-only"])

    assert after.exit_code == before.exit_code, after.output
    assert "overdue for retirement" in after.output and "overdue" not in before.output


def test_the_catalog_shows_an_overdue_port_in_red(tmp_path: Path) -> None:
    day = datetime(2027, 4, 2, 12, tzinfo=UTC)
    site = build_site(load_registry(REPO, day.date()), tmp_path / "catalog", now=day).path

    sales = (site / "products" / "sales.sales.html").read_text()
    assert '<div class="banner overdue" role="alert">' in sales
    assert "<strong>v1 (1.4.0) is overdue for retirement</strong>" in sales
    assert '<span class="badge status-overdue">overdue for retirement</span>' in sales
    consumer = (site / "products" / f"{CUSTOMER_360}.html").read_text()
    assert (
        "<strong>overdue for retirement</strong>\n  since its sunset 2027-03-31: move to v2 now." in consumer
    )
    index = (site / "index.html").read_text()
    assert "v1 overdue for retirement" in index and '"overdue"' in index
    assert ".status-overdue" in (site / "assets" / "catalog.css").read_text()


# --- retiring is a code change, refused while the port is read ----------------------------------------


@pytest.mark.parametrize("day", [SUNSET - timedelta(days=30), *DAYS], ids=["before", *IDS])
def test_retiring_or_removing_a_read_port_is_refused_naming_the_consumer_and_its_owner(
    day: date, mesh_copy: Path
) -> None:
    edit_spec(mesh_copy, SALES, lambda d: d["output_ports"][1].update(status="retired"))
    [retired] = load_registry(mesh_copy, day).errors
    assert retired.file.parent.name == "customer_360"
    assert f"is retired and no longer served, but {CUSTOMER_360} ({OWNER}) still reads it" in retired.message

    edit_spec(mesh_copy, SALES, lambda d: d.update(output_ports=d["output_ports"][:1]))
    [removed] = load_registry(mesh_copy, day).errors
    assert f"which {CUSTOMER_360} ({OWNER}) reads" in removed.message
    assert removed.fix.endswith("version: '^2'")


def test_once_the_consumer_moved_the_overdue_port_can_be_retired(mesh_copy: Path) -> None:
    edit_spec(mesh_copy, CUSTOMER_360, lambda d: d["input_ports"][1].update(version="^2"))
    edit_spec(mesh_copy, SALES, lambda d: d["output_ports"][1].update(status="retired"))

    assert load_registry(mesh_copy, DAYS[-1]).errors == []


# --- alerts before and after the sunset ----------------------------------------------------------------


def test_the_alert_steps_are_30_7_and_1_days_before_then_weekly() -> None:
    steps = {d: notice_stage(SUNSET, SUNSET + timedelta(days=d)) for d in range(-40, 20)}

    assert steps[-31] is None and steps[-30] == steps[-8] == "30d"
    assert steps[-7] == steps[-2] == "7d" and steps[-1] == steps[0] == "1d"
    assert steps[1] == steps[7] == "overdue-0" and steps[8] == steps[14] == "overdue-1"
    assert steps[15] == "overdue-2"


@pytest.fixture
def sunset_daemon(home: Path) -> Iterator[Daemon]:
    daemon = Daemon(slo_definitions(), SENSOR)
    yield daemon
    daemon.instance.dispose()


def tick_on(daemon: Daemon, day: date) -> None:
    with at(day):
        daemon.tick()


def alerts_to(receiver: Receiver) -> list[tuple[str, str]]:
    """(stage, consumer) of each alert received since the last call."""
    return [(b["stage"], b["consumer"]) for b in receiver.take()]


@pytest.mark.slow
def test_the_consumers_owners_are_alerted_30_7_and_1_days_before_the_sunset_once_each_across_restarts(
    sunset_daemon: Daemon,
    receiver: Receiver,
) -> None:
    tick_on(sunset_daemon, SUNSET - timedelta(days=31))
    assert receiver.take() == []  # more than 30 days ahead: nothing yet

    tick_on(sunset_daemon, SUNSET - timedelta(days=30))
    [first] = receiver.take()
    assert (first["kind"], first["stage"], first["consumer"]) == ("sunset", "30d", CUSTOMER_360)
    assert first["port"] == "sales/sales/v1" and first["owner"]["team"] == "commercial_analytics"
    # The tests run in `dev`: like SLO alerts, a non-prod environment's alert says which one first.
    assert first["text"].startswith("[dev] ⏳ Sunset in 30 days: sales.sales v1 (1.4.0)")
    assert "input_ports: product: sales.sales, version: '^2'" in first["text"]
    assert "Consumer owner: team commercial_analytics, steward lea.dubois@example.com" in first["text"]
    assert first["asset_url"].endswith("/assets/sales/sales/v1")

    tick_on(sunset_daemon, SUNSET - timedelta(days=30))
    sunset_daemon.restart()
    tick_on(sunset_daemon, SUNSET - timedelta(days=20))
    assert receiver.take() == []  # once per step, across a restart

    for days, stage in ((7, "7d"), (1, "1d")):
        tick_on(sunset_daemon, SUNSET - timedelta(days=days))
        assert alerts_to(receiver) == [(stage, CUSTOMER_360)]
        sunset_daemon.restart()
    tick_on(sunset_daemon, SUNSET)
    assert receiver.take() == []  # the sunset day is covered by the 1-day alert


@pytest.mark.slow
def test_a_sunset_alert_from_a_branch_environment_is_labelled_with_it(
    sunset_daemon: Daemon, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESH_ENV", "feature_x")
    tick_on(sunset_daemon, SUNSET - timedelta(days=7))
    [alert] = receiver.take()
    assert alert["environment"] == "feature_x"
    assert alert["text"].startswith("[feature_x] ⏳ Sunset in 7 days: sales.sales v1")


@pytest.mark.slow
def test_after_the_sunset_the_alert_repeats_weekly_while_the_port_is_overdue(
    sunset_daemon: Daemon,
    receiver: Receiver,
) -> None:
    tick_on(sunset_daemon, SUNSET + timedelta(days=1))
    [overdue] = receiver.take()
    assert (overdue["kind"], overdue["stage"]) == ("overdue", "overdue-0")
    assert overdue["text"].startswith(
        "[dev] 🔴 Overdue for retirement: sales.sales v1 (1.4.0) passed its sunset 2027-03-31 (yesterday)"
    )
    assert "still served and built" in overdue["text"]

    tick_on(sunset_daemon, SUNSET + timedelta(days=5))
    assert receiver.take() == []
    tick_on(sunset_daemon, SUNSET + timedelta(days=8))
    assert alerts_to(receiver) == [("overdue-1", CUSTOMER_360)]
    sunset_daemon.restart()
    tick_on(sunset_daemon, SUNSET + timedelta(days=8))
    assert receiver.take() == []
    tick_on(sunset_daemon, SUNSET + timedelta(days=15))
    assert alerts_to(receiver) == [("overdue-2", CUSTOMER_360)]


@pytest.mark.slow
def test_a_sensor_started_late_sends_only_the_step_reached_and_keeps_undelivered_alerts_across_a_restart(
    sunset_daemon: Daemon,
    receiver: Receiver,
) -> None:
    receiver.mode = "fail"
    tick_on(sunset_daemon, SUNSET - timedelta(days=5))  # the 30-day step was missed: only the 7-day one
    assert receiver.bodies == [] and receiver.attempts == 3
    assert [n["stage"] for n in sunset_daemon.state["out"]] == ["7d"]

    sunset_daemon.restart()
    receiver.mode = "ok"
    tick_on(sunset_daemon, SUNSET - timedelta(days=4))
    assert alerts_to(receiver) == [("7d", CUSTOMER_360)]
    tick_on(sunset_daemon, SUNSET - timedelta(days=3))
    assert receiver.take() == [] and sunset_daemon.state["out"] == []
