"""`mesh validate`: every check the platform can make without running anything, all errors at once.

On top of the registry's spec validation (fields, names, input ports, versions, back doors, cycles,
retired ports), it renders every SQL model (a reference to an undeclared port or another product's
internal is a back door), and checks that generated artifacts (the dbt contracts, the JSON Schema) have
not drifted from the specs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mesh_assets import spec as spec_module
from mesh_assets.builders import sql as sql_builder
from mesh_assets.dbt_contracts import GENERATED_FILE, generated_yaml
from mesh_assets.registry import HasIssues, MeshSpecError, Registry, SpecIssue, load_registry
from mesh_assets.spec import DbtTransformation, SqlTransformation

SCHEMA_PATH = Path(__file__).parent / "schemas" / "dataproduct.schema.json"


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
