"""The access policy, evaluated in one place and explained: automatic approval, who decides, guardrails no
product can loosen, attribute-based rules read from the directory, and the directory's CSV import."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from agreement_edits import agreement

from mesh_assets.product import access_evaluation as evaluation
from mesh_assets.product.access_rules import MeshAccessPolicy, load_mesh_policy
from mesh_assets.product.agreement import AccessAgreement, Action, ConsumerKind
from mesh_assets.product.directory import Directory, import_csv, load_directory
from mesh_assets.product.registry import Registry, load_registry
from mesh_assets.product.spec import DataProductSpec

TODAY = date(2026, 12, 6)
SALES = "sales.sales"
CUSTOMER_MASTER = "customers.customer_master"
OMAR = "omar.haddad@example.com"
MARIA = "maria.keller@example.com"
INES = "ines.moreau@example.com"


@pytest.fixture(scope="module")
def shipped(repo_root: Path) -> Registry:
    return load_registry(repo_root, TODAY)


@pytest.fixture(scope="module")
def context(repo_root: Path, shipped: Registry) -> evaluation.AccessContext:
    policy, issues = load_mesh_policy(repo_root)
    directory, more = load_directory(repo_root)
    assert issues == more == []
    return evaluation.AccessContext(policy, directory, lambda key: shipped.products[key].spec)


def spec(shipped: Registry, key: str, **changes) -> DataProductSpec:
    data = shipped.products[key].spec.model_dump(mode="json", by_alias=True)
    for field, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(field), dict):
            data[field] = {**data[field], **value}
        else:
            data[field] = value
    return DataProductSpec.model_validate(data)


def request(consumer: str = OMAR, kind: str = "person", **fields) -> AccessAgreement:
    return AccessAgreement.model_validate(
        agreement(consumer, kind, approval="requested", requested_by=OMAR, **fields)
    )


def test_an_analyst_request_for_internal_data_without_pii_is_approved_automatically(
    shipped: Registry, context: evaluation.AccessContext
) -> None:
    verdict = evaluation.evaluate(request(major=2), shipped.products[SALES].spec, context, TODAY)

    assert verdict.outcome == "auto_approved"
    assert verdict.explain() == (
        "auto-approved: internal, no PII, purpose 'reporting' allowed by the mesh policy"
    )
    assert verdict.end == date(2027, 6, 4)  # a person's access ends at the policy's longest: 180 days


def test_a_products_own_rules_are_named_when_they_decide(
    shipped: Registry, context: evaluation.AccessContext
) -> None:
    sales = spec(shipped, SALES, access_policy={"agreements": {"auto_approve_purposes": ["reporting"]}})

    verdict = evaluation.evaluate(request(major=2), sales, context, TODAY)

    assert verdict.explain() == "auto-approved: internal, no PII, purpose 'reporting' allowed by sales.sales"


def test_a_product_cannot_loosen_the_mesh_policy_by_listing_more_purposes(
    shipped: Registry, context: evaluation.AccessContext
) -> None:
    loosened = spec(
        shipped, SALES, access_policy={"agreements": {"auto_approve_purposes": ["machine_learning"]}}
    )

    verdict = evaluation.evaluate(
        request(major=2, purpose_category="machine_learning"), loosened, context, TODAY
    )

    assert verdict.outcome == "needs_decision"
    assert "not approved automatically by sales.sales (automatic: none)" in verdict.explain()


def test_pii_in_clear_is_never_automatic_even_for_a_purpose_allowed_to_see_it(
    shipped: Registry, context: evaluation.AccessContext
) -> None:
    public = spec(shipped, CUSTOMER_MASTER, classification="internal")
    ask = request(purpose_category="customer_support", pii_in_clear=True)
    generous = evaluation.AccessContext(
        context.policy.model_copy(
            update={
                "auto_approve": context.policy.auto_approve.model_copy(
                    update={"purposes": ["customer_support"]}
                )
            }
        ),
        context.directory,
        context.product,
    )

    verdict = evaluation.evaluate(ask, public, generous, TODAY)

    assert verdict.outcome == "needs_decision"
    assert "PII in clear is always decided by a person" in verdict.reasons
    assert verdict.deciders == [MARIA]


def test_pii_in_clear_for_a_purpose_the_policy_does_not_allow_is_refused(
    shipped: Registry, context: evaluation.AccessContext
) -> None:
    ask = request(purpose_category="analytics", pii_in_clear=True, consumer="lea.dubois@example.com")

    verdict = evaluation.evaluate(ask, shipped.products[CUSTOMER_MASTER].spec, context, TODAY)

    assert verdict.outcome == "refused"
    assert (
        "purpose 'analytics' may not see PII in clear (allowed: customer_support, operations, compliance)"
        in (verdict.reasons)
    )


def test_a_person_cleared_below_the_products_classification_is_refused_by_the_directory(
    shipped: Registry, context: evaluation.AccessContext
) -> None:
    verdict = evaluation.evaluate(request(), shipped.products[CUSTOMER_MASTER].spec, context, TODAY)

    assert verdict.outcome == "refused"
    assert verdict.reasons == [
        f"person {OMAR} is cleared for internal, below customers.customer_master's confidential"
    ]


def test_someone_the_directory_does_not_know_is_refused(
    shipped: Registry, context: evaluation.AccessContext
) -> None:
    verdict = evaluation.evaluate(
        request("stranger@example.com", major=2), shipped.products[SALES].spec, context, TODAY
    )

    assert verdict.reasons == [
        "person stranger@example.com is not in the directory, so its clearance is unknown"
    ]


def test_access_longer_than_the_policy_allows_a_person_is_refused_naming_the_last_day(
    shipped: Registry, context: evaluation.AccessContext
) -> None:
    verdict = evaluation.evaluate(
        request(major=2, end="2028-01-01"), shipped.products[SALES].spec, context, TODAY
    )

    assert verdict.outcome == "refused"
    assert "longer than the 180 days sales.sales allows a person (at most 2027-06-04)" in verdict.reasons[0]


def test_nobody_approves_their_own_request(shipped: Registry, context: evaluation.AccessContext) -> None:
    mine = AccessAgreement.model_validate(
        agreement("nora.berg@example.com", "person", approval="requested", requested_by=MARIA)
    )

    refusal = evaluation.check_decider(
        mine, shipped.products[CUSTOMER_MASTER].spec, MARIA, Action.APPROVE, context
    )

    assert refusal == f"{MARIA} asked for this access and cannot approve it (ask {MARIA})"


def test_an_approver_who_is_not_entitled_is_refused_naming_who_is(
    shipped: Registry, context: evaluation.AccessContext
) -> None:
    refusal = evaluation.check_decider(
        request(), shipped.products[CUSTOMER_MASTER].spec, "ana.lopez@example.com", Action.APPROVE, context
    )

    assert refusal == (
        "ana.lopez@example.com may not decide on customers.customer_master's access; who may: " + MARIA
    )


def test_restricted_data_needs_a_second_approver_from_the_governance_team(
    shipped: Registry, context: evaluation.AccessContext
) -> None:
    restricted = spec(shipped, CUSTOMER_MASTER, classification="restricted")
    ask = request("nora.berg@example.com")
    once = ask.model_copy(
        update={"decisions": [*agreement("x@example.com", "person", by=MARIA)["decisions"]]}
    )
    once = AccessAgreement.model_validate(once.model_dump())

    assert evaluation.second_deciders(restricted, context) == [INES]
    assert not evaluation.approvals_complete(once, restricted, context)
    assert "already approved" in evaluation.check_decider(once, restricted, MARIA, Action.APPROVE, context)
    assert evaluation.check_decider(once, restricted, INES, Action.APPROVE, context) is None
    twice = once.model_copy(
        update={"decisions": [*once.decisions, once.decisions[0].model_copy(update={"by": INES})]}
    )
    assert evaluation.approvals_complete(twice, restricted, context)


def test_the_owner_team_decides_when_the_directory_lists_its_members(shipped: Registry) -> None:
    directory = Directory.model_validate(
        {
            "people": [
                {"id": "tom@example.com", "team": "sales_data"},
                {"id": "x@example.com", "team": "other"},
            ]
        }
    )
    context = evaluation.AccessContext(MeshAccessPolicy(), directory)

    assert evaluation.deciders(shipped.products[SALES].spec, context) == [
        "ana.lopez@example.com",
        "tom@example.com",
    ]


def test_the_directory_is_imported_from_an_identity_system_csv(tmp_path: Path) -> None:
    export = tmp_path / "people.csv"
    export.write_text(
        "kind,id,team,domain,clearance\n"
        ",nora.berg@example.com,customer_support,customers,confidential\n"
        "service_principal,forecast_bot,commercial_analytics,,\n"
        "team,finance,finance,finance,internal\n"
    )

    directory, issues = import_csv(export)

    assert issues == []
    assert directory.find(ConsumerKind.PERSON, "Nora.Berg@example.com").clearance == "confidential"
    assert directory.service_principals[0].clearance == "internal"
    assert [t.id for t in directory.teams] == ["finance"]


def test_a_bad_csv_row_names_the_line(tmp_path: Path) -> None:
    export = tmp_path / "people.csv"
    export.write_text("id,team,clearance\nnora@example.com,support,top_secret\n")

    _, [issue] = import_csv(export)

    assert issue.field == "line 2"
    assert issue.message.startswith("clearance: Input should be") and "'top_secret'" in issue.message
