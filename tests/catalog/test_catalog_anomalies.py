"""The catalog shows each port's recent anomalies found by its learned monitors (and nothing when none)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from mesh_assets.catalog.runtime import read_runtime
from mesh_assets.catalog.site import build_site
from mesh_assets.product.registry import load_registry


def test_a_port_page_lists_its_recent_anomalies_with_the_day_and_the_reason(
    isolated: Path, repo_root: Path
) -> None:
    key = dg.AssetKey(["sales", "sales", "v2"])
    registry = load_registry(repo_root)
    with dg.DagsterInstance.get() as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key))
        for passed, day in [(False, "2026-10-29"), (True, "2026-10-30"), (False, "2026-10-31")]:
            instance.report_runless_asset_event(
                dg.AssetCheckEvaluation(
                    asset_key=key,
                    check_name="monitor_volume",
                    passed=passed,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={
                        "status": "ok" if passed else "anomaly",
                        "bucket": day,
                        "reason": f"rows of {day} below the learned bound",
                    },
                )
            )
        runtime = read_runtime(instance, registry, now=datetime.now(UTC))
    assert [(a.monitor, a.bucket) for a in runtime[key].anomalies] == [
        ("monitor_volume", "2026-10-31"),
        ("monitor_volume", "2026-10-29"),
    ]

    site = build_site(registry, isolated / "catalog", runtime=runtime).path
    html = (site / "products" / "sales.sales.html").read_text()
    v2, v1 = html.split("<h3>v2</h3>", 1)[1].split("<h3>v1</h3>", 1)
    assert "Recent anomalies" in v2 and "rows of 2026-10-31 below the learned bound" in v2
    assert "2026-10-30 below" not in v2
    assert "Recent anomalies" not in v1
