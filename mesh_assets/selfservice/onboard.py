"""`mesh new domain <name> --from-dbt <path>`: onboard an existing dbt project as a domain of the mesh.

The project is copied (or linked) under `dbt_projects/`, given the platform's `local`/`prod` profile, and
built once with `dbt build --empty` into a scratch DuckDB file: that parses it (a project that does not
parse is refused with dbt's own message) and reveals the exact column types every model returns. Then:

- the models the team marks public (`access: public`, or `config.meta.mesh.port: true`), or the
  `--port` selection, become output ports, one product each; every other model, seed and snapshot
  becomes an internal of the product whose port it feeds, so every asset key is
  `<domain>/<product>/...` and never collides with another domain's. A product reads another only
  through its port, so a model feeding several products (a shared staging model) is published as a
  product of its own, which they read;
- each port's contract comes from the dbt YAML and the built relation: columns in order with their
  types, descriptions and `meta.pii`; `not_null`/`unique` tests (under `tests:` or `data_tests:`) and
  constraints become nullability, uniqueness and the primary key; `accepted_values`, `accepted_range`
  and `relationships` to another port become quality rules; any other single-model test becomes a
  custom SQL rule from its compiled query, so no test is lost;
- what dbt does not know (owner team, steward, classification, freshness SLO) comes from flags, from
  the person running the command when it is a terminal, or from defaults (a dbt group's owner, git).

The port models' entries move out of the project's YAML into the product specs (the platform generates
their enforced contracts and tests into `models/_mesh_generated.yml`), and a model reading another
product's port model through `ref()` is pointed at the published port (`source('port_<domain>', ...)`)
instead of its unaudited candidate. In a linked project these edits land in the team's own files, and
are listed. Any refusal undoes every change, in a linked project too.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mesh_assets.product.versions import Semver
from mesh_assets.selfservice.changes import Changes, Scaffolded
from mesh_assets.selfservice.dbt_manifest import build_empty, relation_types
from mesh_assets.selfservice.errors import OnboardError
from mesh_assets.selfservice.governance_defaults import Governance, request_choices, resolve_governance
from mesh_assets.selfservice.onboard_plan import OnboardRequest, Plan, PortPlan
from mesh_assets.selfservice.port_derivation import plan_onboarding
from mesh_assets.selfservice.project_edits import QUOTING, edit_project, place_project, write_profile
from mesh_assets.selfservice.prompts import Asker, check_identifier
from mesh_assets.selfservice.spec_document import render_spec, spec_document
from mesh_assets.selfservice.workspace import create_domain, existing_domains
from mesh_assets.selfservice.yaml_style import Flow, FlowMap

__all__ = ["OnboardError", "OnboardRequest", "onboard", "plan_onboarding"]


@dataclass(frozen=True)
class _Placement:
    """Where the dbt project comes from and where it goes under `dbt_projects/`."""

    source: Path
    config: dict[str, Any]
    """The project's `dbt_project.yml`."""
    project: str
    target: Path
    in_place: bool
    """The project is already under `dbt_projects/` (and used by no product): onboarded where it is."""


def _check_request(root: Path, request: OnboardRequest) -> _Placement:
    """Refuse a domain that exists, a folder that is no dbt project, a taken project folder, a bad key."""
    from mesh_assets.product.registry import GOVERNANCE_DOMAIN, load_registry

    domain = request.domain
    check_identifier("domain", domain)
    if (
        domain == GOVERNANCE_DOMAIN
        or domain in existing_domains(root)
        or (root / "domains" / domain).exists()
    ):
        raise OnboardError(
            f"domain '{domain}' already exists; onboard the dbt project as a new domain (another name)"
        )
    source = request.path.expanduser().resolve()
    if not (source / "dbt_project.yml").is_file():
        raise OnboardError(f"{request.path} is not a dbt project: it has no dbt_project.yml")
    config = yaml.safe_load((source / "dbt_project.yml").read_text()) or {}
    project = request.project or domain
    check_identifier("dbt project", project)
    target = root / "dbt_projects" / project
    in_place = target.exists() and target.resolve() == source
    if in_place and any(
        getattr(p.spec.transformation, "project", None) == project
        for p in load_registry(root).products.values()
    ):
        raise OnboardError(f"dbt_projects/{project} already builds products; onboard another project")
    if (target.exists() or target.is_symlink()) and not in_place:
        raise OnboardError(f"dbt_projects/{project} already exists; pass --project <another name>")
    for key in request.primary_keys.values():
        for column in key:
            check_identifier("column", column)
    return _Placement(source, config, project, target, in_place)


