"""Reading an input port through a binding (`via: iceberg`): which inputs may, checked with the specs.

A consumer's input normally reads the producer port's warehouse table. A Python product may instead read
the port's Iceberg binding (`via: iceberg` on the input), e.g. to read the same rows its other tools read.
Everything else about the input is unchanged: it names an output port (never an internal), the version
range picks the port, approvals and lifecycle apply, and the consumer reads PII exactly as it would from
the table (`assets/binding_reads.py` protects a `pii: clear` binding for a consumer without the PII
privilege). SQL and dbt products cannot: their SQL runs in the warehouse's isolated session, which reaches
no file (docs/architecture.md#product-code-runs-isolated).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mesh_assets.product.bindings import BindingPii, IcebergBinding

if TYPE_CHECKING:
    from mesh_assets.product.errors import SpecIssue
    from mesh_assets.product.registry import Product, ResolvedInput
    from mesh_assets.product.spec import OutputPort, ProductInput

VIA_TABLE = "table"
"""The default: the input reads the port's warehouse table."""
VIA_ICEBERG = "iceberg"
"""The input reads the port's Iceberg binding."""


def via_of(declared: ProductInput) -> str:
    """How a declared input reads its port (`ProductInput.via`: `table` unless it says `iceberg`)."""
    return declared.via


def iceberg_binding(port: OutputPort) -> IcebergBinding | None:
    """The port's Iceberg binding, if it declares one."""
    return next((b for b in port.bindings if isinstance(b, IcebergBinding)), None)


def via_issues(consumer: Product, resolved: ResolvedInput, where: str) -> list[SpecIssue]:
    """What is wrong with reading the input `resolved` (declared at `where`, e.g. `input_ports[1]`)
    through its `via`; empty for a table read or a sound binding read."""
    from mesh_assets.product import kinds
    from mesh_assets.product.access import pii_columns, protection
    from mesh_assets.product.errors import SpecIssue

    via = via_of(resolved.declared)
    if via == VIA_TABLE:
        return []
    field = f"{where}.via"
    producer, port = resolved.producer, resolved.port
    issues = []
    kind = kinds.kind_of(consumer.spec)
    if not kind.reads_bindings:
        issues.append(
            SpecIssue(
                consumer.path,
                field,
                f"only a Python product reads an input through a binding; this product's transformation is "
                f"{kind.name}, whose SQL runs in the warehouse's isolated session, which reaches no file",
                "remove `via` (the port's table is read)",
            )
        )
    binding = iceberg_binding(port)
    if binding is None:
        issues.append(
            SpecIssue(
                consumer.path,
                field,
                f"{producer.key} v{port.major} ({port.version}, the port this input resolves to) declares no "
                "iceberg binding",
                f"remove `via`, or ask {producer.key}'s owner to add `bindings: [{{kind: iceberg}}]` to it",
            )
        )
    elif (
        binding.pii == BindingPii.PROTECTED
        and pii_columns(port)
        and not protection(producer.spec, port, consumer.spec)
    ):
        issues.append(
            SpecIssue(
                consumer.path,
                field,
                f"{producer.key} v{port.major}'s iceberg binding holds its PII protected, which "
                f"{consumer.key} may read in clear from the table: it would read masked values",
                f"remove `via`, or ask {producer.key}'s owner to declare `pii: clear` on the binding",
                severity="warning",
            )
        )
    return issues
