"""Access rules as code: the mesh-wide policy (a file in the governance location) and a product's own rules.

Two layers, evaluated in one place (`access_evaluation`):
- the **mesh policy**, `domains/mesh/access_policy.yaml`, written by the governance team: who decides,
  what may be approved automatically, the longest duration per consumer kind, which purposes may see PII
  in clear, and whether a reader's clearance must reach the product's classification;
- a **product's rules**, `access_policy.agreements` in its spec: extra approvers, and narrower automatic
  approval, durations and PII purposes. A product can only narrow the mesh policy, never loosen it (its
  lists are intersected with the mesh's, its durations capped by the mesh's).

Guardrails no file can change live in code (`access_evaluation.GUARDRAILS`): PII in clear is never
approved automatically, nobody approves their own request, and a restricted product needs a second
approver from the governance team.

A leaf of the product wing (the spec imports `ProductAccessRules`), so classifications are named by value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, TypeVar

import yaml
from pydantic import Field, ValidationError

from mesh_assets.product.agreement import ConsumerKind, PurposeCategory
from mesh_assets.product.errors import SpecIssue
from mesh_assets.product.spec_base import Identifier, SpecModel

ClassificationName = Literal["public", "internal", "confidential", "restricted"]
CLASSIFICATION_ORDER: tuple[str, ...] = ("public", "internal", "confidential", "restricted")
"""From least to most sensitive (the spec's `Classification`, by value)."""
M = TypeVar("M", bound=SpecModel)
POLICY_FILE = Path("domains") / "mesh" / "access_policy.yaml"
"""The mesh-wide policy, relative to the repository root."""


class AutoApproval(SpecModel):
    """When a request is approved without a person: every condition must hold (and no PII in clear)."""

    classifications: list[ClassificationName] = Field(
        default_factory=lambda: ["public", "internal"],
        description="Products of these classifications only.",
    )
    purposes: list[PurposeCategory] = Field(
        default_factory=list, description="Purpose categories approved automatically (none: no automation)."
    )
    consumer_kinds: list[ConsumerKind] = Field(
        default_factory=lambda: list(ConsumerKind), description="Consumer kinds approved automatically."
    )
    same_domain_only: bool = Field(
        default=False, description="Only consumers of the product's own domain (from the directory)."
    )


class MaxDays(SpecModel):
    """The longest an agreement may run per consumer kind, in days (products, teams: until reassessed)."""

    product: int = Field(default=365, ge=1, description="Product-to-product: days until reassessment.")
    team: int = Field(default=365, ge=1, description="A team: days until reassessment.")
    person: int = Field(default=180, ge=1, description="A person: days until the access expires.")
    service_principal: int = Field(default=365, ge=1, description="A service principal: days until expiry.")

    def of(self, kind: ConsumerKind) -> int:
        """The limit for one consumer kind."""
        return int(getattr(self, kind.value))


class MeshAccessPolicy(SpecModel):
    """The mesh-wide access policy (`domains/mesh/access_policy.yaml`): defaults and limits, every product."""

    deciders: list[Literal["steward", "owner_team"]] = Field(
        default_factory=lambda: ["steward", "owner_team"],
        description="Who decides a product's requests: its steward, and the members of its owner team.",
    )
    second_approver_team: Identifier = Field(
        default="governance", description="Team whose member must also approve requests on restricted data."
    )
    auto_approve: AutoApproval = Field(
        default_factory=AutoApproval, description="What may be approved without a person."
    )
    max_days: MaxDays = Field(default_factory=MaxDays, description="Longest duration per consumer kind.")
    pii_in_clear_purposes: list[PurposeCategory] = Field(
        default_factory=list, description="Purpose categories that may read PII in clear (always decided)."
    )
    clearance_required: bool = Field(
        default=True,
        description="A person's or service principal's clearance must reach the product's classification.",
    )


class ProductAccessRules(SpecModel):
    """A product's own access rules (`access_policy.agreements`): they can only narrow the mesh policy."""

    approvers: list[str] = Field(
        default_factory=list,
        description="Emails who may decide besides the steward and the owner team.",
        examples=[["ana.lopez@example.com"]],
    )
    auto_approve_purposes: list[PurposeCategory] | None = Field(
        default=None,
        description="Purposes approved automatically (a subset of the mesh policy's; default: the mesh's).",
    )
    pii_in_clear_purposes: list[PurposeCategory] | None = Field(
        default=None, description="Purposes that may read PII in clear (a subset of the mesh policy's)."
    )
    max_days: dict[ConsumerKind, int] = Field(
        default_factory=dict, description="Shorter limits per consumer kind, in days (capped by the mesh's)."
    )


def load_mesh_policy(root: Path) -> tuple[MeshAccessPolicy, list[SpecIssue]]:
    """The mesh policy file (defaults when there is none), and the issues of a bad one."""
    path = root / POLICY_FILE
    if not path.exists():
        return MeshAccessPolicy(), []
    return load_model(path, MeshAccessPolicy, MeshAccessPolicy())


def load_model(path: Path, model: type[M], fallback: M) -> tuple[M, list[SpecIssue]]:
    """A governance file validated as `model`; on errors the fallback and an issue per error."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        return fallback, [SpecIssue(path, "", f"not valid YAML ({exc})", "fix the YAML syntax")]
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        issues = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            issues.append(SpecIssue(path, where, message, f"see {model.__name__}'s fields in docs/access.md"))
        return fallback, issues
