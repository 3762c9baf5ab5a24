"""Access policy, evaluated in one place and explained: may this request be approved, by whom, or by policy?

Every command that asks (`mesh access request`, `approve`, `mesh validate` on agreement files) goes through
`evaluate` and `check_decider`, so the answer and its reason are the same everywhere. Pure functions of the
request, the producer's spec, the mesh policy and the directory; `today` is passed in.

The order of reasons matters to the reader: hard refusals first (what no approver can override: clearance,
PII purposes, durations), then whether the policy approves automatically, and if not who must decide.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

from mesh_assets.product.access_rules import CLASSIFICATION_ORDER, MeshAccessPolicy
from mesh_assets.product.agreement import AccessAgreement, Action, ConsumerKind, PurposeCategory
from mesh_assets.product.directory import Directory
from mesh_assets.product.spec import DataProductSpec

GUARDRAILS = (
    "PII in clear is never approved automatically",
    "nobody approves their own request",
    "a restricted product needs a second approver from the governance team",
    "a product can narrow the mesh policy, never loosen it",
)
"""Rules no policy file can change (`docs/access.md`)."""
POLICY = "policy"
"""The `by` of a decision the policy made."""


@dataclass(frozen=True)
class AccessContext:
    """What evaluation reads besides the request: the mesh policy, the directory, the mesh's product specs."""

    policy: MeshAccessPolicy = field(default_factory=MeshAccessPolicy)
    directory: Directory = field(default_factory=Directory)
    product: Callable[[str], DataProductSpec | None] = lambda key: None
    """A consumer product's spec by `<domain>.<product>` (its domain and classification: its attributes)."""


@dataclass(frozen=True)
class Verdict:
    """The policy's answer to a request, with the reason in words."""

    outcome: str
    """`auto_approved`, `needs_decision` or `refused`."""
    reasons: list[str]
    deciders: list[str]
    """Who may decide (emails); for a restricted product, with `second_deciders` too."""
    second_deciders: list[str]
    end: date | None
    """The end the agreement gets (requested, or the longest the policy allows for people and tools)."""
    reassess_by: date | None

    def explain(self) -> str:
        """One line: outcome and why."""
        label = {"auto_approved": "auto-approved", "needs_decision": "needs a decision", "refused": "refused"}
        return f"{label[self.outcome]}: {'; '.join(self.reasons)}"


@dataclass(frozen=True)
class Rules:
    """The mesh policy narrowed by one product's own rules (a product never loosens it)."""

    auto_purposes: list[PurposeCategory]
    auto_source: str
    pii_purposes: list[PurposeCategory]
    max_days: dict[ConsumerKind, int]


def rules_for(spec: DataProductSpec, policy: MeshAccessPolicy) -> Rules:
    """The rules that apply to one product: the mesh's, intersected with and capped by the product's."""
    own = spec.access_policy.agreements
    auto, source = list(policy.auto_approve.purposes), "the mesh policy"
    if own.auto_approve_purposes is not None:
        auto = [p for p in own.auto_approve_purposes if p in policy.auto_approve.purposes]
        source = spec.key
    pii = list(policy.pii_in_clear_purposes)
    if own.pii_in_clear_purposes is not None:
        pii = [p for p in own.pii_in_clear_purposes if p in policy.pii_in_clear_purposes]
    days = {kind: min(policy.max_days.of(kind), own.max_days.get(kind, 10**6)) for kind in ConsumerKind}
    return Rules(auto, source, pii, days)


def deciders(spec: DataProductSpec, context: AccessContext) -> list[str]:
    """Who may decide a product's requests: steward, owner team members (directory), extra approvers."""
    found: list[str] = []
    if "steward" in context.policy.deciders:
        found.append(spec.owner.steward)
    if "owner_team" in context.policy.deciders:
        found += context.directory.team_members(spec.owner.team)
    found += spec.access_policy.agreements.approvers
    return list(dict.fromkeys(e.lower() for e in found))


def second_deciders(spec: DataProductSpec, context: AccessContext) -> list[str]:
    """The second approvers a restricted product needs (the governance team's members); none otherwise."""
    if spec.classification.value != "restricted":
        return []
    return [e.lower() for e in context.directory.team_members(context.policy.second_approver_team)]


def _rank(classification: str) -> int:
    return CLASSIFICATION_ORDER.index(classification)


def _consumer_attributes(agreement: AccessAgreement, context: AccessContext) -> tuple[str | None, str | None]:
    """(domain, clearance) of the consumer: from its spec for a product, else from the directory."""
    consumer = agreement.consumer
    if consumer.kind == ConsumerKind.PRODUCT:
        spec = context.product(consumer.id)
        return (spec.domain, spec.classification.value) if spec else (consumer.id.split(".")[0], None)
    entry = context.directory.find(consumer.kind, consumer.id)
    return (entry.domain, entry.clearance) if entry else (None, None)


