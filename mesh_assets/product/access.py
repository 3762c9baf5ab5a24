"""Access policies as code: who may read which port, and what a reader without the PII privilege sees.

Every answer is computed from the producer's spec (`access`, `access_policy`, `classification`, each
column's `pii`), so the same policy drives validation (`registry`), the Snowflake grants (`grants`), the
local reads the platform makes for consumer products (`builders.sql`, `builders.python`) and the fitness
functions (`fitness`). Nothing is granted unless the spec says so:

- **People and tools** read through roles. A role may read a port when the product lists it in
  `access_policy.allowed_roles` and does not list it in `denied_roles` (deny wins). No roles listed: no
  role may read (secure by default).
- **Consumer products** read through their input ports. `access.mode: open` lets any product declare the
  port; `approval_required` only the products holding an access agreement in force on the port version
  (`access/<consumer>.yaml` in the producer's folder, see `agreement`). No agreement, no reader.
- **PII.** Columns marked `pii: true` reach a reader without the PII privilege masked (`***`; NULL for
  non-text columns), hashed (SHA-256 of the text form) or removed, per `access_policy.pii_handling`.
  People hold the privilege through the platform role `PII_ROLE` (Snowflake). A consumer product holds it
  on a producer only with an agreement in force that grants PII in clear (decided by a person) *and*
  the consumer is classified at least as sensitively as the producer (it promises to protect what it
  receives). Every other consumer gets the protected columns.

This module imports nothing heavy and never the registry at import time (the registry imports it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from mesh_assets.product.agreement import ConsumerKind, State
from mesh_assets.product.spec import (
    Classification,
    Column,
    DataProductSpec,
    LogicalType,
    OutputPort,
    PiiHandling,
    portable_sql_type,
)
from mesh_assets.product.sql_text import quote_identifier as _quote

if TYPE_CHECKING:
    from mesh_assets.product.agreement_files import LoadedAgreement
    from mesh_assets.product.errors import SpecIssue
    from mesh_assets.product.registry import Product, Registry

PII_ROLE = "pii_reader"
"""The platform role that sees PII in clear text (people and tools; Snowflake role `MESH_PII_READER`)."""
CATCH_ALL_ROLES = frozenset({"public", "all", "everyone", "any", "anyone", "*"})
"""Role names that mean "everybody": never a reader role (Snowflake's PUBLIC is granted to every user)."""
ROLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
"""What a role name must look like (it becomes a Snowflake identifier)."""
MASK = "***"
"""What a masked text value reads as (the contract checks mask sample rows the same way)."""

_SENSITIVITY = {
    Classification.PUBLIC: 0,
    Classification.INTERNAL: 1,
    Classification.CONFIDENTIAL: 2,
    Classification.RESTRICTED: 3,
}


@dataclass(frozen=True)
class Decision:
    """The answer to "may X read?", with the reason in words (shown to people as is)."""

    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


# --- people and tools: roles ------------------------------------------------------------------------------


def reader_roles(spec: DataProductSpec) -> list[str]:
    """The roles that may read the product's ports: allowed and not denied, in the spec's order."""
    denied = {r.lower() for r in spec.access_policy.denied_roles}
    seen: set[str] = set()
    roles = []
    for role in spec.access_policy.allowed_roles:
        if role.lower() in denied or role.lower() in seen or role.lower() in CATCH_ALL_ROLES:
            continue
        seen.add(role.lower())
        roles.append(role)
    return roles


def role_may_read(spec: DataProductSpec, role: str) -> Decision:
    """Whether a role may read the product's ports. Deny wins over allow; nothing listed, nobody reads."""
    name = role.lower()
    if name in {r.lower() for r in spec.access_policy.denied_roles}:
        return Decision(False, f"role '{role}' is denied by {spec.key}'s access policy")
    if name in CATCH_ALL_ROLES:
        return Decision(False, f"'{role}' means everybody; {spec.key} grants only named roles")
    if not spec.access_policy.allowed_roles:
        return Decision(False, f"{spec.key} allows no role yet: secure by default, nobody reads it")
    if name in {r.lower() for r in reader_roles(spec)}:
        return Decision(True, f"role '{role}' is allowed by {spec.key}'s access policy")
    return Decision(
        False,
        f"role '{role}' is not among the roles {spec.key} allows ({', '.join(reader_roles(spec)) or 'none'})",
    )


# --- consumer products ------------------------------------------------------------------------------------


def ask_owner(spec: DataProductSpec) -> str:
    """Whom to ask about a product's access: its owner team, steward and support channel."""
    return f"the owner team {spec.owner.team} (steward {spec.owner.steward}, {spec.support.channel})"


def agreements_of(spec: DataProductSpec) -> tuple[LoadedAgreement, ...]:
    """The agreement files the registry attached to a product (none for a spec read on its own): those of
    consumer products from load, the others once `Registry.agreements` was read."""
    return spec._agreements


def product_agreement(
    producer: DataProductSpec, consumer_key: str, major: int | None = None, today: date | None = None
) -> LoadedAgreement | None:
    """The consumer product's agreement on the producer (on `major`, if given) in force on `today`.

    Time alone never ends a product's agreement (see `agreement`): only a start date still to come, a
    rejection or a revocation keeps it out of force.
    """
    today = today or date.today()
    for loaded in agreements_of(producer):
        consumer = loaded.agreement.consumer
        if consumer.kind != ConsumerKind.PRODUCT or consumer.id != consumer_key:
            continue
        if major is not None and loaded.agreement.major != major:
            continue
        if loaded.state(today) == State.ACTIVE:
            return loaded
    return None


def approved_products(producer: DataProductSpec, today: date | None = None) -> set[str]:
    """The consumer products holding an agreement in force on any of the producer's ports."""
    today = today or date.today()
    return {
        loaded.agreement.consumer.id
        for loaded in agreements_of(producer)
        if loaded.agreement.consumer.kind == ConsumerKind.PRODUCT and loaded.state(today) == State.ACTIVE
    }


def _pending(producer: DataProductSpec, consumer_key: str) -> LoadedAgreement | None:
    for loaded in agreements_of(producer):
        consumer = loaded.agreement.consumer
        if consumer.kind == ConsumerKind.PRODUCT and consumer.id == consumer_key:
            return loaded
    return None


def consumer_may_read(
    producer: DataProductSpec, consumer_key: str, major: int | None = None, today: date | None = None
) -> Decision:
    """Whether a consumer product may declare the producer's port (version `major`) as an input."""
    if producer.access.mode == "open":
        return Decision(True, f"{producer.key} is open to every product of the mesh")
    found = product_agreement(producer, consumer_key, major, today)
    if found is not None:
        return Decision(
            True,
            f"{consumer_key} holds agreement {found.id} to read {producer.key}: {found.agreement.purpose}",
        )
    version = f" v{major}" if major is not None else ""
    other = _pending(producer, consumer_key)
    if other is not None:
        state = other.state(today or date.today())
        return Decision(
            False,
            f"{producer.key}{version} requires approval and {consumer_key}'s agreement {other.id} is "
            f"{state.value}" + (f" (for v{other.agreement.major})" if other.agreement.major != major else ""),
        )
    return Decision(
        False, f"{producer.key}{version} requires approval and {consumer_key} holds no access agreement on it"
    )


def request_command(producer_key: str, major: int | None, consumer: str) -> str:
    """The command a consumer runs to ask for access."""
    version = f"@v{major}" if major is not None else ""
    return f'mesh access request {producer_key}{version} --for {consumer} --purpose "<why, in a sentence>"'


def approval_refusal(
    consumer: Product, producer: Product, where: str, major: int | None = None, today: date | None = None
) -> SpecIssue | None:
    """The validation error for a consumer reading an approval-required port without an agreement in force."""
    decision = consumer_may_read(producer.spec, consumer.key, major, today)
    if decision.allowed:
        return None
    from mesh_assets.product.errors import SpecIssue

    return SpecIssue(
        consumer.path,
        where,
        decision.reason,
        f"run `{request_command(producer.key, major, consumer.key)}`, then have {ask_owner(producer.spec)} "
        "approve it; until then remove this input",
    )


# --- PII -------------------------------------------------------------------------------------------------


def pii_columns(port: OutputPort) -> list[Column]:
    """The port's columns that hold personal data."""
    return [c for c in port.columns if c.pii]


def at_least_as_sensitive(consumer: DataProductSpec, producer: DataProductSpec) -> bool:
    """Whether the consumer's classification is at least the producer's."""
    return _SENSITIVITY[consumer.classification] >= _SENSITIVITY[producer.classification]


def pii_privilege(
    producer: DataProductSpec, consumer: DataProductSpec, today: date | None = None
) -> Decision:
    """Whether a consumer product reads the producer's PII columns in clear text: only with an agreement in
    force that grants PII in clear (approved by a person: the policy never does it automatically)."""
    found = product_agreement(producer, consumer.key, today=today)
    if found is None or not found.agreement.pii_in_clear:
        return Decision(
            False,
            f"{consumer.key} holds no agreement on {producer.key} granting PII in clear",
        )
    if not at_least_as_sensitive(consumer, producer):
        return Decision(
            False,
            f"{consumer.key} is classified {consumer.classification.value}, below "
            f"{producer.key}'s {producer.classification.value}",
        )
    return Decision(True, f"{consumer.key} is approved by {producer.key} and classified to protect PII")


PROTECTED_SUFFIX = "__protected"
"""Suffix of a PII port's masked secure view on Snowflake (made by `mesh grants`), which readers and
consumer domains without the PII privilege read instead of the table."""


def protection(
    producer: DataProductSpec, port: OutputPort, consumer: DataProductSpec | None
) -> dict[str, PiiHandling]:
    """How each PII column of the port reaches the reader (`consumer`, or a person without the privilege
    when None); empty when there is nothing to protect."""
    columns = pii_columns(port)
    if not columns or (consumer is not None and pii_privilege(producer, consumer)):
        return {}
    return {c.name: producer.access_policy.pii_handling for c in columns}


def _null_type(column: Column) -> str:
    # A masked non-text column keeps its type: a typed NULL both DuckDB and Snowflake accept.
    return portable_sql_type(column)


def protected_projection(
    port: OutputPort, handling: dict[str, PiiHandling], dialect: str = "duckdb"
) -> list[str]:
    """The SELECT list that reads a port with its PII columns protected as `handling` says.

    Masked: text `***`, other types a typed NULL; hashed: the SHA-256 hex digest of the text form (a
    pseudonym that still joins, not an anonymisation); removed: left out. NULL stays NULL.
    """
    items = []
    for column in port.columns:
        quoted = _quote(column.name)
        how = handling.get(column.name)
        if how is None:
            items.append(quoted)
        elif how == PiiHandling.REMOVE:
            continue
        elif how == PiiHandling.HASH:
            text = f"CAST({quoted} AS VARCHAR)"
            digest = f"SHA2({text}, 256)" if dialect == "snowflake" else f"SHA256({text})"
            items.append(f"{digest} AS {quoted}")
        elif column.type == LogicalType.STRING:
            items.append(f"CASE WHEN {quoted} IS NULL THEN NULL ELSE '{MASK}' END AS {quoted}")
        else:
            items.append(f"CAST(NULL AS {_null_type(column)}) AS {quoted}")
    return items


def protected_select(
    producer: DataProductSpec, port: OutputPort, consumer: DataProductSpec | None, dialect: str = "duckdb"
) -> str | None:
    """`SELECT … FROM <port>` with PII protected for `consumer`; None when it may read the port as is.

    On DuckDB the platform protects the columns itself. On Snowflake the consumer's domain role may not
    read the table at all (`govern/domain_roles.py`): it reads the port's masked secure view, whose
    masking policies protect the same columns (`mesh grants`), and a removed column is left out here.
    """
    from mesh_assets.product import addressing

    handling = protection(producer, port, consumer)
    if not handling:
        return None
    relation = addressing.published(producer, port)
    if dialect == "snowflake":
        kept = [_quote(c.name) for c in port.columns if handling.get(c.name) != PiiHandling.REMOVE]
        view = addressing.Relation(relation.schema, relation.name + PROTECTED_SUFFIX)
        nothing = 'NULL AS "_no_columns"'
        return f"SELECT {', '.join(kept or [nothing])} FROM {view.sql}"
    projection = protected_projection(port, handling, dialect)
    if not projection:  # every column is PII and removed: nothing left, but the reader still gets rows
        projection = ['NULL AS "_no_columns"']
    return f"SELECT {', '.join(projection)} FROM {relation.sql}"


def read_sql(
    consumer: DataProductSpec, producer: DataProductSpec, port: OutputPort, target: str = "duckdb"
) -> str:
    """What `{{ input() }}` renders to in a consumer's SQL: the port, or a protected subquery of it.

    A subquery (not a view) so the protection needs no object in the producer's schema and is rendered
    with the consumer's SQL, in DuckDB's dialect like every model (transpiled for Snowflake); on
    Snowflake the subquery reads the port's masked secure view (see `protected_select`).
    """
    from mesh_assets.product import addressing

    protected = protected_select(producer, port, consumer, target)
    if protected is None:
        return addressing.published(producer, port).sql
    return f"({protected})"


def input_queries(consumer: Product, registry: Registry, dialect: str) -> dict[str, str]:
    """For a Python product: the query reading each declared input port that needs PII protection."""
    found = {}
    for declared in consumer.spec.product_inputs:
        resolved = registry.resolve(consumer, declared)
        if resolved is None:
            continue
        protected = protected_select(resolved.producer.spec, resolved.port, consumer.spec, dialect)
        if protected is not None:
            found[declared.product] = protected
    return found


# --- policy lint ------------------------------------------------------------------------------------------


def policy_issues(registry: Registry) -> list[SpecIssue]:
    """Access policies that cannot mean what they say: caught by `mesh validate`."""
    from mesh_assets.product.errors import SpecIssue

    issues: list[SpecIssue] = []
    for product in sorted(registry.products.values(), key=lambda p: p.key):
        spec, path = product.spec, product.path
        policy = spec.access_policy
        for field, roles in (("allowed_roles", policy.allowed_roles), ("denied_roles", policy.denied_roles)):
            for index, role in enumerate(roles):
                if not ROLE_NAME.match(role) and role not in CATCH_ALL_ROLES:
                    issues.append(
                        SpecIssue(
                            path,
                            f"access_policy.{field}[{index}]",
                            f"'{role}' is not a role name (it becomes a warehouse role)",
                            "use letters, digits and '_', starting with a letter, e.g. sales_ops",
                        )
                    )
        for index, role in enumerate(policy.allowed_roles):
            if role.lower() in CATCH_ALL_ROLES:
                issues.append(
                    SpecIssue(
                        path,
                        f"access_policy.allowed_roles[{index}]",
                        f"'{role}' means everybody: the platform grants ports to named roles only",
                        "list the roles that need the data, e.g. analyst",
                    )
                )
        both = _overlap(policy.allowed_roles, policy.denied_roles)
        if both:
            issues.append(
                SpecIssue(
                    path,
                    "access_policy.denied_roles",
                    f"role(s) {', '.join(both)} are both allowed and denied (deny wins, so they cannot read)",
                    "remove them from allowed_roles or from denied_roles",
                )
            )
    return issues


def _overlap(first: Iterable[str], second: Iterable[str]) -> list[str]:
    lowered = {r.lower() for r in second}
    return sorted({r for r in first if r.lower() in lowered})
