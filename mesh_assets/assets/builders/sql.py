"""SQL products: one `<model>.sql` file per internal model and per port, in the product folder.

SQL is written in DuckDB's dialect and templated with three functions, so a query names what it reads
by meaning and never by physical address:
- `{{ input('customers.customer_master') }}`: a declared input port, resolved to the producer's port;
- `{{ source('crm.customers') }}`: a declared source extract, as landed;
- `{{ ref('stg_orders') }}`: another internal model of the same product.
Anything else is refused when the code location loads, naming the fix. On Snowflake the rendered SQL is
transpiled with sqlglot.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg

from mesh_assets.assets.column_lineage import ProductLineage, dagster_lineage
from mesh_assets.assets.ports import code_reference, owners, product_tags
from mesh_assets.assets.publish import WAREHOUSE_POOL, BuildCandidate
from mesh_assets.infra.environment import Environment
from mesh_assets.infra.warehouse.base import Warehouse, WarehouseSession
from mesh_assets.infra.warehouse.isolation import refuse_undeclared_reads
from mesh_assets.product import access, addressing, kinds
from mesh_assets.product.errors import MeshSpecError, SpecIssue
from mesh_assets.product.registry import Product, Registry


@dataclass
class RenderedSql:
    """A model's SQL with its references resolved, and the assets it reads."""

    sql: str
    deps: list[dg.AssetKey] = field(default_factory=list)
    reads: list[addressing.Relation] = field(default_factory=list)
    """The relations `input()`, `source()` and `ref()` resolved to: all the SQL may read."""
    file: Path | None = None


def render(product: Product, registry: Registry, model: str, target: str = "duckdb") -> RenderedSql:
    """Render `<model>.sql` of a product; raise `MeshSpecError` naming file and fix on a bad reference.

    `target` decides how a PII port the product may not read in clear is read: protected by the platform
    on DuckDB, through the port's masked secure view on Snowflake (`access.read_sql`)."""
    spec = product.spec
    path = product.folder / f"{model}.sql"
    internals = kinds.kind_of(spec).internals(spec)
    deps: list[dg.AssetKey] = []
    reads: list[addressing.Relation] = []
    issues: list[SpecIssue] = []
    declared_inputs = {i.product: i for i in spec.product_inputs}
    declared_sources = {s.source for s in spec.source_inputs}

    def _input(reference: str) -> str:
        declared = declared_inputs.get(reference)
        resolved = registry.resolve(product, declared) if declared else None
        if resolved is None:
            owner = registry.products.get(".".join(reference.split(".")[:2]))
            hint = (
                f"declare it in input_ports: - product: {owner.key}" if owner else "declare it in input_ports"
            )
            issues.append(
                SpecIssue(path, f"input('{reference}')", "reads a port the spec does not declare", hint)
            )
            return "__undeclared__"
        producer = resolved.producer.spec
        deps.append(resolved.key)
        port = resolved.relation
        reads.extend([port, addressing.Relation(port.schema, port.name + access.PROTECTED_SUFFIX)])
        # The port itself, or (PII port, consumer without the PII privilege) a subquery that masks,
        # hashes or removes its PII columns per the producer's policy: see `access.read_sql`.
        return access.read_sql(spec, producer, resolved.port, target)

    def _source(reference: str) -> str:
        if reference not in declared_sources:
            issues.append(
                SpecIssue(
                    path,
                    f"source('{reference}')",
                    "reads a source the spec does not declare",
                    f"add '- source: {reference}' to input_ports",
                )
            )
            return "__undeclared__"
        deps.append(addressing.source_key(spec.domain, spec.name, reference))
        reads.append(addressing.source_relation(spec.domain, reference))
        return reads[-1].sql

    def _ref(name: str) -> str:
        if name not in internals:
            issues.append(
                SpecIssue(
                    path,
                    f"ref('{name}')",
                    f"'{name}' is not an internal model of {spec.key}",
                    "list it under transformation.internals, or use input() for another product's port",
                )
            )
            return "__undeclared__"
        deps.append(addressing.internal_key(spec.domain, spec.name, name))
        reads.append(addressing.internal_relation(spec.domain, spec.name, name))
        return reads[-1].sql

    try:
        sql = render_template(path.read_text(), input=_input, source=_source, ref=_ref)
    except ModelTemplateError as exc:
        raise MeshSpecError(
            [
                SpecIssue(
                    path,
                    f"line {exc.lineno or '?'}",
                    f"template error: {exc}",
                    "use only input('<domain>.<product>'), source('<system>.<extract>') "
                    "and ref('<internal>')",
                )
            ],
            registry.root,
        ) from exc
    if issues:
        raise MeshSpecError(issues, registry.root)
    # A product may also read its own published ports (an incremental model reading its last publish).
    reads += [addressing.published(spec, p) for p in spec.output_ports]
    return RenderedSql(
        sql=sql.strip().rstrip(";"),
        deps=list(dict.fromkeys(deps)),
        reads=list(dict.fromkeys(reads)),
        file=path,
    )


