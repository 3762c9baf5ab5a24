"""Asking for access and deciding on it: the agreement files and audit entries `mesh access` writes.

Every step goes through the policy (`access_evaluation`): a request the policy refuses is not written; one
it approves is written approved, with the policy's explanation as the decision's reason; any other names
who must decide. A decision is refused when the person is not entitled, naming who is. Each step appends
to the product's audit trail (`access_audit`). Nothing here touches the warehouse: `mesh access sync`
provisions what is in force.

`now` is passed in by the commands (tests pin it), never read here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import yaml

from mesh_assets.govern import access_audit
from mesh_assets.product import access_evaluation as evaluation
from mesh_assets.product.access_rules import load_mesh_policy
from mesh_assets.product.agreement import (
    ACCESS_FOLDER,
    AUDIT_FILE,
    EMAIL,
    AccessAgreement,
    Action,
    Approval,
    Consumer,
    ConsumerKind,
    DecisionRecord,
    PurposeCategory,
)
from mesh_assets.product.agreement_files import LoadedAgreement, agreement_path, dump
from mesh_assets.product.directory import load_directory
from mesh_assets.product.errors import SpecIssue
from mesh_assets.product.registry import Registry

TARGET = re.compile(r"^(?P<product>[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*)(?:@v?(?P<major>\d+))?$")


class AccessError(Exception):
    """A request or decision that cannot be made: what is wrong and what to do."""

    def __init__(self, message: str, fix: str) -> None:
        self.message, self.fix = message, fix
        super().__init__(f"{message}. Fix: {fix}")


@dataclass(frozen=True)
class Outcome:
    """What a request or decision did."""

    loaded: LoadedAgreement
    message: str
    verdict: evaluation.Verdict | None = None


def context_for(root: Path, registry: Registry) -> tuple[evaluation.AccessContext, list[SpecIssue]]:
    """The mesh policy, the directory and the registry's specs, as evaluation reads them."""
    policy, policy_issues = load_mesh_policy(root)
    directory, directory_issues = load_directory(root)

    def product(key: str):
        found = registry.products.get(key)
        return found.spec if found else None

    return evaluation.AccessContext(policy, directory, product), policy_issues + directory_issues


def audit_path(producer_folder: Path) -> Path:
    """A product's audit trail."""
    return producer_folder / ACCESS_FOLDER / AUDIT_FILE


def parse_consumer(text: str, registry: Registry, context: evaluation.AccessContext) -> Consumer:
    """`--for`: a product `<domain>.<product>`, an email, `team:<name>` or `sp:<name>` (or a name the
    directory knows as a team or service principal)."""
    text = text.strip()
    prefixed = re.match(r"^(team|sp|service_principal)[:.](.+)$", text)
    if prefixed:
        kind = ConsumerKind.TEAM if prefixed[1] == "team" else ConsumerKind.SERVICE_PRINCIPAL
        return Consumer(kind=kind, id=prefixed[2])
    if re.match(EMAIL, text):
        return Consumer(kind=ConsumerKind.PERSON, id=text.lower())
    if text in registry.products:
        return Consumer(kind=ConsumerKind.PRODUCT, id=text)
    for kind in (ConsumerKind.TEAM, ConsumerKind.SERVICE_PRINCIPAL):
        if context.directory.find(kind, text) is not None:
            return Consumer(kind=kind, id=text)
    raise AccessError(
        f"'{text}' is no product of the mesh, email, team or service principal the directory knows",
        "write <domain>.<product>, an email, team:<name> or sp:<name>",
    )


