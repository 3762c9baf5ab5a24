"""The metamodel attributes a tool cannot know (owner, steward, classification, SLO), and their defaults.

Most specific first: flags, the person's answers, what the domain's products already say (or e.g. a
dbt group's owner), then git's `user.email` and `<domain>_data`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesh_assets.product.registry import Registry
from mesh_assets.product.spec import Classification, Status, parse_duration
from mesh_assets.selfservice.prompts import (
    Asker,
    answer,
    check_choice,
    check_duration,
    check_email,
    check_team,
    check_text,
    git_email,
)

CLASS_ORDER = [c.value for c in Classification]
"""Classifications from the least to the most sensitive."""


def half_duration(text: str) -> str:
    """Half of a duration, in the largest whole unit (`24h` -> `12h`, `1h` -> `30m`)."""
    minutes = max(1, int(parse_duration(text).total_seconds() // 120))
    if minutes % (24 * 60) == 0 and minutes >= 2 * 24 * 60:
        return f"{minutes // (24 * 60)}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def humanize(name: str) -> str:
    """`run_sites` -> `Run sites`."""
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def domain_defaults(registry: Registry, domain: str) -> dict[str, str]:
    """Team, steward, support channel and capability most used by the domain's products, if any."""
    found: dict[str, str] = {}
    products = registry.domain_products(domain)
    for attribute, read in {
        "team": lambda p: p.spec.owner.team,
        "steward": lambda p: p.spec.owner.steward,
        "channel": lambda p: p.spec.support.channel,
        "capability": lambda p: p.spec.business_capability,
    }.items():
        values = [read(p) for p in products]
        if values:
            found[attribute] = max(set(values), key=values.count)
    return found


@dataclass
class Governance:
    """The metamodel attributes a tool cannot know, resolved from flags, answers and defaults."""

    team: str
    steward: str
    classification: str
    status: str
    freshness: str
    support_channel: str
    business_capability: str
    allowed_roles: list[str]


REQUEST_CHOICES = (
    "owner_team",
    "steward",
    "classification",
    "status",
    "freshness",
    "support_channel",
    "business_capability",
    "allowed_roles",
)
"""The governance choices a `mesh new` or `--from-dbt` request carries, as `resolve_governance` takes them."""


def request_choices(request: object) -> dict[str, Any]:
    """The request's governance choices, by `resolve_governance`'s parameter names."""
    return {name: getattr(request, name) for name in REQUEST_CHOICES}


def resolve_governance(
    root: Path,
    registry: Registry,
    domain: str,
    *,
    owner_team: str | None,
    steward: str | None,
    classification: str | None,
    status: str | None,
    freshness: str | None,
    support_channel: str | None,
    business_capability: str | None,
    allowed_roles: list[str] | None,
    default_classification: str,
    default_status: str,
    asker: Asker | None,
    defaults: dict[str, str] | None = None,
) -> Governance:
    """Ask for (or take from flags) the owner, classification and SLO; default the rest sensibly.

    Defaults, most specific first: `defaults` (e.g. a dbt group's owner), what the domain's products
    already say, then git's `user.email` for the steward and `<domain>_data` for the team.
    """
    known = {**domain_defaults(registry, domain), **(defaults or {})}
    steward_default = known.get("steward") or git_email(root)
    resolved_steward = answer(
        steward,
        label="Data steward (email of the accountable person)",
        flag="--steward",
        default=steward_default,
        asker=asker,
        check=check_email,
    )
    team = answer(
        owner_team,
        label="Owner team",
        flag="--owner-team",
        default=known.get("team") or f"{domain}_data",
        asker=asker,
        check=check_team,
    )
    resolved_class = answer(
        classification,
        label="Classification (public, internal, confidential, restricted)",
        flag="--classification",
        default=default_classification,
        asker=asker,
        check=check_choice(CLASS_ORDER),
    )
    resolved_freshness = answer(
        freshness,
        label="Freshness SLO: maximum age of the published data (e.g. 24h, 6h, 30m)",
        flag="--freshness",
        default="24h",
        asker=asker,
        check=check_duration,
    )
    resolved_status = answer(
        status,
        label="Status",
        flag="--status",
        default=default_status,
        asker=None,
        check=check_choice([s.value for s in Status if s != Status.DEPRECATED]),
    )
    channel = support_channel or known.get("channel") or f"#{domain.replace('_', '-')}-data"
    capability = business_capability or known.get("capability") or humanize(domain)
    check_text(3)(capability)
    # Secure by default for sensitive data: nobody reads confidential or restricted data until the
    # owner names a role; public and internal data start readable by analysts, as in the example mesh.
    roles = (
        allowed_roles
        if allowed_roles is not None
        else (["analyst"] if resolved_class in {"public", "internal"} else [])
    )
    return Governance(
        team=team,
        steward=resolved_steward,
        classification=resolved_class,
        status=resolved_status,
        freshness=resolved_freshness,
        support_channel=channel,
        business_capability=capability,
        allowed_roles=roles,
    )
