"""What product SQL may read, as an allowlist: relations resolved by `input()`, `source()` and `ref()`.

`backdoors` names the *mesh's* relations a product must not read (other products' internals, undeclared
ports). This lint refuses everything else that is not a declared relation, because a denylist cannot keep
up with DuckDB (`read_csv_auto('data/sources/crm/customers.csv')` reads another domain's raw extract around
its port and its PII masking; `query_table('sales_internal.stg_orders')` names a table in a string):

- **table functions**: those that read files or URLs (`read_csv`, `read_parquet`, `glob`, …), other
  databases (`postgres_scan`, `sqlite_scan`, …), and the dynamic-table functions `query_table` and `query`,
  whose relation is a string resolved only when the query runs. Only row generators (`range`,
  `generate_series`, `unnest`) are allowed;
- **statements other than one query** (`ATTACH`, `COPY … TO`, `INSTALL`, `SET`, `CREATE`, a second
  statement): a model is one SELECT, and the platform writes its result;
- **names that are no declared relation**: an unqualified name that is not a CTE (DuckDB reads
  `FROM 'file.csv'` and `FROM "data/x.parquet"` as files), a catalog-qualified name (`mesh_prod.…`), or a
  schema that is no domain's (`information_schema`, `main`).

SQL and dbt products are read as `backdoors.sql_sources` reads them (a SQL model rendered, a dbt model as
compiled, else its raw code with the Jinja resolved). Each finding names the model file, the line, what is
written, and the fix: declare an input port or a source. At run time the engine holds the same line
(`infra/warehouse/isolation.py`: an isolated session that reaches no file, and what the SQL binds to is
checked), so the lint is the early, precise half; a SQL text the lint cannot parse is still checked by the
engine.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mesh_assets.govern import backdoors
from mesh_assets.product import addressing, kinds
from mesh_assets.product.errors import SpecIssue
from mesh_assets.product.registry import Product, Registry

GENERATORS = frozenset({"range", "generate_series", "unnest"})
"""Table functions that make rows from their arguments and read nothing: allowed."""
DYNAMIC = frozenset({"query_table", "query"})
DATABASE_READERS = re.compile(r"^(postgres|mysql|sqlite|odbc|bigquery|snowflake|mssql)_\w+$")
STATEMENT = re.compile(
    r"^\s*(attach|detach|copy|export|import|install|load|set|reset|pragma|call|create|insert|update|delete|"
    r"drop|alter|use|checkpoint|vacuum|begin|commit|rollback|truncate|merge)\b",
    re.I | re.M,
)
TABLE_FUNCTION = re.compile(r"\b(read_\w+|glob|\w+_scan|\w+_query|query_table|query|sniff_csv)\s*\(", re.I)


@dataclass(frozen=True)
class Finding:
    """One thing a model's SQL reads or does that is not a declared relation."""

    written: str
    """What is written, e.g. `read_csv_auto('data/sources/crm/customers.csv')` or `ATTACH`."""
    needle: str
    """A regular expression finding it in the file, for the line number."""
    message: str


def _function_finding(name: str, call: str) -> Finding | None:
    name = name.lower()
    if name in GENERATORS:
        return None
    needle = rf"\b{re.escape(name)}\s*\("
    if name in DYNAMIC:
        return Finding(
            call,
            needle,
            # e.g. `query_table('sales_internal.stg_orders')`: the fix names whose data that is.
            f"calls {name}(), a dynamic-table function: the relation it reads is a string resolved only when "
            "the query runs, around input() and the port's access policy",
        )
    if DATABASE_READERS.match(name):
        return Finding(call, needle, f"reads another database through {name}()")
    if name.startswith("read_") or name in ("glob", "sniff_csv") or name.endswith("_scan"):
        return Finding(
            call,
            needle,
            f"reads files or URLs through {name}(): around every port, its contract and its access policy "
            "(PII masking)",
        )
    return Finding(call, needle, f"calls the table function {name}(), which is not a declared relation")