def _refusals(
    agreement: AccessAgreement, producer: DataProductSpec, context: AccessContext, rules: Rules, today: date
) -> list[str]:
    consumer, classification = agreement.consumer, producer.classification.value
    refusals = []
    ports = {p.major: p for p in producer.output_ports}
    port = ports.get(agreement.major)
    if port is None:
        refusals.append(
            f"{producer.key} has no port v{agreement.major} (it serves {', '.join(f'v{m}' for m in ports)})"
        )
    elif agreement.columns:
        unknown = sorted(set(agreement.columns) - {c.name for c in port.columns})
        if unknown:
            refusals.append(f"columns {', '.join(unknown)} are not in {producer.key} v{agreement.major}")
    if consumer.kind == ConsumerKind.PRODUCT and consumer.id == producer.key:
        refusals.append("a product cannot hold an agreement on its own port")
    domain, clearance = _consumer_attributes(agreement, context)
    del domain
    if consumer.kind != ConsumerKind.PRODUCT and context.policy.clearance_required:
        if clearance is None:
            refusals.append(f"{consumer} is not in the directory, so its clearance is unknown")
        elif _rank(clearance) < _rank(classification):
            refusals.append(f"{consumer} is cleared for {clearance}, below {producer.key}'s {classification}")
    if agreement.pii_in_clear:
        if agreement.purpose_category not in rules.pii_purposes:
            allowed = ", ".join(p.value for p in rules.pii_purposes) or "none"
            refusals.append(
                f"purpose '{agreement.purpose_category.value}' may not see PII in clear (allowed: {allowed})"
            )
        if consumer.kind == ConsumerKind.PRODUCT and clearance and _rank(clearance) < _rank(classification):
            refusals.append(
                f"{consumer.id} is classified {clearance}, below {producer.key}'s {classification}: it could "
                "not protect PII it reads in clear"
            )
    start = agreement.start or today
    limit = rules.max_days[consumer.kind]
    if consumer.expires and agreement.end and agreement.end > start + timedelta(days=limit):
        refusals.append(
            f"access until {agreement.end} is longer than the {limit} days {producer.key} allows a "
            f"{consumer.kind.value} (at most {start + timedelta(days=limit)})"
        )
    return refusals


def evaluate(
    agreement: AccessAgreement, producer: DataProductSpec, context: AccessContext, today: date
) -> Verdict:
    """The policy's verdict on a request: refused, approved automatically, or who must decide."""
    rules = rules_for(producer, context.policy)
    start = agreement.start or today
    limit = rules.max_days[agreement.consumer.kind]
    expires = agreement.consumer.expires
    end = agreement.end or (start + timedelta(days=limit) if expires else None)
    reassess = agreement.reassess_by or (None if expires else start + timedelta(days=limit))
    who, second = deciders(producer, context), second_deciders(producer, context)
    refusals = _refusals(agreement, producer, context, rules, today)
    if refusals:
        return Verdict("refused", refusals, who, second, end, reassess)
    classification = producer.classification.value
    auto = context.policy.auto_approve
    has_pii = any(c.pii for p in producer.output_ports if p.major == agreement.major for c in p.columns)
    reasons: list[str] = []
    if agreement.pii_in_clear:
        reasons.append("PII in clear is always decided by a person")
    if classification not in auto.classifications:
        reasons.append(f"{classification} data is not approved automatically")
    if agreement.purpose_category not in rules.auto_purposes:
        allowed = ", ".join(p.value for p in rules.auto_purposes) or "none"
        reasons.append(
            f"purpose '{agreement.purpose_category.value}' is not approved automatically by "
            f"{rules.auto_source} (automatic: {allowed})"
        )
    if agreement.consumer.kind not in auto.consumer_kinds:
        reasons.append(f"a {agreement.consumer.kind.value} is not approved automatically")
    if auto.same_domain_only:
        domain, _ = _consumer_attributes(agreement, context)
        if domain != producer.domain:
            reasons.append(f"only consumers of domain {producer.domain} are approved automatically")
    if reasons:
        return Verdict("needs_decision", reasons, who, second, end, reassess)
    pii = "PII protected" if has_pii else "no PII"
    purpose = agreement.purpose_category.value
    why = f"{classification}, {pii}, purpose '{purpose}' allowed by {rules.auto_source}"
    return Verdict("auto_approved", [why], who, second, end, reassess)


def check_decider(
    agreement: AccessAgreement, producer: DataProductSpec, by: str, action: Action, context: AccessContext
) -> str | None:
    """Why `by` may not take `action` on the agreement, naming who may; None when entitled."""
    by = by.lower()
    who, second = deciders(producer, context), second_deciders(producer, context)
    entitled = who + [e for e in second if e not in who]
    if action == Action.APPROVE and by == agreement.requested_by.lower():
        return f"{by} asked for this access and cannot approve it (ask {_names(who)})"
    if (
        action == Action.REVOKE
        and agreement.consumer.kind == ConsumerKind.PERSON
        and by == agreement.consumer.id
    ):
        return None  # anyone may give up their own access
    if by not in entitled:
        return f"{by} may not decide on {producer.key}'s access; who may: {_names(entitled)}"
    pending = agreement.approval.value == "requested"  # later approvals are reassessments, by anyone entitled
    if action == Action.APPROVE and pending and by in agreement.approvers():
        return f"{by} already approved; {producer.key} needs another approver ({_names(second or who)})"
    return None


def approvals_complete(agreement: AccessAgreement, producer: DataProductSpec, context: AccessContext) -> bool:
    """Whether the approvals recorded suffice: one decider, plus a second approver on restricted data."""
    approvers = [a.lower() for a in agreement.approvers()]
    if POLICY in approvers:
        return True
    who, second = set(deciders(producer, context)), set(second_deciders(producer, context))
    owners = [a for a in approvers if a in who]
    if producer.classification.value != "restricted":
        return bool(owners)
    return bool(owners) and any(a in second and a not in owners[:1] for a in approvers)


def _names(emails: list[str]) -> str:
    return ", ".join(emails) or "nobody yet: add the steward or approvers to the product's access_policy"
