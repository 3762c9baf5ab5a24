"""Access agreements as files: read with the specs, validated with file, field and fix, states computed
from the decisions and the dates (approval apart from provisioning), and the old spec field refused."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import yaml
from agreement_edits import agreement, write_agreement
from spec_edits import edit_spec, spec_path

from mesh_assets.govern.validate import AGREEMENT_SCHEMA_PATH, schema_texts, validate
from mesh_assets.product import access
from mesh_assets.product.agreement import AccessAgreement, State
from mesh_assets.product.registry import load_registry

SALES = "sales.sales"
CUSTOMER_360 = "commercial_analytics.customer_360"
TODAY = date(2026, 12, 6)


def model(**fields) -> AccessAgreement:
    return AccessAgreement.model_validate(agreement(**fields))


def test_an_agreement_file_is_read_with_the_specs_and_attached_to_its_producer(mesh_copy: Path) -> None:
    path = write_agreement(mesh_copy, SALES, agreement(CUSTOMER_360, major=2))

    registry = load_registry(mesh_copy, TODAY)

    [loaded] = access.agreements_of(registry.products[SALES].spec)
    assert loaded.path == path and loaded.producer == SALES
    assert loaded.id == f"{SALES}/{CUSTOMER_360}"
    assert loaded.state(TODAY) == State.ACTIVE
    assert loaded in registry.agreements


def test_a_bad_agreement_file_names_the_file_the_field_and_the_fix(mesh_copy: Path) -> None:
    data = agreement(CUSTOMER_360, major=2)
    del data["purpose"]
    data["purpose_category"] = "curiosity"
    path = write_agreement(mesh_copy, SALES, data)

    issues = {i.field: i for i in load_registry(mesh_copy, TODAY).errors if i.file == path}

    assert "add 'purpose': What the consumer will use the data for" in issues["purpose"].fix
    assert "curiosity" in issues["purpose_category"].message
    assert issues["purpose_category"].fix == "use one of the allowed values above"


def test_a_consumer_id_that_does_not_fit_its_kind_is_refused_with_an_example() -> None:
    with pytest.raises(ValueError, match="is not a person id; write an email"):
        model(consumer="finance", kind="person")


def test_a_file_named_after_another_consumer_is_refused_naming_the_right_name(mesh_copy: Path) -> None:
    path = write_agreement(mesh_copy, SALES, agreement(CUSTOMER_360, major=2), stem="someone_else")

    [issue] = [i for i in validate(mesh_copy).errors if i.file == path]

    assert issue.field == "consumer.id" and f"rename it to {CUSTOMER_360}.yaml" in issue.fix


def test_an_approval_no_decision_records_is_refused_naming_the_command_that_records_one() -> None:
    data = agreement(CUSTOMER_360)
    del data["decisions"]

    with pytest.raises(ValueError, match="no decision records it; use `mesh access approve`"):
        AccessAgreement.model_validate(data)


def test_an_approved_agreement_whose_start_has_not_come_is_approved_but_not_active() -> None:
    pending = model(consumer="omar.haddad@example.com", kind="person", start="2027-01-01")

    assert pending.state(TODAY) == State.APPROVED
    assert pending.state(date(2027, 1, 1)) == State.ACTIVE


def test_a_persons_agreement_expires_at_its_end_and_a_products_is_only_overdue() -> None:
    person = model(consumer="omar.haddad@example.com", kind="person", end="2026-12-01")
    product = model(consumer=CUSTOMER_360, end="2026-12-01", reassess_by="2026-12-01")

    assert person.state(TODAY) == State.EXPIRED
    assert product.state(TODAY) == State.ACTIVE and product.overdue(TODAY)
    assert not product.overdue(date(2026, 12, 1))


def test_requested_rejected_and_revoked_agreements_are_not_in_force() -> None:
    assert model(consumer=CUSTOMER_360, approval="requested").state(TODAY) == State.REQUESTED
    assert model(consumer=CUSTOMER_360, approval="rejected").state(TODAY) == State.REJECTED
    assert model(consumer=CUSTOMER_360, approval="revoked").state(TODAY) == State.REVOKED


def test_the_old_approved_consumers_field_is_refused_naming_file_field_and_migration(mesh_copy: Path) -> None:
    path = edit_spec(
        mesh_copy,
        SALES,
        lambda d: d["access"].update(approved_consumers=[{"product": CUSTOMER_360, "purpose": "Revenue."}]),
    )

    registry = load_registry(mesh_copy, TODAY)

    [issue] = [i for i in registry.errors if i.file == path]
    assert issue.field == "access.approved_consumers"
    assert "moved out of the spec into access agreement files" in issue.message
    assert "`mesh access migrate`" in issue.fix
    assert SALES in registry.products  # the rest of the spec is still read


def test_the_shipped_agreement_schema_is_generated_from_the_model() -> None:
    assert AGREEMENT_SCHEMA_PATH.read_text() == schema_texts()[AGREEMENT_SCHEMA_PATH]
    schema = json.loads(AGREEMENT_SCHEMA_PATH.read_text())
    assert schema["additionalProperties"] is False
    assert {"consumer", "major", "purpose", "purpose_category"} <= set(schema["required"])


def test_no_spec_of_the_example_mesh_keeps_the_old_field(repo_root: Path) -> None:
    for key in ("sales.sales", "commercial_analytics.sales_forecast", "customers.customer_master"):
        assert "approved_consumers" not in yaml.safe_load(spec_path(repo_root, key).read_text())["access"]


def test_loading_reads_product_agreements_and_defers_peoples_until_asked(mesh_copy: Path) -> None:
    write_agreement(mesh_copy, SALES, agreement(CUSTOMER_360, major=2))
    bad = write_agreement(mesh_copy, SALES, {"consumer": {"kind": "person", "id": "x@example.com"}})

    registry = load_registry(mesh_copy, TODAY)

    assert [a.id for a in registry.loaded_agreements] == [f"{SALES}/{CUSTOMER_360}"]
    assert registry.errors == []  # a person's bad file never fails a code location's load
    assert f"{SALES}/team.finance" in {a.id for a in registry.agreements}
    assert {i.field for i in registry.agreement_issues if i.file == bad} >= {"purpose", "major"}
    assert {a.id for a in access.agreements_of(registry.products[SALES].spec)} >= {
        f"{SALES}/{CUSTOMER_360}",
        f"{SALES}/team.finance",
    }