def _place(placement: _Placement, request: OnboardRequest, changes: Changes) -> list[str]:
    """Copy or link the project under `dbt_projects/`, with the platform's profile and quoting."""
    target = placement.target
    if not placement.in_place:
        place_project(placement.source, target, request.link, changes)
    profile = str(placement.config.get("profile") or placement.config.get("name") or request.domain)
    notes = write_profile(target, profile, request.domain, request.link or placement.in_place, changes)
    project_file = target / "dbt_project.yml"
    if "quoting" not in (yaml.safe_load(project_file.read_text()) or {}):
        changes.write(project_file, project_file.read_text().rstrip("\n") + "\n" + QUOTING)
    changes.record(target / "dbt_packages")  # `dbt deps` may install them (into a linked project too)
    return notes


_ColumnTypes = dict[str, list[tuple[str, str]]]
"""`(column, DuckDB type)` of each built model, by unique id."""


def _build(target: Path, dbt_vars: dict[str, Any]) -> tuple[dict[str, Any], _ColumnTypes, str | None]:
    """`dbt build --empty` into a scratch DuckDB file: the manifest, each model's column types, dbt's
    message when some models did not build."""
    with tempfile.TemporaryDirectory(prefix="mesh-onboard-") as folder:
        scratch = Path(folder)
        manifest, build_problem = build_empty(target, scratch, dbt_vars)
        owned = [n for n in manifest["nodes"].values() if n.get("resource_type") == "model"]
        types = relation_types(scratch / "onboard.duckdb", owned)
    return manifest, types, build_problem


def _plan(
    manifest: dict[str, Any],
    types: _ColumnTypes,
    request: OnboardRequest,
    asker: Asker | None,
    build_problem: str | None,
) -> Plan:
    """The ports, products and internals to write; a refusal caused by dbt carries dbt's own words."""
    try:
        return plan_onboarding(manifest, types, request.domain, request, asker)
    except OnboardError as exc:
        if build_problem and "did not build on DuckDB" in str(exc):
            message = f"{exc}\ndbt's message when it built the project empty:\n{build_problem}"
            raise OnboardError(message, exc.exit_code) from exc
        raise


def _governance(root: Path, request: OnboardRequest, plan: Plan, asker: Asker | None) -> Governance:
    """Owner, steward, classification, status...: flags, else asked, else defaults (a dbt group's owner)."""
    from mesh_assets.product.registry import load_registry

    group = plan.group_owner
    pii = any(c.get("pii") for p in plan.ports for c in p.columns)
    return resolve_governance(
        root,
        load_registry(root),
        request.domain,
        **request_choices(request),
        default_classification="confidential" if pii else "internal",
        default_status="active",
        asker=asker,
        defaults={"team": group[0], "steward": group[1]} if group else None,
    )


def _write_domain(
    root: Path,
    placement: _Placement,
    request: OnboardRequest,
    manifest: dict[str, Any],
    plan: Plan,
    governance: Governance,
    changes: Changes,
) -> None:
    """Edit the project's YAML, create the domain, write each product's spec, generate the dbt contracts."""
    from mesh_assets.assets.dbt_contracts import generated_paths, prepare
    from mesh_assets.product.registry import load_registry

    domain, project, target = request.domain, placement.project, placement.target
    edit_project(target, manifest, plan, changes)
    name = placement.config.get("name", project)
    create_domain(root, domain, request.description or f"onboarded from the dbt project {name}", changes)
    for port in plan.ports:
        _write_spec(root, domain, project, port, plan, governance, changes)
    for written in [*generated_paths(target), target / "target", target / "logs"]:
        changes.record(written)  # in a linked project, undo what dbt writes too
    try:
        prepare(load_registry(root), project)
    except RuntimeError as exc:
        raise OnboardError(str(exc), exit_code=1) from exc


def _summary(domain: str, plan: Plan) -> list[str]:
    """One line per port made (model, columns, key, rules, internals, inputs), then the plan's warnings."""
    notes = [
        f"{domain}.{port.product}: port v{Semver.parse(port.version).major} from model {port.model} "
        f"({len(port.columns)} columns, key {', '.join(port.primary_key)}, {len(port.rules)} rule(s)); "
        f"internals: {', '.join(port.internals) or 'none'}"
        + (f"; reads {', '.join(port.inputs)}" if port.inputs else "")
        for port in plan.ports
    ]
    return notes + [f"warning: {w}" for w in plan.warnings]


