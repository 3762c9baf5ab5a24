"""The product-wide promises every port carries: SLOs, classification, access, rights, agreement, people.

A change here binds every major at once, so a new major cannot carry a breaking one: the fix is named
from `diff_rules.PRODUCT_FIXES`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from mesh_assets.contracts.diff_freshness import compare_freshness, describe_freshness, hours
from mesh_assets.contracts.diff_rules import PRODUCT_FIELDS, PRODUCT_FIXES, Change, Consumer, Rule
from mesh_assets.product import access
from mesh_assets.product.spec import Classification, DataProductSpec

_CLASSIFICATION_ORDER = list(Classification)  # declared from least to most sensitive


@dataclass
class _Found:
    """The product-wide changes found so far, each placed on the spec field it is about."""

    key: str
    changes: list[Change] = field(default_factory=list)

    def add(
        self,
        rule: Rule,
        breaking: bool,
        reason: str,
        *,
        column: str | None = None,
        warning: bool = False,
        affected: Sequence[Consumer] = (),
    ) -> None:
        where = column or PRODUCT_FIELDS.get(rule)
        self.changes.append(
            Change(self.key, None, where, rule, breaking, reason, warning=warning, consumers=tuple(affected))
        )


def diff_promises(base: DataProductSpec, head: DataProductSpec, consumers: list[Consumer]) -> list[Change]:
    """Product-wide changes: SLOs, classification, access, access policy, rights, agreement, people."""
    found = _Found(head.key)
    for judge in (
        _slos,
        _classification,
        _access,
        _access_policy,
        _distribution_rights,
        _agreement_and_people,
    ):
        judge(base, head, consumers, found)
    return [replace(c, fix=PRODUCT_FIXES.get(c.rule, "")) if c.breaking else c for c in found.changes]


def _slos(base: DataProductSpec, head: DataProductSpec, consumers: list[Consumer], found: _Found) -> None:
    """Freshness, availability and quality targets, and the window SLIs are measured over."""
    slo_old, slo_new = base.slos, head.slos
    if slo_old.freshness != slo_new.freshness:
        old_text, new_text = describe_freshness(slo_old.freshness), describe_freshness(slo_new.freshness)
        try:
            verdict, old_age, new_age = compare_freshness(slo_old.freshness, slo_new.freshness)
        except Exception as exc:  # a cron the scheduler cannot parse: say so rather than guess
            found.add(
                Rule.SLO_CHANGED,
                False,
                f"freshness {old_text} -> {new_text}; cannot compare ({exc})",
                warning=True,
                affected=consumers,
            )
        else:
            change = f"freshness {old_text} -> {new_text}"
            if verdict == "weaker":
                why = (
                    f"data may be {hours(new_age)} old at worst (was {hours(old_age)})"
                    if new_age > old_age
                    else "some deadlines come later, so readers scheduled on them get older data"
                )
                found.add(
                    Rule.SLO_WEAKER, True, f"{change}: {why}", column="slos.freshness", affected=consumers
                )
            elif verdict == "stronger":
                found.add(
                    Rule.SLO_STRONGER,
                    False,
                    f"{change}: data at most {hours(new_age)} old (was {hours(old_age)})",
                    column="slos.freshness",
                )
            else:
                found.add(
                    Rule.SLO_CHANGED,
                    False,
                    f"freshness {old_text} -> {new_text} (same promise)",
                    column="slos.freshness",
                )
    for name, before, after in (
        ("availability", slo_old.availability, slo_new.availability),
        ("quality_pass_rate", slo_old.quality_pass_rate, slo_new.quality_pass_rate),
    ):
        if after < before:
            found.add(
                Rule.SLO_WEAKER,
                True,
                f"{name} target {before:g} -> {after:g}",
                column=f"slos.{name}",
                affected=consumers,
            )
        elif after > before:
            found.add(
                Rule.SLO_STRONGER, False, f"{name} target {before:g} -> {after:g}", column=f"slos.{name}"
            )
    if slo_old.window != slo_new.window:
        found.add(
            Rule.SLO_CHANGED,
            False,
            f"SLIs measured over {slo_old.window} -> {slo_new.window}",
            column="slos.window",
        )


def _classification(
    base: DataProductSpec, head: DataProductSpec, consumers: list[Consumer], found: _Found
) -> None:
    """A stricter class locks out consumers cleared for the old one."""
    rank = _CLASSIFICATION_ORDER.index
    if rank(head.classification) > rank(base.classification):
        # More sensitive data needs more clearance: consumers cleared for the old class lose access.
        found.add(
            Rule.CLASSIFICATION_STRICTER,
            bool(consumers),
            f"classification {base.classification} -> {head.classification}: readers need clearance "
            f"for {head.classification} data" + ("" if consumers else "; no consumer reads it yet"),
            warning=not consumers,
            affected=consumers,
        )
    elif rank(head.classification) < rank(base.classification):
        found.add(
            Rule.CLASSIFICATION_RELAXED,
            False,
            f"classification {base.classification} -> {head.classification}",
        )


def _access(base: DataProductSpec, head: DataProductSpec, consumers: list[Consumer], found: _Found) -> None:
    """Open or approval required. Who is approved is no longer in the spec but in agreement files: a
    withdrawn agreement is `mesh access revoke` (audited), and a consumer still reading the product is
    then refused by `mesh validate`, so the contract diff judges only the mode here."""
    if head.access.mode == "approval_required":
        if base.access.mode == "open":
            approved = access.approved_products(head)
            dropped = [c for c in consumers if c.product not in approved]
            found.add(
                Rule.ACCESS_RESTRICTED,
                bool(dropped),
                "access open -> approval_required: "
                + (
                    f"{len(dropped)} current consumer(s) hold no access agreement"
                    if dropped
                    else "every current consumer holds an access agreement"
                ),
                affected=dropped,
            )
    elif base.access.mode == "approval_required":
        found.add(Rule.ACCESS_RELAXED, False, "access approval_required -> open")


def _access_policy(
    base: DataProductSpec, head: DataProductSpec, consumers: list[Consumer], found: _Found
) -> None:
    """Roles allowed and refused, and how PII is shown to readers without the privilege."""
    policy_old, policy_new = base.access_policy, head.access_policy
    allowed_old, allowed_new = set(policy_old.allowed_roles), set(policy_new.allowed_roles)
    denied_old, denied_new = set(policy_old.denied_roles), set(policy_new.denied_roles)
    # Losing a reader breaks its consumers; gaining one does not.
    role_changes = [
        (allowed_old - allowed_new, Rule.ROLE_REMOVED, True, "may no longer read the ports", "allowed_roles"),
        (allowed_new - allowed_old, Rule.ROLE_ADDED, False, "may now read the ports", "allowed_roles"),
        (denied_new - denied_old, Rule.ROLE_DENIED, True, "is now refused", "denied_roles"),
        (denied_old - denied_new, Rule.ROLE_UNDENIED, False, "is no longer refused", "denied_roles"),
    ]
    for roles, rule, breaking, what, policy_list in role_changes:
        for role in sorted(roles):
            found.add(
                rule,
                breaking,
                f"role '{role}' {what}",
                column=f"access_policy.{policy_list}.{role}",
                affected=consumers if breaking else (),
            )
    if policy_old.pii_handling != policy_new.pii_handling:
        pii = sorted({c.name for p in head.output_ports for c in p.columns if c.pii})
        found.add(
            Rule.PII_HANDLING_CHANGED,
            bool(pii),
            f"PII handling {policy_old.pii_handling} -> {policy_new.pii_handling}: readers without the PII "
            f"privilege see other values in {', '.join(pii)}"
            if pii
            else f"PII handling {policy_old.pii_handling} -> {policy_new.pii_handling} (no PII column)",
            affected=consumers if pii else (),
        )


def _distribution_rights(
    base: DataProductSpec, head: DataProductSpec, consumers: list[Consumer], found: _Found
) -> None:
    """Whether consumers may pass the data on."""
    rights_old, rights_new = base.distribution_rights, head.distribution_rights
    for name in ("redistribute_unmodified", "redistribute_modified"):
        before, after = getattr(rights_old, name), getattr(rights_new, name)
        if before and not after:
            found.add(
                Rule.REDISTRIBUTION_RESTRICTED,
                bool(consumers),
                f"{name} true -> false: consumers may no "
                "longer pass the data on" + ("" if consumers else "; no consumer reads it yet"),
                column=f"distribution_rights.{name}",
                warning=not consumers,
                affected=consumers,
            )
        elif after and not before:
            found.add(
                Rule.REDISTRIBUTION_RELAXED,
                False,
                f"{name} false -> true",
                column=f"distribution_rights.{name}",
            )


def _agreement_and_people(
    base: DataProductSpec, head: DataProductSpec, consumers: list[Consumer], found: _Found
) -> None:
    """The data sharing agreement, the description, owner and support channel."""
    if base.data_sharing_agreement != head.data_sharing_agreement:
        found.add(
            Rule.AGREEMENT_CHANGED,
            False,
            "the data sharing agreement changed: consumers must accept the new terms",
            warning=bool(consumers),
            affected=consumers,
        )
    if base.description != head.description:
        found.add(Rule.PRODUCT_DESCRIPTION, False, "the product's description changed")
    if base.owner != head.owner:
        found.add(
            Rule.OWNER_CHANGED,
            False,
            f"owner {base.owner.team} ({base.owner.steward}) -> {head.owner.team} ({head.owner.steward})",
        )
    if base.support != head.support:
        found.add(Rule.SUPPORT_CHANGED, False, f"support {base.support.channel} -> {head.support.channel}")
