"""From the dbt YAML and the built relation to a port's contract: columns, key, rules, descriptions.

Columns come in order with their types (the built relation's, else the YAML's `data_type`),
descriptions and `meta.pii`; `not_null`/`unique` tests and constraints become nullability, uniqueness
and the primary key; `accepted_values`, `accepted_range` and `relationships` to another port become
quality rules; any other single-model test becomes a custom SQL rule from its compiled query.
"""

from __future__ import annotations

import re
from typing import Any

from mesh_assets.product.sql_types import fixed_point
from mesh_assets.selfservice.dbt_manifest import DbtProject, mesh_meta, node_meta
from mesh_assets.selfservice.errors import OnboardError
from mesh_assets.selfservice.governance_defaults import humanize
from mesh_assets.selfservice.onboard_plan import OnboardRequest, PortPlan
from mesh_assets.selfservice.prompts import Asker, answer, suggest_identifier
from mesh_assets.selfservice.yaml_style import Flow, FlowMap

_INTEGER_FIX = "cast it as integer (or bigint)"
_PHYSICAL = {
    "VARCHAR": "string",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "DOUBLE": "double",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
}
_WIDE = {"HUGEINT", "UHUGEINT"}
"""DuckDB's 128-bit integers (a `sum()` of integers is HUGEINT): held as decimal(38,0), Snowflake's sum."""
_FIXES = {
    "TINYINT": _INTEGER_FIX,
    "SMALLINT": _INTEGER_FIX,
    "UTINYINT": _INTEGER_FIX,
    "USMALLINT": _INTEGER_FIX,
    "UINTEGER": "cast it as bigint",
    "UBIGINT": "cast it as bigint or decimal(20,0)",
    "FLOAT": "cast it as double",
    "REAL": "cast it as double",
    "TIMESTAMP WITH TIME ZONE": "cast it as timestamp (UTC)",
    "TIMESTAMP_NS": "cast it as timestamp",
    "TIMESTAMP_MS": "cast it as timestamp",
    "TIMESTAMP_S": "cast it as timestamp",
}
_DECLARED = {
    "string": "string",
    "text": "string",
    "varchar": "string",
    "char": "string",
    "character varying": "string",
    "int": "integer",
    "integer": "integer",
    "int4": "integer",
    "bigint": "bigint",
    "int8": "bigint",
    "long": "bigint",
    "double": "double",
    "double precision": "double",
    "float8": "double",
    "float": "double",
    "boolean": "boolean",
    "bool": "boolean",
    "date": "date",
    "timestamp": "timestamp",
    "timestamp_ntz": "timestamp",
    "datetime": "timestamp",
}


def logical_type(physical: str) -> dict[str, Any]:
    """The contract type of a DuckDB column type; `OnboardError`-worthy text under `problem` otherwise."""
    upper = physical.upper().strip()
    if upper in _PHYSICAL:
        return {"type": _PHYSICAL[upper]}
    fixed = fixed_point(upper, "duckdb")
    if fixed and None not in fixed:
        return {"type": "decimal", "precision": fixed[0], "scale": fixed[1]}
    if upper in _WIDE:
        # No narrower type holds every value; the publish casts onto decimal(38,0) and refuses (fails the
        # step) a value beyond 38 digits rather than truncate it.
        return {"type": "decimal", "precision": 38, "scale": 0, "widened": upper}
    return {
        "problem": f"type {physical} has no contract type: "
        + _FIXES.get(
            upper, "cast it to varchar, integer, bigint, double, decimal(p,s), boolean, date or timestamp"
        )
    }


def declared_type(data_type: str | None) -> dict[str, Any] | None:
    """The contract type of a `data_type` declared in the dbt YAML, if it maps to one."""
    if not data_type:
        return None
    text = data_type.strip().lower()
    fixed = fixed_point(text)
    if fixed and None not in fixed:
        return {"type": "decimal", "precision": fixed[0], "scale": fixed[1]}
    kind = _DECLARED.get(text)
    return {"type": kind} if kind else None


def _severity(test: dict[str, Any]) -> str:
    return "warn" if str((test.get("config") or {}).get("severity", "error")).lower() == "warn" else "error"