def request(
    root: Path,
    registry: Registry,
    target: str,
    consumer_text: str,
    purpose: str,
    category: PurposeCategory,
    requested_by: str,
    now: datetime,
    *,
    columns: list[str] | None = None,
    pii: bool = False,
    until: date | None = None,
) -> Outcome:
    """Write a request as an agreement file (approved at once when the policy says so) and audit it."""
    match = TARGET.match(target.strip())
    if not match:
        raise AccessError(f"'{target}' is not <domain>.<product>[@vN]", "e.g. sales.sales@v2")
    producer = registry.products.get(match["product"])
    if producer is None:
        raise AccessError(f"no product '{match['product']}' in the mesh", "name one `mesh access list` shows")
    served = sorted(p.major for p in producer.spec.output_ports)
    major = int(match["major"]) if match["major"] else served[-1]
    context, _ = context_for(root, registry)
    consumer = parse_consumer(consumer_text, registry, context)
    today = now.date()
    mine = [a for a in registry.agreements if a.producer == producer.key]
    for existing in mine:
        same = existing.agreement.consumer == consumer and existing.agreement.major == major
        if same and existing.state(today).value in {"requested", "approved", "active"}:
            raise AccessError(
                f"{consumer} already has agreement {existing.id} on {producer.key} v{major} "
                f"({existing.state(today).value})",
                "see it with `mesh access list`; ask again only after it is rejected, revoked or expired",
            )
    drafted = AccessAgreement(
        consumer=consumer,
        major=major,
        purpose=purpose,
        purpose_category=category,
        columns=columns or None,
        pii_in_clear=pii,
        requested_by=requested_by,
        requested_at=now,
        end=until,
    )
    verdict = evaluation.evaluate(drafted, producer.spec, context, today)
    if verdict.outcome == "refused":
        raise AccessError(
            f"the policy refuses this request: {'; '.join(verdict.reasons)}", "change the request as it says"
        )
    fields = {"end": verdict.end, "reassess_by": verdict.reassess_by}
    if verdict.outcome == "auto_approved":
        decision = DecisionRecord(
            action=Action.APPROVE, by=evaluation.POLICY, at=now, reason=verdict.explain()
        )
        fields |= {"approval": Approval.APPROVED, "decisions": [decision], "start": today}
    agreement = drafted.model_copy(update=fields)
    # One file per consumer and version: asking again after a rejection, revocation or expiry rewrites
    # that file (git and the audit trail keep the earlier decision).
    same = [a for a in mine if a.agreement.consumer == consumer]
    earlier = next((a.path for a in same if a.agreement.major == major), None)
    path = earlier or agreement_path(producer.folder, consumer, major, [a.path for a in same])
    loaded = _write(path, agreement, producer.key)
    log = audit_path(producer.folder)
    what = f"{consumer} asks to read {producer.key} v{major}" + (" with PII in clear" if pii else "")
    access_audit.append(
        log, by=requested_by, action="request", agreement=loaded.id, what=what, why=purpose, at=now
    )
    if verdict.outcome == "auto_approved":
        access_audit.append(
            log,
            by="policy",
            action="approve",
            agreement=loaded.id,
            what="approved",
            why=verdict.explain(),
            at=now,
        )
    return Outcome(loaded, pull_request(loaded, verdict, producer.spec.key), verdict)


def pull_request(loaded: LoadedAgreement, verdict: evaluation.Verdict, producer: str) -> str:
    """The description of the pull request that carries the agreement file."""
    agreement = loaded.agreement
    lines = [
        f"## Access request: {agreement.consumer} → {producer} v{agreement.major}",
        "",
        f"- purpose ({agreement.purpose_category.value}): {agreement.purpose}",
        f"- columns: {', '.join(agreement.columns) if agreement.columns else 'all'}",
        f"- PII: {'in clear' if agreement.pii_in_clear else 'protected (masked, hashed or removed)'}",
        f"- until: {agreement.end or 'no end'}"
        + (f"; reassess by {agreement.reassess_by}" if agreement.reassess_by else ""),
        f"- file: `{loaded.path.name}` in `{producer}`'s access folder; agreement id `{loaded.id}`",
        "",
        f"Policy: {verdict.explain()}",
    ]
    if verdict.outcome == "auto_approved":
        lines.append("Approved by policy: merge, then `mesh access sync` provisions it.")
    else:
        lines.append(f"Who decides: {', '.join(verdict.deciders) or 'nobody is entitled yet'}")
        if verdict.second_deciders:
            lines.append(f"Second approver (restricted data): one of {', '.join(verdict.second_deciders)}")
        lines.append(f'They run: `mesh access approve {loaded.id} --by <email> --reason "…"` (or reject)')
    return "\n".join(lines)


