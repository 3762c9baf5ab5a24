"""The catalog page of a product says, per port, who reads it by agreement and the command to ask."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from mesh_assets.catalog.site import build_site
from mesh_assets.product.registry import load_registry


def test_each_port_lists_its_readers_by_agreement_and_the_request_command(
    tmp_path: Path, repo_root: Path, isolated: Path
) -> None:
    registry = load_registry(repo_root, date(2026, 12, 6))
    site = build_site(registry, tmp_path / "catalog", now=datetime(2026, 12, 6, tzinfo=UTC)).path

    sales = (site / "products" / "sales.sales.html").read_text()
    master = (site / "products" / "customers.customer_master.html").read_text()

    assert "Who reads each port by agreement" in sales
    assert "mesh access request sales.sales@v2 --for &lt;you&gt; --purpose" in sales
    assert "team <code>finance</code> (active): Monthly revenue reporting for the finance close." in sales
    assert "person <code>nora.berg@example.com</code> (active, PII in clear)" in master
    assert "person <code>lea.dubois@example.com</code> (requested)" in master
