"""Output ports: the Dagster definition of a published port, derived entirely from its product's spec.

Everything a consumer or the UI sees about a port (description, owners, tags, kinds, column schema, table
name, URI, SLOs, access policy, version, code references, FreshnessPolicy) comes from here, so the spec
stays the single source of truth.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from mesh_assets.assets.column_lineage import ProductLineage, dagster_lineage
from mesh_assets.product import addressing, kinds, lifecycle
from mesh_assets.product.registry import Product
from mesh_assets.product.spec import DataProductSpec, FreshnessSlo, OutputPort, Status, parse_duration

ROLE_TAG = "mesh/role"


@dataclass(frozen=True)
class PortContext:
    """Where a port is deployed: needed for the table name and asset kinds."""

    target: str
    """Warehouse target (`duckdb` or `snowflake`)."""
    database: str
    """Database name shown in the fully qualified table name."""
    lineage: Mapping[str, ProductLineage] = field(default_factory=dict)
    """Column lineage by product key (`column_lineage`), drawn as `dagster/column_lineage` on ports."""


def owners(spec: DataProductSpec) -> list[str]:
    """Dagster owners: the team and the steward."""
    return [f"team:{spec.owner.team}", spec.owner.steward]


def product_tags(spec: DataProductSpec, role: str) -> dict[str, str]:
    """Tags shared by every asset of a product; `role` tells ports from internals."""
    return {
        ROLE_TAG: role,
        "mesh/domain": spec.domain,
        "mesh/product": spec.name,
        "mesh/product_type": spec.product_type.value,
        "mesh/classification": spec.classification.value,
        "mesh/status": spec.status.value,
    }


def freshness_policy(slo: FreshnessSlo) -> dg.FreshnessPolicy:
    """The Dagster FreshnessPolicy of a freshness SLO."""
    if slo.cron is not None:
        assert slo.lower_bound is not None  # the spec model guarantees it
        return dg.FreshnessPolicy.cron(
            deadline_cron=slo.cron,
            lower_bound_delta=parse_duration(slo.lower_bound),
            timezone=slo.cron_timezone,
        )
    assert slo.max_age is not None
    return dg.FreshnessPolicy.time_window(
        fail_window=parse_duration(slo.max_age),
        warn_window=parse_duration(slo.warn_after) if slo.warn_after else None,
    )


def refresh_cron(slo: FreshnessSlo) -> str:
    """How often a source-aligned product re-ingests so it keeps its freshness SLO."""
    if slo.cron is not None:
        return _before_deadline(slo.cron, parse_duration(slo.lower_bound or "1h"))
    assert slo.max_age is not None
    age = parse_duration(slo.max_age)
    hours = int(age.total_seconds() // 3600)
    if hours >= 24:
        return "0 5 * * *"
    if hours >= 1:
        # Refresh at half the window so one failed run does not breach the SLO.
        return f"0 */{max(1, hours // 2)} * * *"
    minutes = max(5, int(age.total_seconds() // 60) // 2)
    return f"*/{minutes} * * * *"


def _before_deadline(cron: str, window: timedelta) -> str:
    """Run halfway into the window before a daily deadline, so the update lands inside it.

    A cron policy needs an update between (deadline - lower_bound) and the deadline; ingesting at the
    deadline itself would land just after it. Only plain `M H * * *`-style deadlines are shifted;
    anything else keeps the deadline cron (the window must then be long enough for the run).
    """
    fields = cron.split()
    if len(fields) != 5 or not (fields[0].isdigit() and fields[1].isdigit()) or fields[2] != "*":
        return cron
    deadline = int(fields[1]) * 60 + int(fields[0])
    shift = max(1, int(window.total_seconds() // 120))  # half the window, in minutes
    if shift > deadline:  # crossing midnight would move a weekday-bound deadline to the wrong day
        return cron
    at = deadline - shift
    return " ".join([str(at % 60), str(at // 60), *fields[2:]])


def column_schema(port: OutputPort) -> dg.TableSchema:
    """The port's schema as Dagster shows it: types, descriptions, nullability and uniqueness."""
    single_key = port.primary_key[0] if len(port.primary_key) == 1 else None
    columns = []
    for column in port.columns:
        type_name = column.type.value
        if column.precision is not None:
            type_name = f"decimal({column.precision},{column.scale})"
        other = []
        if column.name in port.primary_key:
            other.append("primary key")
        if column.pii:
            other.append("pii")
        columns.append(
            dg.TableColumn(
                name=column.name,
                type=type_name,
                description=column.description,
                constraints=dg.TableColumnConstraints(
                    nullable=column.nullable,
                    unique=column.unique or column.name == single_key,
                    other=other,
                ),
                tags={"mesh/pii": "true"} if column.pii else {},
            )
        )
    return dg.TableSchema(columns=columns)