def _this_sql(test: dict[str, Any], port: dict[str, Any]) -> str | None:
    """A single-model test's compiled query with the model's relation replaced by `{{ this }}`.

    The relation is found among sqlglot's tokens of the query, so the rest of the query keeps its text
    and layout (a parse and re-render would rewrite all of it), and a longer name sharing the model's
    as a prefix (`orders_x` for `orders`) is left alone.
    """
    code = test.get("compiled_code")
    if not code:
        return None
    spans = _relation_spans(code, port["schema"], port.get("alias") or port["name"])
    if spans is None:
        return None
    for start, end in reversed(spans):
        code = code[:start] + "{{ this }}" + code[end + 1 :]
    code = "\n".join(line.rstrip() for line in code.strip().splitlines() if line.strip())
    return code if "{{ this }}" in code else None


def _relation_spans(code: str, schema: str, name: str) -> list[tuple[int, int]] | None:
    """First and last character of each read of `[<database>.]<schema>.<name>` in a DuckDB query
    (None when it does not tokenize); a `dbt build --empty` wrapper around a read is part of it."""
    from sqlglot.dialects.duckdb import DuckDB
    from sqlglot.errors import TokenError
    from sqlglot.tokens import TokenType

    try:
        tokens = DuckDB().tokenize(code)
    except TokenError:
        return None
    kinds = [t.token_type for t in tokens]
    # `dbt build --empty` wraps each read in a never-true subquery: `(select * from <rel> where false
    # limit 0)`; the whole wrapper is the read.
    opening = [TokenType.L_PAREN, TokenType.SELECT, TokenType.STAR, TokenType.FROM]
    closing = [TokenType.WHERE, TokenType.FALSE, TokenType.LIMIT, TokenType.NUMBER, TokenType.R_PAREN]
    spans = []
    i = 0
    while i + 2 < len(tokens):
        if not (kinds[i + 1] == TokenType.DOT and tokens[i].text == schema and tokens[i + 2].text == name):
            i += 1
            continue
        first, last = i, i + 2
        if first >= 2 and kinds[first - 1] == TokenType.DOT:
            first -= 2  # the database
        if first >= 1 and kinds[first - 1] == TokenType.DOT:
            i += 1  # a longer dotted name that merely contains `<schema>.<name>`
            continue
        if (
            kinds[max(first - 4, 0) : first] == opening
            and kinds[last + 1 : last + 6] == closing
            and tokens[last + 4].text == "0"
        ):
            first, last = first - 4, last + 5
        spans.append((tokens[first].start, tokens[last].end))
        i = last + 1
    return spans


