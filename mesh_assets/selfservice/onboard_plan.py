"""What onboarding a dbt project is told (`OnboardRequest`) and what it will write (`Plan`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class OnboardRequest:
    """Everything `mesh new domain --from-dbt` can be told; `None` means: ask, or use the default."""

    domain: str
    path: Path
    link: bool = False
    project: str | None = None
    ports: list[str] = field(default_factory=list)
    primary_keys: dict[str, list[str]] = field(default_factory=dict)
    description: str | None = None
    owner_team: str | None = None
    steward: str | None = None
    classification: str | None = None
    status: str | None = None
    freshness: str | None = None
    support_channel: str | None = None
    business_capability: str | None = None
    allowed_roles: list[str] | None = None
    dbt_vars: dict[str, Any] = field(default_factory=dict)
    """dbt vars for every dbt invocation (e.g. a var enabling seeds), kept in the products' specs."""


@dataclass
class PortPlan:
    """One port model of the dbt project and the product it becomes."""

    uid: str
    model: str
    product: str
    version: str
    columns: list[dict[str, Any]] = field(default_factory=list)
    primary_key: list[str] = field(default_factory=list)
    event_time: str | None = None
    rules: list[dict[str, Any]] = field(default_factory=list)
    internals: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    """Products (by name) of this domain the port's models read or reference."""
    description: str = ""
    title: str = ""
    tags: list[str] = field(default_factory=list)
    why: str = ""
    """Why a model the team did not mark became a port (e.g. `read by customers and orders`)."""


@dataclass
class Plan:
    """What onboarding will write: the products, and what it could not carry over."""

    ports: list[PortPlan]
    warnings: list[str] = field(default_factory=list)
    rewrites: dict[str, dict[str, str]] = field(default_factory=dict)
    """File (relative to the project) -> {referenced model: published-port source call}."""
    unit_test_rewrites: dict[str, dict[str, str]] = field(default_factory=dict)
    """Unit tests' YAML file -> {model given as input: the published-port source call it reads now}."""
    group_owner: tuple[str, str] | None = None
    dbt_vars: dict[str, Any] = field(default_factory=dict)
    """The `--dbt-vars` every product of the project keeps in `transformation.vars`."""