def port_description(spec: DataProductSpec, port: OutputPort, today: date | None = None) -> str:
    """Markdown description: purpose, usage, limitations, and any deprecation warning first.

    `today` (default: the current date, when the code location loads) tells a deprecated port from one
    overdue for retirement; it changes the wording only, never what is served or built.
    """
    lines = [f"**{spec.title}** (v{port.version})", ""]
    status = spec.port_status(port)
    if status == Status.DEPRECATED and port.deprecation is not None:
        dep = port.deprecation
        if lifecycle.is_overdue(spec, port, today or date.today()):
            lines += [
                f"> 🔴 **Overdue for retirement**: its sunset {dep.sunset.isoformat()} has passed. Still "
                f"served and built until its owner retires it; consumers must move to v{dep.replacement} "
                f"now. {dep.reason}",
                "",
            ]
        else:
            lines += [
                f"> **Deprecated**: served until its sunset {dep.sunset.isoformat()}. "
                f"Move to v{dep.replacement}. {dep.reason}",
                "",
            ]
    if port.description:
        lines += [port.description, ""]
    lines += [
        spec.description.purpose,
        "",
        f"**Usage**: {spec.description.usage}",
        "",
        f"**Limitations**: {spec.description.limitations}",
    ]
    return "\n".join(lines)


def code_reference(*files: Path) -> dg.CodeReferencesMetadataValue:
    """Links from an asset to the files that define it."""
    # Code references are a beta API in Dagster 1.13, used on purpose (the UI links to the spec and
    # transformation); its warning would repeat for every asset on every load.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.CodeReferencesMetadataValue(
            code_references=[
                dg.LocalFileCodeReference(file_path=str(f.resolve()), line_number=1) for f in files
            ]
        )


def code_references(product: Product) -> dg.CodeReferencesMetadataValue:
    """Links to the spec and the transformation that builds the product."""
    spec, folder = product.spec, product.folder
    # Code in the product folder only: a dbt model's own asset links its file.
    files: list[Path] = [product.path, *kinds.kind_of(spec).folder_code(spec, folder)]
    return code_reference(*files)


def port_metadata(
    product: Product, port: OutputPort, where: PortContext, today: date | None = None
) -> dict[str, object]:
    """The contract as Dagster metadata on the port asset (`today`: see `port_description`)."""
    spec = product.spec
    relation = addressing.published(spec, port)
    metadata: dict[str, object] = {
        "dagster/column_schema": column_schema(port),
        "dagster/table_name": f"{where.database}.{relation.dotted}",
        "dagster/uri": dg.MetadataValue.url(addressing.port_uri(spec.domain, spec.name, port.major)),
        "dagster/code_references": code_references(product),
        "mesh/version": port.version,
        "mesh/status": spec.port_status(port).value,
        "mesh/classification": spec.classification.value,
        "mesh/product_type": spec.product_type.value,
        "mesh/business_capability": spec.business_capability,
        "mesh/primary_key": ", ".join(port.primary_key),
        "mesh/slos": dg.MetadataValue.json(spec.slos.model_dump(mode="json")),
        "mesh/access": dg.MetadataValue.json(spec.access.model_dump(mode="json")),
        "mesh/access_policy": dg.MetadataValue.json(spec.access_policy.model_dump(mode="json")),
        "mesh/distribution_rights": dg.MetadataValue.json(spec.distribution_rights.model_dump(mode="json")),
        "mesh/data_sharing_agreement": dg.MetadataValue.json(
            spec.data_sharing_agreement.model_dump(mode="json")
        ),
        "mesh/support": f"{spec.support.kind}: {spec.support.channel}",
        "mesh/pii_columns": ", ".join(c.name for c in port.columns if c.pii) or "none",
        "mesh/input_ports": ", ".join(
            getattr(i, "product", None) or f"source:{getattr(i, 'source', '')}" for i in spec.input_ports
        )
        or "none",
        "mesh/spec": str(product.path.resolve()),
    }
    # The port's ODCS contract, where `mesh contract export` writes it (odcs imports nothing heavy).
    from mesh_assets.infra.environment import contract_path, env_name
    from mesh_assets.product.addressing import contract_id

    # Which environment built it: the UI of a sandbox must not be taken for production's.
    metadata["mesh/environment"] = env_name()
    metadata["mesh/contract"] = dg.MetadataValue.path(str(contract_path(product, port)))
    metadata["mesh/contract_id"] = contract_id(spec.domain, spec.name, port.major)
    if port.deprecation is not None:
        metadata["mesh/deprecation"] = dg.MetadataValue.json(port.deprecation.model_dump(mode="json"))
    lineage = where.lineage.get(spec.key)
    column_lineage = dagster_lineage(lineage.port(port.major) if lineage else None)
    if column_lineage is not None:
        metadata["dagster/column_lineage"] = column_lineage
    sunset = lifecycle.describe(spec, port, today or date.today())
    if sunset is not None:
        metadata["mesh/lifecycle"] = dg.MetadataValue.text(sunset)
    return metadata


def port_spec(
    product: Product,
    port: OutputPort,
    where: PortContext,
    deps: list[dg.AssetKey],
    tool: str,
    automation: dg.AutomationCondition | None,
    today: date | None = None,
) -> dg.AssetSpec:
    """The AssetSpec of one output port (`today`: see `port_description`)."""
    spec = product.spec
    today = today or date.today()
    return dg.AssetSpec(
        key=addressing.port_key(spec.domain, spec.name, port.major),
        deps=deps,
        description=port_description(spec, port, today),
        metadata=port_metadata(product, port, where, today),
        group_name=spec.name,
        owners=owners(spec),
        tags={
            **product_tags(spec, "output_port"),
            "mesh/status": spec.port_status(port).value,
            "mesh/port_version": f"v{port.major}",
        },
        kinds={where.target, tool, "table"},
        freshness_policy=freshness_policy(spec.slos.freshness),
        automation_condition=automation,
        code_version=port.version,
    )