class ContractDerivation:
    """Derives each port's contract; what it cannot carry over lands in `warnings`."""

    def __init__(
        self,
        project: DbtProject,
        types: dict[str, list[tuple[str, str]]],
        domain: str,
        request: OnboardRequest,
        asker: Asker | None,
        warnings: list[str],
    ) -> None:
        self.project = project
        self.types = types
        self.domain = domain
        self.request = request
        self.asker = asker
        self.warnings = warnings

    def contract(self, port: PortPlan, ports: dict[str, PortPlan]) -> None:
        """The port's columns, key, rules and descriptions, from the built relation and the dbt YAML."""
        node = self.project.models[port.uid]
        yaml_columns = node.get("columns") or {}
        columns = self._columns(port, yaml_columns)
        names = [c["name"] for c in columns]
        not_null, key_candidates = _constraints(node, yaml_columns)
        unique: set[str] = set()
        rules = self._rules(port, ports, names, not_null, unique, key_candidates)
        key = self._primary_key(port, node, names, not_null, unique, key_candidates)
        for column in columns:
            _describe_column(column, yaml_columns.get(column["name"]) or {}, port, not_null, unique, key)
        port.columns = [FlowMap(_ordered(c)) for c in columns]
        port.primary_key = key
        event_time = (node.get("config") or {}).get("event_time")
        port.event_time = event_time if event_time in names else None
        port.rules = rules
        port.description = (node.get("description") or "").strip()
        port.title = str(mesh_meta(node).get("title") or humanize(port.product))
        tags = (node.get("config") or {}).get("tags") or node.get("tags") or []
        port.tags = ["dbt", *(t for t in tags if re.fullmatch(r"[a-z0-9][a-z0-9_-]*", str(t)))]

    def _columns(self, port: PortPlan, yaml_columns: dict[str, Any]) -> list[dict[str, Any]]:
        """The port's columns and types: as the model built on DuckDB, else as its YAML declares them."""
        built = self.types.get(port.uid)
        problems = []
        columns: list[dict[str, Any]] = []
        if built:
            for name, physical in built:
                kind = logical_type(physical)
                if "problem" in kind:
                    problems.append(f"{port.model}.{name}: {kind['problem']}")
                columns.append({"name": name, **kind})
                if "widened" in kind:
                    self.warnings.append(
                        f"{port.model}.{name}: DuckDB's {kind['widened']} is published as decimal(38,0) "
                        "(the contract says so in the column's description)"
                    )
            missing = sorted(set(yaml_columns) - {c["name"] for c in columns})
            if missing:
                self.warnings.append(
                    f"{port.model}: documented column(s) {', '.join(missing)} are not returned by the model; "
                    "left out of the contract"
                )
        else:
            for name, column in yaml_columns.items():
                kind = declared_type(column.get("data_type"))
                if kind is None:
                    problems.append(
                        f"{port.model}.{name}: the model did not build on DuckDB and the YAML declares no "
                        "usable data_type for it"
                    )
                columns.append({"name": name, **(kind or {})})
            if not columns:
                problems.append(
                    f"{port.model}: the model did not build on DuckDB and its YAML lists no columns"
                )
        if problems:
            raise OnboardError(
                "the port's contract cannot be derived:\n" + "\n".join(f"  - {p}" for p in problems)
            )
        bad = [c["name"] for c in columns if not re.fullmatch(r"[a-z][a-z0-9_]*", c["name"])]
        if bad:
            raise OnboardError(
                f"{port.model}: column(s) {', '.join(bad)} are not lowercase identifiers; "
                "alias them in the model"
            )
        return columns

    def _rules(
        self,
        port: PortPlan,
        ports: dict[str, PortPlan],
        names: list[str],
        not_null: set[str],
        unique: set[str],
        key_candidates: list[list[str]],
    ) -> list[dict[str, Any]]:
        """The port's dbt tests mapped (`map_test`): quality rules, and column properties and keys."""
        rules: list[dict[str, Any]] = []
        for test in self.project.tests:
            attached = test.get("attached_node")
            single = test.get("depends_on", {}).get("nodes", []) == [port.uid]
            # A test belongs to the model it is attached to (a relationships test is attached to the
            # referencing model, though it reads both); a singular test to the one model it reads.
            if attached != port.uid and not (attached is None and single):
                continue
            self.map_test(test, port, ports, names, not_null, unique, key_candidates, rules)
        return rules

    def _primary_key(
        self,
        port: PortPlan,
        node: dict[str, Any],
        names: list[str],
        not_null: set[str],
        unique: set[str],
        key_candidates: list[list[str]],
    ) -> list[str]:
        """The key flagged (request, `meta.mesh`), else the one tests and constraints show, else asked."""
        flagged = self.request.primary_keys.get(port.model) or mesh_meta(node).get("primary_key")
        if isinstance(flagged, str):
            flagged = [k.strip() for k in flagged.split(",")]
        if flagged:
            key = list(flagged)
        else:
            both = [n for n in names if n in unique and n in not_null]
            key = next(iter(key_candidates), None) or both[:1] or [n for n in names if n in unique][:1]
        if not key and self.asker is not None:
            text = answer(
                None,
                label=f"Primary key of {port.model} (comma-separated columns of {', '.join(names)})",
                flag="--primary-key",
                default=names[0],
                asker=self.asker,
            )
            key = [k.strip() for k in text.split(",") if k.strip()]
        if not key:
            raise OnboardError(
                f"{port.model}: no primary key found (a unique + not_null test, a primary_key constraint or "
                "dbt_utils.unique_combination_of_columns); pass "
                f"--primary-key {port.model}=<column>[,<column>]"
            )
        unknown = [k for k in key if k not in names]
        if unknown:
            raise OnboardError(
                f"{port.model}: primary key column(s) {', '.join(unknown)} not in {', '.join(names)}"
            )
        return key

    def map_test(
        self,
        test: dict[str, Any],
        port: PortPlan,
        ports: dict[str, PortPlan],
        names: list[str],
        not_null: set[str],
        unique: set[str],
        key_candidates: list[list[str]],
        rules: list[dict[str, Any]],
    ) -> None:
        """One dbt test of the port: a column property, a key, a quality rule, or a warning."""
        meta = test.get("test_metadata") or {}
        kind, namespace = meta.get("name"), meta.get("namespace")
        kwargs = meta.get("kwargs") or {}
        column = test.get("column_name") or kwargs.get("column_name")
        config = test.get("config") or {}
        conditional = bool(config.get("where")) or config.get("limit") is not None
        severity = _severity(test)
        depends = test.get("depends_on", {}).get("nodes", [])
        label = f"{kind or test['name']} on {port.model}" + (f".{column}" if column else "")
        plain = not conditional and namespace in (None, "dbt") and column in names
        if plain and kind == "not_null" and severity == "error":
            not_null.add(column)
            return
        if plain and kind == "unique" and severity == "error":
            unique.add(column)
            return
        if plain and kind == "accepted_values":
            values = kwargs.get("values") or []
            if values and all(isinstance(v, str | int) and not isinstance(v, bool) for v in values):
                rules.append(
                    FlowMap(type="accepted_values", column=column, values=Flow(values), **_sev(severity))
                )
                return
        if not conditional and kind == "accepted_range" and column in names and kwargs.get("inclusive", True):
            bounds = {k: kwargs[f"{k}_value"] for k in ("min", "max") if kwargs.get(f"{k}_value") is not None}
            if bounds:
                rules.append(FlowMap(type="range", column=column, **bounds, **_sev(severity)))
                return
        if kind == "unique_combination_of_columns" and not conditional:
            combination = kwargs.get("combination_of_columns") or []
            if combination and all(c in names for c in combination):
                key_candidates.append(list(combination))
                return
        if kind == "relationships" and not conditional and column in names:
            targets = [d for d in depends if d != port.uid]
            target = ports.get(targets[0]) if len(targets) == 1 else None
            if target is not None and target is not port:
                field_name = str(kwargs.get("field") or column)
                rules.append(
                    FlowMap(
                        type="references",
                        column=column,
                        port=f"{self.domain}.{target.product}",
                        to_column=field_name,
                        **_sev(severity),
                    )
                )
                if target.product not in port.inputs:
                    port.inputs.append(target.product)
                return
        if depends == [port.uid]:
            query = _this_sql(test, self.project.models[port.uid])
            if query is not None:
                taken = {r.get("name") for r in rules}
                name = suggest_identifier(f"{kind or 'test'}__{column or 'table'}")[:63]
                while name in taken:
                    name = (name[:60] + "_2")[:63]
                rules.append(
                    {
                        "type": "sql",
                        "name": name,
                        "description": f"From the dbt test {test['name']}.",
                        "query": query,
                        **_sev(severity),
                    }
                )
                return
        self.warnings.append(
            f"the dbt test {label} is not carried over (it reads other models); add it as a quality rule "
            "(type: sql) in the product's spec if it still matters"
        )


