"""PII follows the data: a port column computed in clear from an input's PII must be marked PII.

customer_360 is given the PII privilege on customer_master (as an approved agreement would) and a column
`contact` computed from customer_master.contact_email; how it is computed decides whether it is PII.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from spec_edits import edit_spec, write_later

from mesh_assets.govern import pii_lineage
from mesh_assets.govern.fitness.characteristics import secure
from mesh_assets.govern.validate import validate
from mesh_assets.product import access
from mesh_assets.product.registry import load_registry

C360 = "commercial_analytics.customer_360"
SQL = "domains/commercial_analytics/products/customer_360/customer_360_v1.sql"


def with_contact(root: Path, expression: str, pii: bool = False) -> None:
    """customer_360 publishes `contact` = `expression` over customer_master (alias `c`)."""
    sql = root / SQL
    write_later(
        sql,
        sql.read_text().replace(
            "    c.customer_id,\n", f"    c.customer_id,\n    {expression} as contact,\n", 1
        ),
    )

    def add(spec: dict) -> None:
        spec["output_ports"][0]["columns"].insert(
            1, {"name": "contact", "type": "string", "description": "Contact reference.", "pii": pii}
        )

    edit_spec(root, C360, add)


@pytest.fixture
def privileged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(access, "pii_privilege", lambda *args, **kwargs: access.Decision(True, "granted"))


def unmarked(root: Path) -> list[str]:
    registry = load_registry(root)
    return [u.where for u in pii_lineage.unmarked_pii(registry.products[C360], registry)]


def test_a_renamed_pii_column_is_pii_and_validate_warns_when_it_is_not_marked(
    mesh_copy: Path, privileged
) -> None:
    with_contact(mesh_copy, "lower(c.contact_email)")
    assert unmarked(mesh_copy) == ["v1.contact"]
    [warning] = [i for i in validate(mesh_copy).issues if "personal data" in i.message]
    assert warning.severity == "warning"
    assert "customers.customer_master.contact_email" in warning.message


def test_a_hashed_pii_column_is_not_pii(mesh_copy: Path, privileged) -> None:
    with_contact(mesh_copy, "md5(c.contact_email)")
    assert unmarked(mesh_copy) == []


def test_an_aggregated_pii_column_is_not_pii(mesh_copy: Path, privileged) -> None:
    with_contact(
        mesh_copy, "(select count(distinct contact_email) from {{ input('customers.customer_master') }})"
    )
    assert unmarked(mesh_copy) == []


def test_a_marked_column_is_fine(mesh_copy: Path, privileged) -> None:
    with_contact(mesh_copy, "c.contact_email", pii=True)
    assert unmarked(mesh_copy) == []


def test_without_the_pii_privilege_the_consumer_reads_protected_values_so_nothing_is_pii(
    mesh_copy: Path,
) -> None:
    with_contact(mesh_copy, "c.contact_email")
    assert unmarked(mesh_copy) == []


def test_the_secure_fitness_function_fails_on_unmarked_derived_pii(mesh_copy: Path, privileged) -> None:
    with_contact(mesh_copy, "lower(c.contact_email)")
    registry = load_registry(mesh_copy)
    verdict = secure(registry.products[C360], registry)
    assert not verdict.passed
    assert "v1.contact computed in clear from personal data" in verdict.reason
