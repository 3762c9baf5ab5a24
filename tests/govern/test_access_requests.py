"""`mesh access`: asking writes an agreement file and a pull-request description, deciding is refused to
whoever is not entitled, every step is audited, and `mesh validate` judges hand-edited files the same way."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import time_machine
import typer
import yaml
from agreement_edits import agreement, write_agreement
from spec_edits import edit_spec, spec_path, write_later
from typer.testing import CliRunner

from mesh_assets.cli import access as access_command
from mesh_assets.govern import access_audit, access_report
from mesh_assets.govern import access_requests as requests
from mesh_assets.govern.validate import validate
from mesh_assets.product.agreement import Action, Approval, PurposeCategory, State
from mesh_assets.product.registry import load_registry

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
SALES = "sales.sales"
CUSTOMER_MASTER = "customers.customer_master"
CUSTOMER_360 = "commercial_analytics.customer_360"
FORECAST = "commercial_analytics.sales_forecast"
OMAR = "omar.haddad@example.com"
MARIA = "maria.keller@example.com"
ANA = "ana.lopez@example.com"


def mesh(*args: str) -> tuple[int, str]:
    app = typer.Typer()
    access_command.register(app)
    with time_machine.travel(NOW, tick=False):
        result = CliRunner().invoke(app, ["access", *args])
    return result.exit_code, result.output


def ask(root: Path, target: str, consumer: str, by: str = OMAR, **fields) -> requests.Outcome:
    fields.setdefault("category", PurposeCategory.REPORTING)
    category = fields.pop("category")
    return requests.request(
        root,
        load_registry(root, NOW.date()),
        target,
        consumer,
        "Monthly revenue for the close.",
        category,
        by,
        NOW,
        **fields,
    )


def test_a_request_the_policy_approves_is_written_approved_with_the_policys_reason(mesh_copy: Path) -> None:
    outcome = ask(mesh_copy, "sales.sales@v2", OMAR)

    written = yaml.safe_load(outcome.loaded.path.read_text())
    assert outcome.loaded.path == spec_path(mesh_copy, SALES).parent / "access" / f"{OMAR}.yaml"
    assert (
        written["approval"] == "approved"
        and written["start"] == "2026-12-06"
        and written["end"] == "2027-06-04"
    )
    assert written["decisions"][0]["by"] == "policy"
    assert "Approved by policy: merge, then `mesh access sync` provisions it." in outcome.message


def test_a_request_that_needs_a_decision_prints_a_pull_request_naming_who_decides(mesh_copy: Path) -> None:
    outcome = ask(mesh_copy, CUSTOMER_MASTER, "kenji.sato@example.com", by="kenji.sato@example.com")

    assert outcome.loaded.agreement.approval == Approval.REQUESTED
    assert outcome.loaded.agreement.major == 1  # the newest port when no version is named
    assert (
        "## Access request: person kenji.sato@example.com → customers.customer_master v1" in outcome.message
    )
    assert f"Who decides: {MARIA}" in outcome.message
    assert f"mesh access approve {CUSTOMER_MASTER}/kenji.sato@example.com --by <email>" in outcome.message


def test_a_request_the_policy_refuses_writes_nothing(mesh_copy: Path) -> None:
    with pytest.raises(requests.AccessError, match=r"cleared for internal, below customers\.customer_master"):
        ask(mesh_copy, CUSTOMER_MASTER, OMAR)

    assert not (spec_path(mesh_copy, CUSTOMER_MASTER).parent / "access" / f"{OMAR}.yaml").exists()


def test_asking_twice_for_what_is_already_in_force_is_refused(mesh_copy: Path) -> None:
    ask(mesh_copy, "sales.sales@v2", OMAR)

    with pytest.raises(
        requests.AccessError, match=r"already has agreement sales\.sales/omar\.haddad@example\.com"
    ):
        ask(mesh_copy, "sales.sales@v2", OMAR)


def test_the_owner_approves_and_the_decision_is_recorded_with_who_when_and_why(mesh_copy: Path) -> None:
    requested = ask(mesh_copy, CUSTOMER_MASTER, "kenji.sato@example.com", by="kenji.sato@example.com")
    registry = load_registry(mesh_copy, NOW.date())

    outcome = requests.decide(
        mesh_copy, registry, requested.loaded.id, Action.APPROVE, MARIA, "Field service.", NOW
    )

    approved = outcome.loaded.agreement
    assert approved.approval == Approval.APPROVED and approved.state(NOW.date()) == State.ACTIVE
    assert [(d.action, d.by, d.reason) for d in approved.decisions] == [
        (Action.APPROVE, MARIA, "Field service.")
    ]


def test_an_approver_who_is_not_entitled_is_refused_by_the_command_naming_who_is(mesh_copy: Path) -> None:
    code, output = mesh("approve", "customers.customer_master/lea.dubois@example.com", "--by", ANA)

    assert code == 1
    assert f"{ANA} may not decide on customers.customer_master's access; who may: {MARIA}" in output


def test_a_revocation_needs_a_reason_and_ends_the_agreement(mesh_copy: Path) -> None:
    code, output = mesh("revoke", "sales.sales/team.finance", "--by", ANA)
    assert code == 1 and "say why with --reason" in output

    code, output = mesh("revoke", "sales.sales/team.finance", "--by", ANA, "--reason", "Finance moved to v3.")

    assert code == 0, output
    [loaded] = [
        a for a in load_registry(mesh_copy, NOW.date()).agreements if a.id == "sales.sales/team.finance"
    ]
    assert loaded.state(NOW.date()) == State.REVOKED


def test_list_shows_the_decision_apart_from_the_state_and_filters_what_expires_soon(mesh_copy: Path) -> None:
    code, output = mesh("list", "--json", "--product", CUSTOMER_MASTER)
    assert code == 0, output
    rows = {r["consumer"]: r for r in json.loads(output)}
    assert rows["lea.dubois@example.com"]["approval"] == "requested"
    assert rows["nora.berg@example.com"]["approval"] == "approved"
    assert rows["nora.berg@example.com"]["state"] == "active"

    code, output = mesh("list", "--expiring", "30d")
    assert "no agreements match" in output
    with time_machine.travel(datetime(2027, 5, 20, tzinfo=UTC), tick=False):
        app = typer.Typer()
        access_command.register(app)
        soon = CliRunner().invoke(app, ["access", "list", "--expiring", "30d"]).output
    assert "nora.berg@example.com" in soon and "team.finance" not in soon


def test_every_request_and_decision_is_audited_and_the_chain_holds(mesh_copy: Path) -> None:
    requested = ask(mesh_copy, CUSTOMER_MASTER, "kenji.sato@example.com", by="kenji.sato@example.com")
    registry = load_registry(mesh_copy, NOW.date())
    requests.decide(mesh_copy, registry, requested.loaded.id, Action.REJECT, MARIA, "Use the aggregate.", NOW)

    log = spec_path(mesh_copy, CUSTOMER_MASTER).parent / "access" / "audit.jsonl"
    entries = access_audit.read(log)
    assert [(e["by"], e["action"], e["why"]) for e in entries[-2:]] == [
        ("kenji.sato@example.com", "request", "Monthly revenue for the close."),
        (MARIA, "reject", "Use the aggregate."),
    ]
    assert access_audit.verify(log).intact
    assert mesh("audit")[0] == 0


def test_an_edited_audit_entry_is_named_by_the_audit(mesh_copy: Path) -> None:
    log = spec_path(mesh_copy, CUSTOMER_MASTER).parent / "access" / "audit.jsonl"
    lines = log.read_text().splitlines()
    lines[1] = lines[1].replace("Customer segmentation", "Customer marketing")
    log.write_text("\n".join(lines) + "\n")

    code, output = mesh("audit")

    assert code == 1
    assert "BROKEN" in output and "line 2 (entry 2, request) was edited after it was written" in output


def test_a_removed_audit_entry_breaks_the_chain_at_the_next_one(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    for n in range(3):
        access_audit.append(log, by=ANA, action="request", agreement="a/b", what=f"step {n}", why="x", at=NOW)
    lines = log.read_text().splitlines()
    log.write_text("\n".join([lines[0], lines[2]]) + "\n")

    problem = access_audit.verify(log).problem

    assert problem is not None and problem.startswith("line 2 (entry 3) does not follow the entry before it")


def test_a_hand_written_approval_by_someone_not_entitled_fails_validation(mesh_copy: Path) -> None:
    path = write_agreement(mesh_copy, CUSTOMER_MASTER, agreement("kenji.sato@example.com", "person", by=ANA))

    [issue] = [i for i in validate(mesh_copy).errors if i.file == path]

    assert issue.field == "decisions[0].by"
    assert f"{ANA} may not decide on customers.customer_master's access; who may: {MARIA}" in issue.message


def test_a_hand_written_self_approval_fails_validation(mesh_copy: Path) -> None:
    data = agreement("kenji.sato@example.com", "person", by=MARIA, requested_by=MARIA)
    path = write_agreement(mesh_copy, CUSTOMER_MASTER, data)

    [issue] = [i for i in validate(mesh_copy).errors if i.file == path]

    assert "cannot approve it" in issue.message


def test_an_approval_required_input_without_an_agreement_names_the_request_command(mesh_copy: Path) -> None:
    edit_spec(mesh_copy, SALES, lambda d: d["access"].update(mode="approval_required"))

    issues = [i for i in validate(mesh_copy).errors if i.file == spec_path(mesh_copy, FORECAST)]

    assert any(f"mesh access request sales.sales@v2 --for {FORECAST} --purpose" in i.fix for i in issues), (
        issues
    )


def test_migrate_moves_approved_consumers_into_agreement_files_and_drops_the_field(mesh_copy: Path) -> None:
    path = spec_path(mesh_copy, SALES)
    text = path.read_text().replace(
        "  mode: open\n",
        "  mode: approval_required\n  approved_consumers:\n"
        f"    - {{product: {CUSTOMER_360}, purpose: Lifetime revenue per customer.}}\n"
        f"    - {{product: {FORECAST}, purpose: Revenue history to forecast from.}}\n",
    )
    write_later(path, text)
    assert any(i.field == "access.approved_consumers" for i in load_registry(mesh_copy).errors)

    code, output = mesh("migrate")

    assert code == 0, output
    assert "migrated 2 approval(s)" in output
    assert "approved_consumers" not in path.read_text() and "mode: approval_required" in path.read_text()
    registry = load_registry(mesh_copy, NOW.date())
    migrated = {a.agreement.consumer.id: a.agreement for a in registry.agreements if a.producer == SALES}
    assert migrated[CUSTOMER_360].decisions[0].by == ANA
    assert migrated[CUSTOMER_360].requested_by == "lea.dubois@example.com"
    # Each approval covers the port version its consumer reads (customer_360 v1, sales_forecast v2).
    assert (migrated[CUSTOMER_360].major, migrated[FORECAST].major) == (1, 2)
    assert validate(mesh_copy).errors == []


def test_the_example_mesh_agreements_validate_and_their_audit_trails_hold(repo_root: Path) -> None:
    registry = load_registry(repo_root, date(2026, 12, 6))
    ids = {a.id for a in registry.agreements}

    assert {"sales.sales/team.finance", "customers.customer_master/nora.berg@example.com"} <= ids
    assert not [i for i in validate(repo_root).errors if "access" in str(i.file)]
    assert all(log.intact for log in access_report.audit_logs(repo_root))


def test_a_product_agreement_past_its_reassessment_turns_secure_red_but_never_breaks_the_input(
    mesh_copy: Path,
) -> None:
    from mesh_assets.govern import fitness

    edit_spec(mesh_copy, SALES, lambda d: d["access"].update(mode="approval_required"))
    write_agreement(mesh_copy, SALES, agreement(CUSTOMER_360, major=1, reassess_by="2027-01-31"))
    write_agreement(mesh_copy, SALES, agreement(FORECAST, major=2, reassess_by="2028-01-31"))
    later = load_registry(mesh_copy, date(2027, 6, 1))

    assert later.errors == []  # the consumer still reads: time alone never breaks a product's input
    secure = next(p for p in fitness.evaluate(later).products if p.key == SALES).result(
        fitness.Characteristic.SECURE
    )
    assert not secure.passed
    assert f"{SALES}/{CUSTOMER_360} past their reassess-by date" in secure.reason
    assert "not gating" in secure.reason
    warnings = [i for i in validate(mesh_copy).warnings if i.field == "reassess_by"]
    assert warnings == [] or all("confirm it" in w.fix for w in warnings)


def test_the_ci_gate_judges_the_changed_agreement_files_against_the_policy(mesh_copy: Path) -> None:
    from mesh_assets.contracts.changed import ChangeSet
    from mesh_assets.govern.ci_gate import _access_step

    bad = write_agreement(mesh_copy, CUSTOMER_MASTER, agreement("kenji.sato@example.com", "person", by=ANA))
    waiting = ask(mesh_copy, CUSTOMER_MASTER, "ines.moreau@example.com", by="ines.moreau@example.com")
    files = [str(p.relative_to(mesh_copy)) for p in (bad, waiting.loaded.path)]
    registry = load_registry(mesh_copy, NOW.date())

    step = _access_step(mesh_copy, registry, ChangeSet(base="main", files=files))

    assert step is not None and not step.ok
    assert step.summary == "2 agreement file(s) changed, 1 against the policy"
    cases = {name.rsplit("/", 1)[1]: failure for name, failure in step.cases}
    assert (
        f"{ANA} may not decide on customers.customer_master's access" in cases["kenji.sato@example.com.yaml"]
    )
    assert cases["ines.moreau@example.com.yaml"] is None  # a request waiting for its decision may merge
    assert _access_step(mesh_copy, registry, ChangeSet(base="main", files=["docs/access.md"])) is None


def test_asking_again_after_a_rejection_rewrites_the_same_file_and_the_audit_keeps_both(
    mesh_copy: Path,
) -> None:
    first = ask(mesh_copy, CUSTOMER_MASTER, "kenji.sato@example.com", by="kenji.sato@example.com")
    registry = load_registry(mesh_copy, NOW.date())
    requests.decide(mesh_copy, registry, first.loaded.id, Action.REJECT, MARIA, "Use the aggregate.", NOW)

    again = ask(mesh_copy, CUSTOMER_MASTER, "kenji.sato@example.com", by="kenji.sato@example.com")

    assert again.loaded.path == first.loaded.path and again.loaded.agreement.approval == Approval.REQUESTED
    actions = [e["action"] for e in access_audit.read(first.loaded.path.parent / "audit.jsonl")]
    assert actions[-3:] == ["request", "reject", "request"]
    assert validate(mesh_copy).errors == []


def test_the_owner_who_approved_confirms_the_agreement_at_its_reassessment(mesh_copy: Path) -> None:
    write_agreement(mesh_copy, SALES, agreement(CUSTOMER_360, major=1, by=ANA, reassess_by="2026-12-01"))
    registry = load_registry(mesh_copy, NOW.date())

    outcome = requests.decide(
        mesh_copy, registry, f"{SALES}/{CUSTOMER_360}", Action.APPROVE, ANA, "Still needed.", NOW
    )

    assert outcome.message.endswith("reassessed by ana.lopez@example.com, next by 2027-12-06")
    assert not outcome.loaded.agreement.overdue(NOW.date())
    assert validate(mesh_copy).errors == []


def test_a_persons_access_is_not_reassessed_but_asked_for_again(mesh_copy: Path) -> None:
    registry = load_registry(mesh_copy, NOW.date())

    with pytest.raises(requests.AccessError, match="is a person's access: it is not reassessed"):
        requests.decide(mesh_copy, registry, "nora.berg@example.com", Action.APPROVE, MARIA, "More.", NOW)


def test_the_request_command_writes_the_file_and_prints_the_pull_request(mesh_copy: Path) -> None:
    code, output = mesh(
        "request",
        "customers.customer_master@v1",
        "--for",
        "kenji.sato@example.com",
        "--category",
        "analytics",
        "--purpose",
        "Instrument sites by customer type.",
        "--by",
        "kenji.sato@example.com",
    )

    assert code == 0, output
    assert "wrote domains/customers/products/customer_master/access/kenji.sato@example.com.yaml" in output
    assert f"Who decides: {MARIA}" in output


def test_a_bad_request_names_what_to_write(mesh_copy: Path) -> None:
    code, output = mesh("request", "sales", "--for", OMAR, "--purpose", "Monthly revenue.", "--by", OMAR)

    assert code == 1 and "'sales' is not <domain>.<product>[@vN]. Fix: e.g. sales.sales@v2" in output


def test_the_directory_is_rewritten_from_a_csv_export(mesh_copy: Path, tmp_path: Path) -> None:
    export = tmp_path / "people.csv"
    export.write_text("id,team,domain,clearance\nnew.person@example.com,finance,finance,internal\n")

    code, output = mesh("directory", "import", str(export))

    assert code == 0, output
    assert "1 people, 0 service principals, 0 teams" in output
    written = yaml.safe_load((mesh_copy / "domains" / "mesh" / "directory.yaml").read_text())
    assert written["people"] == [
        {"id": "new.person@example.com", "team": "finance", "domain": "finance", "clearance": "internal"}
    ]