def onboard(root: Path, request: OnboardRequest, asker: Asker | None = None) -> Scaffolded:
    """Onboard the dbt project at `request.path` as the new domain `request.domain`; or refuse."""
    root = root.resolve()
    placement = _check_request(root, request)
    changes = Changes(root)
    notes: list[str] = []
    try:
        notes += _place(placement, request, changes)
        manifest, types, build_problem = _build(placement.target, request.dbt_vars)
        if build_problem:
            notes.append(
                "some models did not build on DuckDB; their contracts use the YAML's data types:\n"
                + build_problem
            )
        plan = _plan(manifest, types, request, asker, build_problem)
        governance = _governance(root, request, plan, asker)
        _write_domain(root, placement, request, manifest, plan, governance, changes)
        notes += _settle(root, request.domain, placement.project, plan, governance, changes)
    except BaseException:
        changes.rollback()
        raise
    created, modified = changes.report()
    return Scaffolded(
        created=created,
        modified=modified,
        notes=notes + _summary(request.domain, plan),
        next_steps=["mesh validate", f"mesh run --domain {request.domain}"],
    )


def _write_spec(
    root: Path,
    domain: str,
    project: str,
    port: PortPlan,
    plan: Plan,
    governance: Governance,
    changes: Changes,
) -> None:
    folder = root / "domains" / domain / "products" / port.product
    major = Semver.parse(port.version).major
    purpose = (
        port.description
        if len(port.description) >= 10
        else (
            f"The {port.model} model of the {project} dbt project, published as a governed port of the "
            f"{domain} domain" + (f" ({port.why})." if port.why else ".")
        )
    )
    output: dict[str, Any] = {"version": port.version}
    if port.model != f"{port.product}_v{major}":
        output["model"] = port.model
    output["columns"] = port.columns
    output["primary_key"] = Flow(port.primary_key)
    if port.event_time:
        output["event_time"] = port.event_time
    output["quality"] = {"row_count": FlowMap({"min": 1}), "rules": port.rules}
    document = spec_document(
        name=port.product,
        domain=domain,
        title=port.title,
        purpose=purpose,
        usage=f"Read the published port {domain}.{port.product}_v{major}; one row per "
        f"{', '.join(port.primary_key)}.",
        limitations="The contract was derived from the dbt project's YAML and the model's column types when "
        "the project joined the mesh; the dbt YAML no longer describes this model, the spec does.",
        governance=governance,
        product_type="aggregate" if port.inputs else "source-aligned",
        tags=list(dict.fromkeys([domain.replace("_", "-"), *port.tags])),
        input_ports=[
            {
                "product": f"{domain}.{name}",
                "version": f"^{Semver.parse(next(p.version for p in plan.ports if p.product == name)).major}",
                "purpose": "Read by this product's dbt models or referenced by its rules.",
            }
            for name in port.inputs
        ],
        transformation={
            "kind": "dbt",
            "project": project,
            "internals": Flow(port.internals),
            **({"vars": FlowMap(plan.dbt_vars)} if plan.dbt_vars else {}),
        },
        output_ports=[output],
    )
    changes.write(folder / "dataproduct.yaml", render_spec(document, folder))


def _settle(
    root: Path, domain: str, project: str, plan: Plan, governance: Governance, changes: Changes
) -> list[str]:
    """Validate the new domain; drop custom SQL rules the platform refuses (saying so); refuse the rest."""
    from mesh_assets.govern.validate import validate
    from mesh_assets.selfservice.check import product_problems

    notes = []
    # `mesh validate`'s errors: the spec's own, and a custom SQL rule that would not run.
    errors = validate(root).errors
    for port in plan.ports:
        folder = (root / "domains" / domain / "products" / port.product).resolve()
        issues = [i for i in errors if i.file.resolve().parent == folder]
        rule_of = {i: re.match(r"output_ports\[0\]\.quality\.rules\[(\d+)\]", i.field) for i in issues}
        if issues and all(rule_of.values()):
            # A compiled dbt test the platform cannot run as a custom SQL rule: say so, keep the rest.
            dropped = {int(match[1]): issue for issue, match in rule_of.items() if match}
            for index, issue in sorted(dropped.items()):
                rule = port.rules[index]
                notes.append(
                    f"warning: {domain}.{port.product}: dropped rule {rule.get('name') or rule['type']} "
                    f"({issue.message}); add it back as a quality rule if it still matters"
                )
            port.rules = [r for index, r in enumerate(port.rules) if index not in dropped]
            _write_spec(root, domain, project, port, plan, governance, changes)
    problems = [
        p
        for found in product_problems(root, [f"{domain}.{p.product}" for p in plan.ports]).values()
        for p in found
    ]
    if problems:
        raise OnboardError(
            "the onboarded products do not validate:\n" + "\n".join(f"  - {p}" for p in problems), exit_code=1
        )
    return notes
