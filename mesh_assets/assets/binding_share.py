"""The Snowflake `share` binding: the secure share (or private listing) of a port's published table, as SQL.

A share serves the table itself (zero copy), so it needs no snapshot of its own: what the consumer account
reads is always the last good publish. The platform plans the statements for every environment and runs
them only in prod on Snowflake (a branch must not grant other accounts anything); elsewhere the plan is
recorded in the port's metadata. Statements are idempotent so every publish may run them again.
"""

from __future__ import annotations

from mesh_assets.product import addressing
from mesh_assets.product.bindings import BindingPii, ShareBinding
from mesh_assets.product.spec import DataProductSpec, OutputPort


def share_name(spec: DataProductSpec, port: OutputPort, binding: ShareBinding) -> str:
    """The share's name: the binding's, else `<DOMAIN>_<PRODUCT>_V<major>`."""
    return (binding.name or f"{spec.domain}_{spec.name}_v{port.major}").upper()


def share_sql(spec: DataProductSpec, port: OutputPort, binding: ShareBinding, database: str) -> list[str]:
    """The idempotent statements that share the port's table (or its masked secure view) with consumers."""
    from mesh_assets.product.access import PROTECTED_SUFFIX, pii_columns

    relation = addressing.published(spec, port)
    shared = relation.name
    # PII leaves the account only as the masked secure view (made by `mesh grants`), unless declared clear.
    if pii_columns(port) and binding.pii == BindingPii.PROTECTED:
        shared = relation.name + PROTECTED_SUFFIX
    name = share_name(spec, port, binding)
    # The same quoted (case-kept) names the warehouse created the port with.
    schema = f'"{database}"."{relation.schema}"'
    statements = [
        f"CREATE SHARE IF NOT EXISTS {name} COMMENT = 'mesh://{spec.domain}/{spec.name}/v{port.major}'",
        f'GRANT USAGE ON DATABASE "{database}" TO SHARE {name}',
        f"GRANT USAGE ON SCHEMA {schema} TO SHARE {name}",
        f'GRANT SELECT ON {"VIEW" if shared != relation.name else "TABLE"} {schema}."{shared}" '
        f"TO SHARE {name}",
    ]
    if binding.listing:
        statements.append(
            f'CREATE LISTING IF NOT EXISTS {name}_LISTING FOR SHARE {name} AS $$ title: "{spec.title}" '
            f"$$ PUBLISH = FALSE REVIEW = FALSE"
        )
    elif binding.accounts:
        statements.append(f"ALTER SHARE {name} ADD ACCOUNTS = {', '.join(binding.accounts)}")
    return statements
