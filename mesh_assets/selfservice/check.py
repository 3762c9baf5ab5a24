"""Checking a product: `mesh validate`'s errors about it, then a dry run held against its contract.

This is what the scaffolded tests call (`check_product`).
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from mesh_assets.product import kinds
from mesh_assets.product.registry import Product, Registry, load_registry
from mesh_assets.product.spec import LogicalType, PythonTransformation

if TYPE_CHECKING:
    from mesh_assets.infra.warehouse.duckdb import DuckDBSession
    from mesh_assets.product.addressing import Relation


def product_problems(root: Path, keys: list[str]) -> dict[str, list[str]]:
    """`mesh validate`'s errors about each of the products `keys`, rendered (an empty list: valid).

    An issue is a product's when it is about a file of the product: its folder, or for a dbt product
    its models in the dbt project and the project's generated contracts.
    """
    from mesh_assets.assets.dbt_contracts import generated_paths
    from mesh_assets.govern.validate import validate

    report = validate(root)
    registry, errors = report.registry, report.errors
    found: dict[str, list[str]] = {}
    for key in keys:
        domain, _, name = key.partition(".")
        files = {(root / "domains" / domain / "products" / name).resolve()}
        product = registry.products.get(key)
        project = kinds.kind_of(product).project(product.spec) if product is not None else None
        if product is not None and project is not None:  # its models live in a shared project
            project_dir = (root / kinds.DBT_PROJECTS / project).resolve()
            models = set(kinds.kind_of(product).models(product.spec))
            files |= {path.resolve() for path in generated_paths(project_dir)}
            for folder in [project_dir, *project_dir.rglob("*")]:
                if folder.suffix == ".sql" and folder.stem in models:
                    files.add(folder.resolve())
        problems = []
        for issue in errors:
            where = issue.file.resolve()
            if where in files or any(parent in files for parent in where.parents):
                problems.append(issue.render(root))
        if product is None and not problems:
            problems.append(f"no product {key} under {root / 'domains'}")
        found[key] = problems
    return found


_SAMPLES = {
    LogicalType.STRING: "'x'",
    LogicalType.INTEGER: "1",
    LogicalType.BIGINT: "1",
    LogicalType.DOUBLE: "1.0",
    LogicalType.BOOLEAN: "true",
    LogicalType.DATE: "DATE '2024-01-01'",
    LogicalType.TIMESTAMP: "TIMESTAMP '2024-01-01 08:00:00'",
}


def _sample_value(column: Any) -> str:
    if column.type == LogicalType.DECIMAL:
        return f"CAST(1 AS DECIMAL({column.precision},{column.scale}))"
    physical = "VARCHAR" if column.type == LogicalType.STRING else column.type.value.upper()
    return f"CAST({_SAMPLES[column.type]} AS {physical})"


def _dry_run_inputs(session: DuckDBSession, product: Product, registry: Registry) -> list[str]:
    """Create each input of the product as one synthetic row in the scratch database."""
    from mesh_assets.infra import environment
    from mesh_assets.product import addressing

    notes = []
    spec = product.spec
    for declared in spec.product_inputs:
        resolved = registry.resolve(product, declared)
        if resolved is None:
            continue
        relation = resolved.relation
        select = ", ".join(f'{_sample_value(c)} AS "{c.name}"' for c in resolved.port.columns)
        session.create_table_as(relation, f"SELECT {select}")
    for source in spec.source_inputs:
        path = environment.resolve().sources_dir / source.system / f"{source.extract}.{source.format}"
        if not path.exists():
            notes.append(f"no extract at {path} to take {source.source}'s columns from")
            continue
        relation = addressing.source_relation(spec.domain, source.source)
        session.load_extract(relation, path, source.format)
        # Keep one row: the check is about the shape of the result, not the data.
        session.create_table_as(relation, f"SELECT * FROM {relation.sql} LIMIT 1")
    return notes


def check_product(root: Path, key: str) -> list[str]:
    """Problems that would keep a product from publishing; an empty list when there are none.

    The spec must be valid (with its SQL and generated dbt contracts). A SQL or Python transformation
    then runs in a scratch in-memory DuckDB on one synthetic row per input port (and the first row of
    each source extract), and its result is held against the contract's schema, the way the
    `contract_schema` check will judge the real batch. dbt models are built by dbt itself in
    `mesh run`. This is what the scaffolded tests call.
    """
    import duckdb

    from mesh_assets.assets.publish import candidate_relation
    from mesh_assets.infra.warehouse.duckdb import DuckDBSession
    from mesh_assets.product import addressing
    from mesh_assets.quality.checks import SchemaRule

    root = Path(root).resolve()
    registry = load_registry(root)
    problems = product_problems(root, [key])[key]
    if problems:
        return problems
    product = registry.products[key]
    spec = product.spec
    kind = kinds.kind_of(product)
    if not kind.dry_run:
        return []
    build = DRY_RUN_BUILDS[kind.name]
    with duckdb.connect() as connection:
        session = DuckDBSession(connection)
        skipped = _dry_run_inputs(session, product, registry)
        if skipped:
            warnings.warn(f"{key}: dry run skipped: {'; '.join(skipped)}", stacklevel=2)
            return []
        for internal in kind.internals(spec):
            relation = addressing.internal_relation(spec.domain, spec.name, internal)
            build(session, product, registry, internal, relation)
        for port in spec.output_ports:
            candidate = candidate_relation(product, port)
            model = spec.port_model(port)
            try:
                build(session, product, registry, model, candidate)
            except Exception as exc:  # the user's code: report whatever it raises, as a problem
                problems.append(f"{key} v{port.major}: {model} failed: {type(exc).__name__}: {exc}")
                continue
            outcome = SchemaRule(port).judge(session, candidate, {})
            if not outcome.passed:
                details = "; ".join(f"{k}: {', '.join(v)}" for k, v in outcome.details.items() if v)
                problems.append(f"{key} v{port.major}: the result does not match the contract ({details})")
    return problems


def _build_sql(
    session: DuckDBSession, product: Product, registry: Registry, model: str, relation: Relation
) -> None:
    from mesh_assets.assets.builders import sql as sql_builder

    session.create_table_as(relation, sql_builder.render(product, registry, model).sql)


def _build_python(
    session: DuckDBSession, product: Product, registry: Registry, model: str, relation: Relation
) -> None:
    from mesh_assets.assets.builders.python import input_relations
    from mesh_assets.product import access

    # Read the inputs exactly as the builder does (PII protected per the producer).
    protected = access.input_queries(product, registry, session.dialect)
    frames = {
        name: session.query_df(protected.get(name, f"SELECT * FROM {source.sql}"))
        for name, (source, _) in input_relations(product, registry).items()
    }
    module = kinds.narrow(product.spec.transformation, PythonTransformation).module
    function = _load_function(product.folder / module, model)
    session.write_dataframe(relation, function(frames))


DryRunBuild = Callable[["DuckDBSession", Product, Registry, str, "Relation"], None]
DRY_RUN_BUILDS: Mapping[str, DryRunBuild] = MappingProxyType({"sql": _build_sql, "python": _build_python})
"""How each kind that is dry-run (`kinds.TransformationKind.dry_run`) builds a model into a relation."""


def _load_function(path: Path, name: str) -> Callable[[dict[str, Any]], Any]:
    module_name = f"mesh_scaffold_check_{path.parent.name}_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling inside the module need it registered
    spec.loader.exec_module(module)
    function = getattr(module, name, None)
    if not callable(function):
        raise AttributeError(f"{path.name} defines no function {name}")
    return function