def _findings(sql: str, dialect: str, mesh_schemas: set[str], dbt: bool) -> Iterator[Finding]:
    """Everything in `sql` that is not one query over declared relations."""
    import sqlglot
    from sqlglot import exp

    try:
        statements = [s for s in backdoors.parsed(sql, dialect) if s is not None]
    except sqlglot.errors.ParseError:
        # `backdoors` warns that the SQL does not parse; what can still be seen is refused here.
        yield from _fallback(sql)
        return
    for index, statement in enumerate(statements):
        # DuckDB's top-level PIVOT and VALUES are queries too (sqlglot gives them their own classes).
        if not isinstance(statement, exp.Query | exp.Pivot | exp.Values):
            keyword = statement.sql(dialect=dialect).split(None, 1)[0].upper() if statement else "?"
            yield Finding(
                keyword,
                rf"(?im)^\s*{re.escape(keyword)}\b|\b{re.escape(keyword)}\b",
                f"runs {keyword}, not a query: a model is one query, and the platform writes its result",
            )
            continue
        if index:
            yield Finding(
                "a second statement",
                r";\s*\S",
                "holds more than one statement: a model is one query, and the platform writes its result",
            )
        ctes = {cte.alias_or_name.lower() for cte in statement.find_all(exp.CTE)}
        for table in statement.find_all(exp.Table):
            if isinstance(table.this, exp.Func):
                name = str(table.this.sql(dialect="duckdb")).split("(", 1)[0].strip('"').lower()
                call = table.this.sql(dialect="duckdb")
                finding = _function_finding(name, call)
                if finding is not None:
                    yield finding
                continue
            name, schema, catalog = table.name, table.db.lower(), table.catalog.lower()
            written = ".".join(p for p in (catalog, schema, name) if p)
            # As written in a FROM or JOIN (quoted or not), so a name also found elsewhere is not matched.
            needle = r"\b(?:from|join)\s+[\"']?" + re.escape(name) + r"[\"']?(?![\w.])"
            if schema:
                needle = re.escape(schema) + r'"?\s*\.\s*"?' + re.escape(name) + r"\b"
            if not schema:
                if name.lower() in ctes:
                    continue
                if re.search(r"[/\\]|\.\w+$|://", name):
                    yield Finding(name, needle, f"reads the file {name!r} (DuckDB reads a path as a table)")
                else:
                    yield Finding(
                        name,
                        needle,
                        f"reads {name}, which is neither a CTE nor a relation input(), source() or ref() "
                        "resolved",
                    )
                continue
            if schema == backdoors.INPUT_MARKER:
                continue
            if catalog and not dbt:
                yield Finding(
                    written,
                    needle,
                    f"reads {written} from the catalog {catalog}: a product names no database; input() "
                    "resolves where a port is read from",
                )
            elif schema not in mesh_schemas:
                yield Finding(
                    written,
                    needle,
                    f"reads {written}, in a schema that is no domain's: not a relation input(), source() "
                    "or ref() resolved",
                )
            # Mesh schemas (ports, internals) are `backdoors`' to judge, with the port to read instead.


def _fallback(sql: str) -> Iterator[Finding]:
    for match in STATEMENT.finditer(sql):
        keyword = match[1].upper()
        yield Finding(keyword, rf"(?im)^\s*{keyword}\b", f"runs {keyword}, not a query: a model is one query")
    for match in TABLE_FUNCTION.finditer(sql):
        finding = _function_finding(match[1], match[0].rstrip("(").strip() + "(…)")
        if finding is not None:
            yield finding


def _line(texts: list[str], needle: str) -> tuple[int, str] | None:
    """The first line (1-based) of the first text `needle` is found in, and that line's text."""
    pattern = re.compile(needle, re.I)
    for text in texts:
        match = pattern.search(text)
        if match:
            number = text.count("\n", 0, match.start()) + 1
            return number, text.splitlines()[number - 1].strip()
    return None


def _extract_owner(registry: Registry, written: str) -> tuple[Product, str] | None:
    """The product landing the source extract a path names (`…/<system>/<extract>.<format>`), if any."""
    path = re.search(r"([A-Za-z0-9_]+)/([A-Za-z0-9_]+)\.(csv|parquet)", written)
    if path is None:
        return None
    system, extract = path[1], path[2]
    for key in sorted(registry.products):
        product = registry.products[key]
        for source in product.spec.source_inputs:
            if source.system == system and source.extract == extract:
                return product, source.source
    return None