def _constraints(node: dict[str, Any], yaml_columns: dict[str, Any]) -> tuple[set[str], list[list[str]]]:
    """Not-null columns and key candidates from the model's constraints (a primary key first)."""
    not_null: set[str] = set()
    key_candidates: list[list[str]] = []
    for name, column in yaml_columns.items():
        for constraint in column.get("constraints") or []:
            if constraint.get("type") == "not_null":
                not_null.add(name)
            if constraint.get("type") == "primary_key":
                key_candidates.insert(0, [name])
    for constraint in node.get("constraints") or []:
        if constraint.get("type") == "primary_key" and constraint.get("columns"):
            key_candidates.insert(0, list(constraint["columns"]))
    return not_null, key_candidates


def _describe_column(
    column: dict[str, Any],
    props: dict[str, Any],
    port: PortPlan,
    not_null: set[str],
    unique: set[str],
    key: list[str],
) -> None:
    """A column's nullability, uniqueness, PII flag and description, from the tests, key and YAML."""
    name = column["name"]
    description = (props.get("description") or "").strip()
    if name in not_null or name in key:
        column["nullable"] = False  # nullable is the default; specs state only `false`
    if name in unique or key == [name]:
        column["unique"] = True
    meta = node_meta(props)
    if meta.get("pii") or meta.get("contains_pii") or (meta.get("mesh") or {}).get("pii"):
        column["pii"] = True
    column["description"] = (
        description if len(description) >= 3 else f"`{name}` of the dbt model {port.model}."
    )
    if "widened" in column:
        column["description"] += (
            f" The model returns DuckDB's {column.pop('widened')} (a sum of integers); the port "
            "publishes it as decimal(38,0), Snowflake's type for the same sum."
        )


def _sev(severity: str) -> dict[str, str]:
    return {"severity": "warn"} if severity == "warn" else {}


def _ordered(column: dict[str, Any]) -> dict[str, Any]:
    order = ["name", "type", "precision", "scale", "nullable", "unique", "pii", "description"]
    return {k: column[k] for k in order if k in column}