_CALL = re.compile(r"""\{\{\s*(input|source|ref)\(\s*(?:'([^'\\\r\n]*)'|"([^"\\\r\n]*)")\s*\)\s*\}\}""")
"""`{{ input('...') }}`, `{{ source("...") }}` or `{{ ref('...') }}`: a call with one plain string."""


class ModelTemplateError(Exception):
    """A model's Jinja could not be rendered; `lineno` is Jinja's line, when it knows it.

    The platform's own type, so that code locations, which render every SQL model while they load, need not
    import jinja2 unless a model really uses more of Jinja than `input()`/`source()`/`ref()` calls.
    """

    def __init__(self, message: str, lineno: int | None) -> None:
        super().__init__(message)
        self.lineno = lineno


def render_template(text: str, **functions: Callable[[str], str]) -> str:
    """A model's text rendered by Jinja with `functions` (`input`, `source`, `ref`) and nothing else.

    Model files are almost always plain SQL whose only templating is calls like `{{ input('a.b') }}`;
    those are substituted directly, with Jinja's own output (one trailing newline dropped), because
    compiling a Jinja template costs about a millisecond and `mesh validate` renders every model of the
    mesh twice. Anything else (blocks, filters, comments, whitespace control, escapes, `\\r`) goes
    through Jinja itself, which also raises its errors as before.
    """
    plain = _CALL.sub("", text)
    only_calls = not any(mark in plain for mark in ("{{", "{%", "{#", "\r"))
    if only_calls and functions.keys() >= {"input", "source", "ref"}:
        source = text[:-1] if text.endswith("\n") else text  # as Jinja drops it from the template
        return _CALL.sub(lambda m: functions[m[1]](m[2] if m[2] is not None else m[3]), source)
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    try:
        return env.from_string(text).render(**functions)
    except jinja2.TemplateError as exc:
        raise ModelTemplateError(str(exc), getattr(exc, "lineno", None)) from exc


def for_dialect(sql: str, session: WarehouseSession) -> str:
    """The SQL in the session's dialect (models are written in DuckDB's)."""
    if session.dialect == "duckdb":
        return sql
    import sqlglot

    return sqlglot.transpile(sql, read="duckdb", write=session.dialect)[0]


def internal_assets(
    product: Product,
    registry: Registry,
    env: Environment,
    automation: dg.AutomationCondition | None,
    lineage: ProductLineage | None = None,
) -> list[dg.AssetsDefinition]:
    """One asset per internal SQL model of the product (with its column lineage, when given)."""
    spec = product.spec
    assets = []
    for name in kinds.kind_of(spec).internals(spec):
        rendered = render(product, registry, name, env.target)
        relation = addressing.internal_relation(spec.domain, spec.name, name)
        column_lineage = dagster_lineage(lineage.models.get(name) if lineage else None)
        assets.append(_internal_asset(product, name, rendered, relation, env, automation, column_lineage))
    return assets


def _internal_asset(
    product: Product,
    name: str,
    rendered: RenderedSql,
    relation: addressing.Relation,
    env: Environment,
    automation: dg.AutomationCondition | None,
    column_lineage: dg.TableColumnLineage | None = None,
) -> dg.AssetsDefinition:
    spec = product.spec
    metadata: dict[str, object] = {
        "dagster/table_name": relation.dotted,
        "dagster/code_references": code_reference(product.folder / f"{name}.sql"),
    }
    if column_lineage is not None:
        metadata["dagster/column_lineage"] = column_lineage

    @dg.asset(
        key=addressing.internal_key(spec.domain, spec.name, name),
        deps=rendered.deps,
        group_name=spec.name,
        owners=owners(spec),
        tags=product_tags(spec, "internal"),
        kinds={env.target, "sql"},
        description=f"Internal model `{name}` of {spec.key} (private: other products read its port).",
        metadata=metadata,
        automation_condition=automation,
        pool=WAREHOUSE_POOL,
    )
    def _build(
        context: dg.AssetExecutionContext, warehouse: dg.ResourceParam[Warehouse]
    ) -> dg.MaterializeResult:
        # Product code runs where it can reach no file, URL or other database, and only what it declared.
        with warehouse.isolated_session() as session:
            refuse_undeclared_reads(session, rendered.sql, rendered.reads, spec.key, rendered.file)
            session.create_table_as(relation, for_dialect(rendered.sql, session))
            rows = session.row_count(relation)
        result: dict[str, object] = {"dagster/row_count": rows}
        if column_lineage is not None:
            # Read from the latest materialization by Dagster's UI, as for ports.
            result["dagster/column_lineage"] = column_lineage
        return dg.MaterializeResult(metadata=result)

    return _build


def port_builder(
    product: Product, registry: Registry, model: str, target: str = "duckdb"
) -> tuple[BuildCandidate, list[dg.AssetKey]]:
    """The candidate builder of a SQL port, and the assets it reads."""
    rendered = render(product, registry, model, target)

    def build(
        context: dg.AssetExecutionContext, session: WarehouseSession, candidate: addressing.Relation
    ) -> None:
        refuse_undeclared_reads(session, rendered.sql, rendered.reads, product.key, rendered.file)
        session.create_table_as(candidate, for_dialect(rendered.sql, session))

    return build, rendered.deps