def find(registry: Registry, agreement_id: str) -> LoadedAgreement:
    """The agreement a command names, by id (`<producer>/<file stem>`) or by a unique end of it."""
    exact = [a for a in registry.agreements if a.id == agreement_id]
    found = exact or [a for a in registry.agreements if a.id.endswith(agreement_id)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise AccessError(f"no agreement '{agreement_id}'", "see the ids with `mesh access list`")
    raise AccessError(
        f"'{agreement_id}' names {len(found)} agreements ({', '.join(a.id for a in found)})",
        "give the full id",
    )


def decide(
    root: Path, registry: Registry, agreement_id: str, action: Action, by: str, reason: str, now: datetime
) -> Outcome:
    """Approve, reject or revoke an agreement as `by`, if entitled; record the decision and audit it."""
    loaded = find(registry, agreement_id)
    producer = registry.products[loaded.producer]
    context, _ = context_for(root, registry)
    agreement, today = loaded.agreement, now.date()
    allowed_from = {
        Action.APPROVE: {Approval.REQUESTED, Approval.APPROVED},
        Action.REJECT: {Approval.REQUESTED},
        Action.REVOKE: {Approval.APPROVED},
    }[action]
    if agreement.approval not in allowed_from:
        raise AccessError(
            f"{loaded.id} is {agreement.approval.value}; it cannot be {action.value}d",
            "ask again with `mesh access request`" if action == Action.APPROVE else "nothing to do",
        )
    refusal = evaluation.check_decider(agreement, producer.spec, by, action, context)
    if refusal:
        raise AccessError(refusal, "ask one of them to decide")
    update: dict = {}
    decisions = [*agreement.decisions, DecisionRecord(action=action, by=by.lower(), at=now, reason=reason)]
    message = f"{loaded.id}: {action.value}d by {by}"
    if action == Action.APPROVE and agreement.approval == Approval.APPROVED:
        # Approving an approved agreement is its reassessment: the owner confirms it for another period.
        if agreement.consumer.expires:
            raise AccessError(
                f"{loaded.id} is a {agreement.consumer.kind.value}'s access: it is not reassessed, it ends "
                f"{agreement.end}",
                "to keep access after that, the consumer asks again (`mesh access request`)",
            )
        days = evaluation.rules_for(producer.spec, context.policy).max_days[agreement.consumer.kind]
        update["reassess_by"] = today + timedelta(days=days)
        message = f"{loaded.id}: reassessed by {by}, next by {update['reassess_by']}"
    elif action == Action.APPROVE:
        verdict = evaluation.evaluate(agreement, producer.spec, context, today)
        if verdict.outcome == "refused":
            raise AccessError(f"the policy refuses it: {'; '.join(verdict.reasons)}", "reject it instead")
        candidate = agreement.model_copy(update={"decisions": decisions})
        if evaluation.approvals_complete(candidate, producer.spec, context):
            update |= {"approval": Approval.APPROVED, "start": agreement.start or today}
            update |= {"end": verdict.end, "reassess_by": verdict.reassess_by}
        else:
            message = f"{loaded.id}: approved by {by}; a second approver must approve too " + (
                f"({', '.join(verdict.second_deciders)})"
            )
    elif action == Action.REJECT:
        update["approval"] = Approval.REJECTED
    else:
        update |= {"approval": Approval.REVOKED}
    updated = AccessAgreement.model_validate(
        {**agreement.model_dump(by_alias=True), **update, "decisions": decisions}
    )
    result = _write(loaded.path, updated, loaded.producer)
    access_audit.append(
        audit_path(producer.folder),
        by=by.lower(),
        action=action.value,
        agreement=loaded.id,
        what=message.split(": ", 1)[1],
        why=reason,
        at=now,
    )
    return Outcome(result, message)


def _write(path: Path, agreement: AccessAgreement, producer: str) -> LoadedAgreement:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump(agreement))
    return LoadedAgreement(agreement, path, producer)


