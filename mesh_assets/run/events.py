"""What `mesh run` reports while it builds: one small frozen event per kind of news, handed to `on_event`.

The runner only reports; `mesh run` (the command) decides how each event is shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mesh_assets.run.results import ProductResult

if TYPE_CHECKING:
    from mesh_assets.infra.deferral import DeferralPlan


@dataclass(frozen=True)
class Reclaimed:
    """A run whose process died was marked failed and its pool slots freed."""

    run_id: str
    reason: str


@dataclass(frozen=True)
class Deferred:
    """A branch environment points the ports of every product not built at prod's, read-only."""

    plan: DeferralPlan


@dataclass(frozen=True)
class StageStarted:
    """A stage (consecutive products of one domain) starts building as one Dagster run."""

    domain: str
    names: tuple[str, ...]
    """The names (inside the domain) of the products it builds."""


@dataclass(frozen=True)
class ProductFinished:
    """A product's outcome is known: built, failed, or skipped because a product it reads failed."""

    result: ProductResult


@dataclass(frozen=True)
class StagesInParallel:
    """More than one stage is building at once (Snowflake)."""

    domains: tuple[str, ...]
    limit: int
    """At most this many at once: the `warehouse` pool's limit."""


@dataclass(frozen=True)
class WaitingForPool:
    """A stage has waited a while for a `warehouse` pool slot; who holds the pool."""

    steps: tuple[str, ...]
    waited_s: float
    holders: tuple[str, ...]


@dataclass(frozen=True)
class GovernanceBuilt:
    """The governance location's assets were built after every domain."""

    ok: bool
    built: tuple[str, ...]
    """The asset keys materialized."""


@dataclass(frozen=True)
class Interrupted:
    """Ctrl-C or SIGTERM stopped the build: nothing more is built."""


RunEvent = (
    Reclaimed
    | Deferred
    | StageStarted
    | ProductFinished
    | StagesInParallel
    | WaitingForPool
    | GovernanceBuilt
    | Interrupted
)
"""Anything `run_mesh` reports."""

OnEvent = Callable[[RunEvent], None]
"""A listener: `run_mesh(on_event=...)`."""


def ignore(event: RunEvent) -> None:
    """The listener when nobody listens."""
