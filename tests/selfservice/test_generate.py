"""The source-extract generator: deterministic, correctly shaped and dirty where the products must clean."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest
import time_machine

from mesh_assets.selfservice.generate import AS_OF, COLUMNS, MIN_SCALE, GenerationReport, generate_sources

SCALE = 2_000


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> GenerationReport:
    return generate_sources(tmp_path_factory.mktemp("sources"), scale=SCALE, seed=42, as_of=AS_OF)


def read(report: GenerationReport, source: str) -> pd.DataFrame:
    """An extract as strings, with empty fields kept as "" so dirt like " de" survives the read."""
    path = next(e.path for e in report.extracts if e.source == source)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def file_hashes(out_dir: Path) -> dict[str, str]:
    return {
        p.relative_to(out_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out_dir.rglob("*"))
        if p.is_file()
    }


def test_same_seed_scale_and_as_of_give_identical_bytes(tmp_path: Path) -> None:
    first = generate_sources(tmp_path / "a", scale=SCALE, seed=7, as_of=AS_OF)
    second = generate_sources(tmp_path / "b", scale=SCALE, seed=7, as_of=AS_OF)

    assert [(e.source, e.rows, e.sha256) for e in first.extracts] == [
        (e.source, e.rows, e.sha256) for e in second.extracts
    ]
    assert file_hashes(tmp_path / "a") == file_hashes(tmp_path / "b")
    manifests = [(tmp_path / run / "_manifest.json").read_bytes() for run in ("a", "b")]
    assert manifests[0] == manifests[1]


def test_a_different_seed_changes_every_extract(generated: GenerationReport, tmp_path: Path) -> None:
    other = generate_sources(tmp_path, scale=SCALE, seed=43, as_of=AS_OF)

    for mine, theirs in zip(generated.extracts, other.extracts, strict=True):
        assert mine.sha256 != theirs.sha256, mine.source


def test_the_manifest_records_scale_seed_rows_and_hashes(generated: GenerationReport) -> None:
    out_dir = generated.extracts[0].path.parents[1]
    manifest = json.loads((out_dir / "_manifest.json").read_text(encoding="utf-8"))

    assert (manifest["scale"], manifest["seed"], manifest["as_of"]) == (SCALE, 42, AS_OF.isoformat())
    assert set(manifest["extracts"]) == set(COLUMNS)
    for extract in generated.extracts:
        entry = manifest["extracts"][extract.source]
        assert (out_dir / entry["path"]) == extract.path
        assert entry["rows"] == extract.rows == len(read(generated, extract.source))
        assert entry["sha256"] == hashlib.sha256(extract.path.read_bytes()).hexdigest()


def test_every_extract_has_the_documented_columns_in_order(generated: GenerationReport) -> None:
    for extract in generated.extracts:
        header = extract.path.read_text(encoding="utf-8").splitlines()[0]
        assert tuple(header.split(",")) == COLUMNS[extract.source]


def test_row_counts_follow_the_scale(generated: GenerationReport) -> None:
    orders = read(generated, "erp.orders")
    customers = read(generated, "crm.customers")
    runs = read(generated, "lims.instrument_runs")

    assert sorted(orders["order_id"].astype(int).unique()) == list(range(1, SCALE + 1))
    assert 0.01 * SCALE <= len(orders) - SCALE <= 0.03 * SCALE
    assert customers["customer_id"].nunique() == SCALE // 20
    assert runs["run_id"].nunique() == SCALE // 2


def test_orders_are_not_in_id_order(generated: GenerationReport) -> None:
    assert not read(generated, "erp.orders")["order_id"].astype(int).is_monotonic_increasing


def test_orders_are_resent_both_verbatim_and_with_a_later_update(generated: GenerationReport) -> None:
    orders = read(generated, "erp.orders")
    resent = orders[orders["order_id"].duplicated(keep=False)]

    assert orders.duplicated().sum() > 0
    changed = resent.groupby("order_id").filter(lambda rows: rows["updated_at"].nunique() > 1)
    assert changed["order_id"].nunique() > 0
    assert (changed.groupby("order_id")["status"].nunique() > 1).any()


def test_customers_have_later_versions_that_arrive_out_of_order(generated: GenerationReport) -> None:
    customers = read(generated, "crm.customers")
    versions = customers.groupby("customer_id")["updated_at"]

    assert versions.size().max() == 3
    assert 0.15 <= (versions.size() > 1).mean() <= 0.25
    assert (~versions.apply(lambda ts: ts.is_monotonic_increasing)).any()


def test_dirty_values_exist_that_a_product_must_clean(generated: GenerationReport) -> None:
    customers = read(generated, "crm.customers")
    orders = read(generated, "erp.orders")
    runs = read(generated, "lims.instrument_runs")
    emails, countries = customers["contact_email"], customers["country_code"]

    assert customers["customer_id"].duplicated().any()
    assert (emails != emails.str.strip().str.lower()).any()
    assert (countries != countries.str.strip().str.upper()).any()
    assert (customers["contact_phone"] == "").any()
    assert customers["contact_phone"].str.startswith("+").any()
    assert customers["contact_phone"].str.startswith("00").any()
    assert orders["currency"].isin(["eur", "usd", "chf"]).any()
    assert (orders["quantity"].astype(int) <= 0).any()
    assert (orders["customer_id"] == "").any()
    known = set(customers["customer_id"])
    assert (~orders["customer_id"].isin(known) & (orders["customer_id"] != "")).any()
    durations = pd.to_numeric(runs["duration_seconds"])
    assert durations.isna().any()
    assert (durations < 0).any()
    assert runs.duplicated().any()


def test_orders_are_never_updated_before_they_were_placed(generated: GenerationReport) -> None:
    orders = read(generated, "erp.orders")
    placed, updated = pd.to_datetime(orders["order_ts"]), pd.to_datetime(orders["updated_at"])

    assert (updated >= placed).all()
    assert ((updated - placed).dt.days > 60).any()  # late records


def test_nothing_happens_on_or_after_as_of(generated: GenerationReport) -> None:
    stamps = {
        "crm.customers": ("created_at", "updated_at"),
        "erp.orders": ("order_ts", "updated_at"),
        "lims.instrument_runs": ("started_at",),
    }
    for source, columns in stamps.items():
        frame = read(generated, source)
        for column in columns:
            values = frame[column]
            assert values.str.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}").all(), (source, column)
            assert pd.to_datetime(values).max() < pd.Timestamp(AS_OF), (source, column)


def test_an_instrument_stays_at_one_customer_site(generated: GenerationReport) -> None:
    runs = read(generated, "lims.instrument_runs")

    assert (runs.groupby("instrument_id")["customer_id"].nunique() == 1).all()
    assert (runs.groupby("instrument_id")["instrument_model"].nunique() == 1).all()
    assert ((runs["error_code"] == "") == (runs["status"] == "passed")).all()


def test_progress_is_reported_once_per_extract(tmp_path: Path) -> None:
    messages: list[str] = []
    generate_sources(tmp_path, scale=MIN_SCALE, seed=1, progress=messages.append)

    assert [m.split(":")[0] for m in messages] == list(COLUMNS)


def test_a_too_small_scale_raises_naming_the_minimum(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"at least {MIN_SCALE}"):
        generate_sources(tmp_path, scale=MIN_SCALE - 1)


# --- as-of: the day the extracts are taken ---------------------------------------------------------------


def newest_order(report: GenerationReport) -> pd.Timestamp:
    return pd.to_datetime(read(report, "erp.orders")["order_ts"]).max()


def test_the_as_of_day_moves_every_date_and_is_recorded_in_the_manifest(
    generated: GenerationReport, tmp_path: Path
) -> None:
    later = generate_sources(tmp_path, scale=SCALE, seed=42, as_of=date(2030, 4, 2))

    manifest = json.loads((tmp_path / "_manifest.json").read_text(encoding="utf-8"))
    assert manifest["as_of"] == "2030-04-02"
    assert pd.Timestamp("2030-03-31") <= newest_order(later) < pd.Timestamp("2030-04-02")
    assert newest_order(generated) < pd.Timestamp(AS_OF) < pd.Timestamp("2030-03-31")
    # The same draws, shifted: row counts and every extract's shape stay; the bytes differ by date.
    assert [e.rows for e in later.extracts] == [e.rows for e in generated.extracts]
    assert all(a.sha256 != b.sha256 for a, b in zip(later.extracts, generated.extracts, strict=True))


def test_without_an_as_of_the_extracts_are_taken_today_so_a_fresh_clone_is_fresh(tmp_path: Path) -> None:
    with time_machine.travel(datetime(2031, 7, 15, 10, 0), tick=False):
        report = generate_sources(tmp_path, scale=MIN_SCALE, seed=1)

    manifest = json.loads((tmp_path / "_manifest.json").read_text(encoding="utf-8"))
    assert manifest["as_of"] == "2031-07-15"
    assert pd.Timestamp("2031-06-15") <= newest_order(report) < pd.Timestamp("2031-07-15")


def test_mesh_generate_takes_an_as_of_day_and_refuses_a_malformed_one(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mesh_assets.cli.app import app

    runner = CliRunner()
    ok = runner.invoke(
        app, ["generate", "--scale", str(MIN_SCALE), "--out", str(tmp_path), "--as-of", "2028-02-29"]
    )
    assert ok.exit_code == 0, ok.output
    assert json.loads((tmp_path / "_manifest.json").read_text(encoding="utf-8"))["as_of"] == "2028-02-29"

    bad = runner.invoke(app, ["generate", "--out", str(tmp_path / "x"), "--as-of", "2028-02-30"])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.output
    assert not (tmp_path / "x").exists()
