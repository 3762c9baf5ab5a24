"""`mesh validate`: every check the platform can make without running anything, all errors at once.

On top of the registry's spec validation (fields, names, input ports, versions, back doors, cycles,
retired ports), it renders every SQL model (a reference to an undeclared port or another product's
internal is a back door), parses the SQL of every product (dbt's compiled code included) for back doors
(`backdoors`), checks access policies (`access.policy_issues`), and checks that generated artifacts (the
dbt contracts, the JSON Schema) have not drifted from the specs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mesh_assets.build.builders import sql as sql_builder
from mesh_assets.build.dbt_contracts import GENERATED_FILE, generated_yaml
from mesh_assets.govern import backdoors
from mesh_assets.product import access
from mesh_assets.product import spec as spec_module
from mesh_assets.product.errors import MeshSpecError, SpecIssue
from mesh_assets.product.registry import HasIssues, Registry, load_registry
from mesh_assets.product.spec import DbtTransformation, ExpectationRule, SqlRule, SqlTransformation

SCHEMA_PATH = Path(__file__).parent.parent / "schemas" / "dataproduct.schema.json"


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
        return []  # great-expectations is imported only when a spec uses it
    from mesh_assets.build.expectations import class_name, expectation_class

    issues = []
    for product, p_index, r_index, rule in declared:
        where = f"output_ports[{p_index}].quality.rules[{r_index}]"
        cls = expectation_class(rule.expectation)
        if cls is None:
            issues.append(
                SpecIssue(
                    product.path,
                    f"{where}.expectation",
                    f"great-expectations has no expectation '{rule.expectation}' "
                    f"({class_name(rule.expectation)})",
                    "use one from the great-expectations gallery, e.g. expect_column_values_to_be_between",
                )
            )
            continue
        try:
            cls(**rule.kwargs)
        except Exception as exc:  # GX raises pydantic and its own errors for bad arguments
            issues.append(
                SpecIssue(
                    product.path,
                    f"{where}.kwargs",
                    f"{rule.expectation} refuses its arguments: {str(exc).splitlines()[0]}",
                    "fix the arguments as great-expectations documents them",
                )
            )
    return issues


def validate(root: Path) -> Report:
    """Validate the whole mesh under `root`."""
    registry = load_registry(root)
    issues = list(registry.issues)
    for product in registry.products.values():
        transformation = product.spec.transformation
        if isinstance(transformation, SqlTransformation) and not registry.errors:
            models = [
                *transformation.internals,
                *(product.spec.port_model(p) for p in product.spec.output_ports),
            ]
            for model in dict.fromkeys(models):
                if (product.folder / f"{model}.sql").exists():
                    try:
                        sql_builder.render(product, registry, model)
                    except MeshSpecError as exc:
                        issues += exc.issues
    projects = sorted(
        {
            p.spec.transformation.project
            for p in registry.products.values()
            if isinstance(p.spec.transformation, DbtTransformation)
        }
    )
    for project in projects:
        generated = root / "dbt_projects" / project / GENERATED_FILE
        if not generated.exists() or generated.read_text() != generated_yaml(registry, project):
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
    issues += access.policy_issues(registry)
    issues += backdoors.lint(registry)
    if not SCHEMA_PATH.exists() or SCHEMA_PATH.read_text() != schema_text():
        issues.append(
            SpecIssue(
                SCHEMA_PATH,
                "",
                "the JSON Schema is out of date with the spec models",
                "run `mesh prepare` and commit the result",
            )
        )
    return Report(registry, issues)
