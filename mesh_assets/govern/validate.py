"""`mesh validate`: every check the platform can make without running anything, all errors at once.

On top of the registry's spec validation (fields, names, input ports, versions, back doors, cycles,
retired ports), it renders every SQL model (a reference to an undeclared port or another product's
internal is a back door), parses the SQL of every product (dbt's compiled code included) for back doors
(`backdoors`), refuses what product code reads outside its declared relations (`code_access`: table
functions, statements, undeclared names; `python_access`: files and connections), checks access policies
(`access.policy_issues`), and checks that generated artifacts (the dbt contracts, the JSON Schema) have not
drifted from the specs.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mesh_assets.assets.builders import sql as sql_builder
from mesh_assets.assets.dbt_contracts import generated_drift
from mesh_assets.govern import access_lint, backdoors, code_access, python_access
from mesh_assets.product import access, kinds
from mesh_assets.product import spec as spec_module
from mesh_assets.product.errors import MeshSpecError, SpecIssue
from mesh_assets.product.registry import HasIssues, Registry, load_registry
from mesh_assets.product.spec import ExpectationRule, SqlRule

SCHEMA_PATH = Path(__file__).parent.parent / "schemas" / "dataproduct.schema.json"
AGREEMENT_SCHEMA_PATH = SCHEMA_PATH.with_name("agreement.schema.json")


@dataclass
class Report(HasIssues):
    """The outcome of validating the mesh."""

    registry: Registry
    issues: list[SpecIssue]

    def summary(self) -> str:
        """One line: what was validated and how it went."""
        products = self.registry.products.values()
        ports = sum(len(p.spec.output_ports) for p in products)
        domains = len({p.spec.domain for p in products})
        return (
            f"{len(self.registry.products)} products, {ports} output ports in {domains} domains: "
            f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        )

    def to_json(self) -> str:
        """Machine-readable result, for CI."""
        return json.dumps(
            {
                "valid": not self.errors,
                "summary": self.summary(),
                "issues": [
                    {
                        "severity": i.severity,
                        "file": str(i.file),
                        "field": i.field,
                        "message": i.message,
                        "fix": i.fix,
                    }
                    for i in self.issues
                ],
            },
            indent=2,
        )


def schema_text() -> str:
    """The JSON Schema file's content, as generated from the spec models."""
    return json.dumps(spec_module.json_schema(), indent=2) + "\n"


def schema_texts() -> dict[Path, str]:
    """Every shipped JSON Schema (the spec's, the agreement file's, the mesh access policy's and the
    directory's) and its content as generated from the models."""
    from mesh_assets.product import agreement
    from mesh_assets.product.access_rules import MeshAccessPolicy
    from mesh_assets.product.directory import Directory

    def governance(model: type, name: str, title: str) -> str:
        schema = model.model_json_schema()
        schema |= {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title}
        schema["$id"] = f"https://mesh.dev/schemas/{name}"
        return json.dumps(schema, indent=2) + "\n"

    return {
        SCHEMA_PATH: schema_text(),
        AGREEMENT_SCHEMA_PATH: json.dumps(agreement.json_schema(), indent=2) + "\n",
        SCHEMA_PATH.with_name("access_policy.schema.json"): governance(
            MeshAccessPolicy, "access_policy.schema.json", "mesh access policy"
        ),
        SCHEMA_PATH.with_name("directory.schema.json"): governance(
            Directory, "directory.schema.json", "mesh directory"
        ),
    }


def sql_rule_problem(query: str, columns: set[str]) -> str | None:
    """Why a custom SQL rule cannot run (does not parse, not a SELECT, unknown columns), or None."""
    import sqlglot
    from sqlglot import exp

    rendered = query.replace("{{ this }}", "port_batch").replace("{{this}}", "port_batch")
    try:
        tree = sqlglot.parse_one(rendered, read="duckdb")
    except sqlglot.errors.ParseError as exc:
        return f"the query does not parse: {str(exc).splitlines()[0]}"
    if not isinstance(tree, exp.Query):
        return "the query is not a SELECT"
    aliases = {a.alias for a in tree.find_all(exp.Alias)}
    unknown = sorted(
        {c.name for c in tree.find_all(exp.Column) if not c.table and c.name not in columns | aliases}
    )
    if unknown:
        return f"the query names column(s) {', '.join(unknown)}, not in the port's columns"
    return None


SQL_RULE_FIX = "write a SELECT over {{ this }} using the port's columns, in DuckDB's dialect"


def _sql_rule_issues(registry: Registry) -> list[SpecIssue]:
    """Custom SQL rules that would fail at 3 a.m.: caught at validate time instead."""
    issues = []
    for product in registry.products.values():
        for p_index, port in enumerate(product.spec.output_ports):
            names = {c.name for c in port.columns}
            for r_index, rule in enumerate(port.quality.rules):
                if isinstance(rule, SqlRule):
                    problem = sql_rule_problem(rule.query, names)
                    if problem:
                        issues.append(
                            SpecIssue(
                                product.path,
                                f"output_ports[{p_index}].quality.rules[{r_index}].query",
                                problem,
                                SQL_RULE_FIX,
                            )
                        )
    return issues


EXPECTATION_VERDICTS = "expectation_verdicts.json"
"""great-expectations' verdicts on declared expectations, kept in `verdict_cache_dir()`."""