def _majors_read(registry: Registry, consumer: str, producer: str) -> list[int]:
    """The producer's port versions a consumer product's declared inputs resolve to."""
    found = registry.products.get(consumer)
    if found is None:
        return []
    majors = set()
    for declared in found.spec.product_inputs:
        resolved = registry.resolve(found, declared) if declared.product == producer else None
        if resolved is not None:
            majors.add(resolved.port.major)
    return sorted(majors)


def migrate(root: Path, now: datetime) -> list[Path]:
    """Move every spec's `access.approved_consumers` into agreement files (approved, by the steward, for
    every port version the consumer reads, else the newest) and drop the field; returns the files written."""
    from mesh_assets.product.registry import load_registry

    registry = load_registry(root, now.date())  # the specs still load: the old field is reported, not fatal
    written: list[Path] = []
    for spec_file in sorted((root / "domains").glob("*/products/*/dataproduct.yaml")):
        text = spec_file.read_text()
        data = yaml.safe_load(text) or {}
        listed = (data.get("access") or {}).get("approved_consumers")
        if listed is None:
            continue
        key = f"{data.get('domain')}.{data.get('name')}"
        steward = (data.get("owner") or {}).get("steward", "steward@example.com")
        majors = sorted({int(str(p["version"]).split(".")[0]) for p in data.get("output_ports", [])})
        for entry in listed:
            consumer = Consumer(kind=ConsumerKind.PRODUCT, id=str(entry["product"]).replace("/", "."))
            # The consumer's steward asked (in the old world, by asking the owner to edit the spec); the
            # producer's steward approved: recorded so, nobody approves their own request.
            asker = _steward_of(root, consumer.id) or steward
            for major in _majors_read(registry, consumer.id, key) or majors[-1:]:
                written.append(
                    _migrate_one(spec_file.parent, key, consumer, major, entry, asker, steward, now)
                )
        spec_file.write_text(_drop_field(text))
    return written


def _migrate_one(
    folder: Path,
    key: str,
    consumer: Consumer,
    major: int,
    entry: dict,
    asker: str,
    steward: str,
    now: datetime,
) -> Path:
    decision = DecisionRecord(
        action=Action.APPROVE,
        by=steward,
        at=now,
        reason="migrated from access.approved_consumers (approved in the spec before agreements)",
    )
    agreement = AccessAgreement(
        consumer=consumer,
        major=major,
        purpose=str(entry.get("purpose") or "").ljust(10, "."),
        purpose_category=PurposeCategory.DATA_PRODUCT,
        requested_by=asker,
        requested_at=now,
        approval=Approval.APPROVED,
        decisions=[decision],
        start=now.date(),
        reassess_by=now.date() + timedelta(days=365),
    )
    taken = [p for p in (folder / ACCESS_FOLDER).glob("*.yaml")] if (folder / ACCESS_FOLDER).is_dir() else []
    loaded = _write(agreement_path(folder, consumer, major, taken), agreement, key)
    access_audit.append(
        audit_path(folder),
        by=steward,
        action="migrate",
        agreement=loaded.id,
        what=f"approved for v{major} (migrated from the spec)",
        why=agreement.purpose,
        at=now,
    )
    return loaded.path


def _steward_of(root: Path, key: str) -> str | None:
    domain, _, name = key.partition(".")
    path = root / "domains" / domain / "products" / name / "dataproduct.yaml"
    if not path.exists():
        return None
    return ((yaml.safe_load(path.read_text()) or {}).get("owner") or {}).get("steward")


def _drop_field(text: str) -> str:
    """The spec's text without its `approved_consumers:` block (comments and order elsewhere kept)."""
    lines, out, skipping, indent = text.splitlines(keepends=True), [], False, 0
    for line in lines:
        stripped = line.lstrip()
        current = len(line) - len(stripped)
        inside = current > indent or (current == indent and stripped.startswith("- "))
        if skipping and (not stripped.strip() or inside):
            continue
        skipping = False
        if stripped.startswith("approved_consumers:"):
            skipping, indent = True, current
            continue
        out.append(line)
    return "".join(out)