def _named_in_string(registry: Registry, consumer: Product, written: str) -> str | None:
    """For `query_table('<schema>.<table>')`: whose relation the string names, and the input to declare."""
    named = re.search(r"""['"]\s*"?([a-z][a-z0-9_]*)"?\s*\.\s*"?([a-z][a-z0-9_]*)""", written, re.I)
    if named is None:
        return None
    schema, table = named[1].lower(), named[2].lower()
    domain = schema.removesuffix(addressing.INTERNAL_SCHEMA_SUFFIX)

    def owns(product: Product) -> bool:
        spec = product.spec
        return (
            table.startswith((f"{spec.name}__", f"{spec.name}_v"))
            or table in kinds.kind_of(spec).internals(spec)
            or table in {addressing.source_relation(domain, s.source).name for s in spec.source_inputs}
        )

    owner = next((p for p in registry.domain_products(domain) if owns(p)), None)
    if owner is None or owner.key == consumer.key:
        return None
    return f"it names {schema}.{table}, data of {owner.key}: declare '- product: {owner.key}' in input_ports"


def _fix(consumer: Product, registry: Registry, finding: Finding) -> str:
    kind = kinds.kind_of(consumer)
    read_port, read_source = kind.port_read_hint, kind.source_read_hint
    named = _named_in_string(registry, consumer, finding.written) if "(" in finding.written else None
    if named is not None:
        key = named.split("'- product: ")[1].split("'")[0]
        return f"{named} and read it with {read_port.replace('<domain>.<product>', key)}"
    owner = _extract_owner(registry, finding.written)
    if owner is not None:
        producer, source = owner
        if producer.key == consumer.key or source in {s.source for s in consumer.spec.source_inputs}:
            return f"read the landed extract with {read_source.replace('<system>.<extract>', source)}"
        return (
            f"that file is {source}, the raw extract behind {producer.key}'s port: declare "
            f"'- product: {producer.key}' in input_ports of {consumer.key} and read it with "
            + read_port.replace("<domain>.<product>", producer.key)
        )
    return (
        "declare an input port ('- product: <domain>.<product>' in input_ports) and read it with "
        f"{read_port}; data from an operational system is a source ('- source: <system>.<extract>', read "
        f"with {read_source})"
    )


def lint(registry: Registry) -> list[SpecIssue]:
    """Every SQL and dbt model of the mesh reading or doing something other than its declared relations."""
    domains = {p.spec.domain for p in registry.products.values()}
    mesh_schemas = domains | {d + addressing.INTERNAL_SCHEMA_SUFFIX for d in domains}
    issues: list[SpecIssue] = []
    csvs: dict[Path, set[str]] = {}
    for source in backdoors.sql_sources(registry):
        dbt = kinds.kind_of(source.product).compiled_by_tool
        texts = _texts(source.file, source.sql)
        seen: set[tuple[str, str]] = set()
        seeds = _own_seeds(source.product, registry, csvs) if dbt else set()
        for finding in _findings(source.sql, source.dialect, mesh_schemas, dbt):
            if (finding.written, finding.message) in seen:
                continue
            if "." in finding.written and finding.written.rsplit(".", 1)[-1] in seeds:
                continue  # a source naming the product's own seed (its raw data), wherever dbt seeds it
            seen.add((finding.written, finding.message))
            where = _line(texts, finding.needle)
            field = f"line {where[0]}: {where[1]}" if where else finding.written
            origin = "" if source.origin in ("rendered", "raw") else f" (in its {source.origin} code)"
            issues.append(
                SpecIssue(
                    source.file, field, finding.message + origin, _fix(source.product, registry, finding)
                )
            )
    return issues


def _own_seeds(product: Product, registry: Registry, csvs: dict[Path, set[str]]) -> set[str]:
    """The product's internals that are seeds of its dbt project: read as sources, they are its own.

    `csvs` caches each project's CSV file names (one scan per project, not per model).
    """
    spec = product.spec
    project = registry.root / kinds.DBT_PROJECTS / str(kinds.kind_of(spec).project(spec))
    if project not in csvs:
        csvs[project] = {path.stem for path in project.rglob("*.csv") if "target" not in path.parts}
    names = csvs[project]
    return {name.lower() for name in kinds.kind_of(spec).internals(spec) if name in names}


def _texts(file: Path, sql: str) -> list[str]:
    """Where to look for a line: the file a person edits first, then the SQL as run (dbt: compiled)."""
    try:
        return [file.read_text(), sql]
    except OSError:
        return [sql]
