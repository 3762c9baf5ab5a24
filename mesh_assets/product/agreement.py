"""Access agreements: a consumer's right to read one port version, for a stated purpose, as a reviewed file.

One file per agreement, in the provider's product folder: `domains/<d>/products/<p>/access/<consumer>.yaml`
(`<consumer>@v<major>.yaml` for a second agreement of the same consumer on another major version). A
change to access is therefore a pull request the owner reviews like code, and `git log` of the folder is
its history (the tamper-evident audit trail, `access/audit.jsonl`, records who did what beside it).

Approval and provisioning are kept apart, because users read "approved" as "I can query it" and it is
not: the file stores only what people decided (`approval`: requested, approved, rejected, revoked, each
decision with who, when and why); whether the agreement is in force is computed from that and the dates
(`state`: requested, rejected, approved-but-not-started, active, expired, revoked); whether the warehouse
actually grants it is observed by `mesh access sync` (provisioning), never written here.

Time: a person's or service principal's agreement expires at its `end` (the state is computed from the
dates and an injected `today`, so nothing rewrites files at midnight). A product-to-product agreement is
never broken by time alone: past `reassess_by` (or `end`) it stays active, its owner is told and the
*secure* fitness function turns red, as for a port past its sunset.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum

from pydantic import Field, field_validator, model_validator

# Re-exported: the enum lives in a module without pydantic so the CLI can name it without importing it.
from mesh_assets.product.purposes import PurposeCategory as PurposeCategory
from mesh_assets.product.spec_base import IDENTIFIER, SpecModel

EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
PRODUCT_KEY = r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$"
ACCESS_FOLDER = "access"
"""The folder of a product holding its agreement files and its audit trail."""
AUDIT_FILE = "audit.jsonl"


class ConsumerKind(StrEnum):
    """Who reads: another data product, a team, a person, or a service principal (a tool's identity)."""

    PRODUCT = "product"
    TEAM = "team"
    PERSON = "person"
    SERVICE_PRINCIPAL = "service_principal"


_CONSUMER_ID = {
    ConsumerKind.PRODUCT: (PRODUCT_KEY, "`<domain>.<product>`, e.g. commercial_analytics.customer_360"),
    ConsumerKind.TEAM: (IDENTIFIER, "a team identifier, e.g. finance"),
    ConsumerKind.PERSON: (EMAIL, "an email, e.g. ana.lopez@example.com"),
    ConsumerKind.SERVICE_PRINCIPAL: (IDENTIFIER, "a service principal name, e.g. forecast_bot"),
}


class Approval(StrEnum):
    """What people decided (stored). Provisioning is not a decision and is never stored here."""

    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    REVOKED = "revoked"


class State(StrEnum):
    """Where an agreement stands today (computed from `approval`, the dates and the day)."""

    REQUESTED = "requested"
    REJECTED = "rejected"
    APPROVED = "approved"
    """Approved, but its start date has not come: nothing is granted yet."""
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


class Action(StrEnum):
    """A decision someone (or the policy) made on an agreement."""

    APPROVE = "approve"
    REJECT = "reject"
    REVOKE = "revoke"


class Consumer(SpecModel):
    """Who the agreement lets read."""

    kind: ConsumerKind = Field(description="product, team, person or service_principal.")
    id: str = Field(
        description="`<domain>.<product>` for a product, a team or service principal name, a person's email.",
        examples=["commercial_analytics.customer_360", "ana.lopez@example.com"],
    )

    @model_validator(mode="after")
    def _id_fits_kind(self) -> Consumer:
        pattern, example = _CONSUMER_ID[self.kind]
        if not re.match(pattern, self.id):
            raise ValueError(f"consumer id '{self.id}' is not a {self.kind.value} id; write {example}")
        return self

    @property
    def slug(self) -> str:
        """The agreement file's stem for this consumer (`<id>`, a team prefixed `team.`)."""
        return {ConsumerKind.TEAM: "team.", ConsumerKind.SERVICE_PRINCIPAL: "sp."}.get(
            self.kind, ""
        ) + self.id

    @property
    def expires(self) -> bool:
        """People's and service principals' access ends at its date; a product's or team's is reassessed."""
        return self.kind in (ConsumerKind.PERSON, ConsumerKind.SERVICE_PRINCIPAL)

    def __str__(self) -> str:
        return f"{self.kind.value} {self.id}"


class DecisionRecord(SpecModel):
    """One decision: who made it, when and why (`policy` as `by` when the access policy decided)."""

    action: Action = Field(description="approve, reject or revoke.")
    by: str = Field(description="Email of the person who decided, or `policy` for an automatic approval.")
    at: datetime = Field(description="When, in UTC (ISO 8601).")
    reason: str = Field(min_length=3, description="Why: the approver's words, or the policy's explanation.")

    @field_validator("by")
    @classmethod
    def _person_or_policy(cls, value: str) -> str:
        if value != "policy" and not re.match(EMAIL, value):
            raise ValueError(f"'{value}' is neither an email nor `policy`")
        return value


class AccessAgreement(SpecModel):
    """A consumer's agreement to read one major version of a product's port, decided by owner or policy."""

    schema_ref: str | None = Field(default=None, alias="$schema", description="JSON Schema, for editors.")
    consumer: Consumer = Field(description="Who reads.")
    major: int = Field(ge=0, description="Major version of the port the agreement is for.", examples=[1])
    purpose: str = Field(
        min_length=10, description="What the consumer will use the data for, in a sentence (required)."
    )
    purpose_category: PurposeCategory = Field(description="The kind of use; policies decide by category.")
    columns: list[str] | None = Field(
        default=None, description="Only these columns (default: every column of the port)."
    )
    pii_in_clear: bool = Field(
        default=False, description="Whether the consumer reads PII columns in clear text (else protected)."
    )
    requested_by: str = Field(pattern=EMAIL, description="Email of the person who asked.")
    requested_at: datetime = Field(description="When the request was made, in UTC.")
    approval: Approval = Field(
        default=Approval.REQUESTED,
        description="What was decided: requested, approved, rejected or revoked (provisioning is separate).",
    )
    decisions: list[DecisionRecord] = Field(
        default_factory=list, description="Every decision, in order: who, when, why."
    )
    start: date | None = Field(default=None, description="First day of access (default: the approval day).")
    end: date | None = Field(
        default=None, description="Last day of access; a person's or service principal's access then expires."
    )
    reassess_by: date | None = Field(
        default=None, description="When the owner must confirm the agreement still holds (products, teams)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> AccessAgreement:
        if self.start and self.end and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        if self.columns is not None and not self.columns:
            raise ValueError("'columns' is empty; leave it out to read every column")
        wanted = {
            Approval.APPROVED: Action.APPROVE,
            Approval.REJECTED: Action.REJECT,
            Approval.REVOKED: Action.REVOKE,
        }.get(self.approval)
        if wanted is not None and not any(d.action == wanted for d in self.decisions):
            raise ValueError(
                f"approval is {self.approval.value} but no decision records it; use `mesh access "
                f"{wanted.value}` (it records who, when and why)"
            )
        return self

    def state(self, today: date) -> State:
        """The agreement's state on `today`; time ends a person's or service principal's access only."""
        if self.approval != Approval.APPROVED:
            return State(self.approval.value)
        if self.start is not None and today < self.start:
            return State.APPROVED
        if self.end is not None and today > self.end and self.consumer.expires:
            return State.EXPIRED
        return State.ACTIVE

    def overdue(self, today: date) -> bool:
        """An active agreement that time does not end but whose reassessment (or end) date has passed."""
        if self.state(today) != State.ACTIVE or self.consumer.expires:
            return False
        due = min(d for d in (self.reassess_by, self.end, date.max) if d is not None)
        return today > due

    def approvers(self) -> list[str]:
        """Who approved, in order (several for a restricted product)."""
        return [d.by for d in self.decisions if d.action == Action.APPROVE]


def json_schema() -> dict:
    """The JSON Schema of an agreement file, generated from the model (shipped for editors)."""
    schema = AccessAgreement.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://mesh.dev/schemas/agreement.schema.json"
    schema["title"] = "mesh access agreement"
    return schema