def verdict_cache_dir() -> Path:
    """Where GX verdicts are cached: beside the installed great-expectations (`<sys.prefix>/var/cache/mesh`).

    They are facts about the installed library, not about a repository or an environment, so they live
    with the interpreter's packages (never in a working copy, whose `data/` the tests keep clean).
    """
    return Path(sys.prefix) / "var" / "cache" / "mesh"


def _gx_verdict(expectation: str, kwargs: dict[str, Any]) -> dict[str, str] | None:
    """What great-expectations says of one expectation: None if it accepts it, else field and message."""
    from mesh_assets.quality.expectations import class_name, expectation_class

    cls = expectation_class(expectation)
    if cls is None:
        return {
            "field": "expectation",
            "message": f"great-expectations has no expectation '{expectation}' ({class_name(expectation)})",
            "fix": "use one from the great-expectations gallery, e.g. expect_column_values_to_be_between",
        }
    try:
        cls(**kwargs)
    except Exception as exc:  # GX raises pydantic and its own errors for bad arguments
        return {
            "field": "kwargs",
            "message": f"{expectation} refuses its arguments: {str(exc).splitlines()[0]}",
            "fix": "fix the arguments as great-expectations documents them",
        }
    return None


def _gx_verdicts(wanted: list[tuple[str, dict[str, Any]]]) -> list[dict[str, str] | None]:
    """great-expectations' verdict on each `(expectation, kwargs)`, cached per installed GX version.

    Importing great-expectations takes about 4 s, three quarters of `mesh validate` on the example mesh;
    its verdict on an expectation depends only on its version, the name and the arguments, so verdicts
    are cached and GX is imported only for an expectation (or a GX version) not seen before.
    """
    import importlib.metadata

    try:
        version = importlib.metadata.version("great_expectations")
    except importlib.metadata.PackageNotFoundError:
        version = "absent"
    keys = [json.dumps([version, name, kwargs], sort_keys=True, default=str) for name, kwargs in wanted]
    path = verdict_cache_dir() / EXPECTATION_VERDICTS
    try:
        cached = json.loads(path.read_text())
        cached = cached if isinstance(cached, dict) else {}
    except (OSError, ValueError):
        cached = {}
    missing = [(key, item) for key, item in zip(keys, wanted, strict=True) if key not in cached]
    if missing:
        cached.update({key: _gx_verdict(name, kwargs) for key, (name, kwargs) in missing})
        try:  # written atomically: a concurrent validate reads the old file or the new one
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            partial.write_text(json.dumps(cached, indent=0, sort_keys=True))
            os.replace(partial, path)
        except OSError:
            pass  # a read-only installation only costs the next validate the import
    return [cached[key] for key in keys]


def _expectation_issues(registry: Registry) -> list[SpecIssue]:
    """Expectations great-expectations does not know, or whose arguments it refuses."""
    declared = [
        (product, p_index, r_index, rule)
        for product in registry.products.values()
        for p_index, port in enumerate(product.spec.output_ports)
        for r_index, rule in enumerate(port.quality.rules)
        if isinstance(rule, ExpectationRule)
    ]
    if not declared:
        return []  # great-expectations is consulted only when a spec uses it
    verdicts = _gx_verdicts([(rule.expectation, rule.kwargs) for *_, rule in declared])
    issues = []
    for (product, p_index, r_index, _), verdict in zip(declared, verdicts, strict=True):
        if verdict is not None:
            where = f"output_ports[{p_index}].quality.rules[{r_index}]"
            issues.append(
                SpecIssue(product.path, f"{where}.{verdict['field']}", verdict["message"], verdict["fix"])
            )
    return issues


def _lineage_issues(registry: Registry) -> list[SpecIssue]:
    """Declared lineage naming what the product does not read, and PII carried but not marked."""
    from mesh_assets.assets.column_lineage import declared_lineage_issues
    from mesh_assets.govern import pii_lineage

    found = [
        SpecIssue(product.path, field, message, fix)
        for product in registry.products.values()
        if any(p.lineage is not None for p in product.spec.output_ports)
        for field, message, fix in declared_lineage_issues(product, registry)
    ]
    return found + pii_lineage.issues(registry)


def validate(root: Path) -> Report:
    """Validate the whole mesh under `root`."""
    registry = load_registry(root)
    issues = list(registry.issues)
    for product in registry.products.values():
        kind = kinds.kind_of(product)
        if kind.templated_sql and not registry.errors:
            for model in kind.models(product.spec):
                if (product.folder / f"{model}.sql").exists():
                    try:
                        sql_builder.render(product, registry, model)
                    except MeshSpecError as exc:
                        issues += exc.issues
    projects = kinds.projects([p.spec for p in registry.products.values()])
    for project in projects:
        for generated in generated_drift(registry, project):
            issues.append(
                SpecIssue(
                    generated,
                    "",
                    "the dbt contracts are out of date with the product specs",
                    "run `mesh prepare` and commit the result",
                )
            )
    issues += _sql_rule_issues(registry)
    issues += _expectation_issues(registry)
    # What product code may read: SQL and dbt only declared relations, Python only its input frames.
    issues += code_access.lint(registry) + python_access.lint(registry)
    issues += access.policy_issues(registry)
    issues += access_lint.agreement_issues(root, registry)
    issues += backdoors.lint(registry)
    issues += _lineage_issues(registry)
    for path, text in schema_texts().items():
        if not path.exists() or path.read_text() != text:
            issues.append(
                SpecIssue(
                    path,
                    "",
                    "the JSON Schema is out of date with the spec models",
                    "run `mesh prepare` and commit the result",
                )
            )
    return Report(registry, issues)
