"""`mesh new`: scaffold a domain's code location, or a data product that validates and builds at once.

A scaffolded product is complete from the first minute: every metamodel attribute is filled with a
sensible default (or a flag, or an answer when a person runs the command), the transformation really
runs, and a test checks it against the contract. Without input ports, a product starts from a small
self-contained `values` query (or, with `--source <system>.<extract>`, from a source extract); with
`--input`, from a query selecting the input ports' declared columns, joining further inputs by their key
where the first input carries it.

Everything written is recorded, so a refusal half-way (a dbt project that does not parse, say) leaves
the repository as it was. Nothing here reads the environment or imports heavy libraries at import time.

This module is the orchestration; the parts live beside it: `prompts` (answers and names),
`governance_defaults`, `contract_plan` (inputs and the starting contract), `templates` (the code, test
and dbt files), `spec_document` and `yaml_style` (the spec file), `workspace` (a domain's folder and
`workspace.yaml` entry), `changes` (what was written, to undo it) and `check` (what the tests call).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mesh_assets.product import kinds
from mesh_assets.product.registry import GOVERNANCE_DOMAIN, Registry, load_registry
from mesh_assets.product.spec import ProductType
from mesh_assets.selfservice.changes import Changes, Scaffolded
from mesh_assets.selfservice.check import check_product, product_problems
from mesh_assets.selfservice.contract_plan import (
    Contract,
    InputChoice,
    SourceChoice,
    plan_contract,
    resolve_input,
    resolve_source,
)
from mesh_assets.selfservice.errors import ScaffoldError
from mesh_assets.selfservice.governance_defaults import (
    CLASS_ORDER,
    humanize,
    request_choices,
    resolve_governance,
)
from mesh_assets.selfservice.prompts import Asker, answer, check_choice, check_identifier, check_text
from mesh_assets.selfservice.spec_document import render_spec, spec_document
from mesh_assets.selfservice.templates import (
    DBT_PROJECT,
    PYTHON_TEST_EXTRA,
    PYTHON_TEST_IMPORTS,
    PYTHON_TEST_IMPORTS_FULL,
    TEST_TEMPLATE,
    dbt_profiles,
    python_module,
    sample_frame_code,
    sql_model,
)
from mesh_assets.selfservice.workspace import create_domain, existing_domains
from mesh_assets.selfservice.yaml_style import Flow, FlowMap

# `check_product` stays importable from here: tests scaffolded before it moved to `check` import it so.
__all__ = [
    "KINDS",
    "ProductRequest",
    "ScaffoldError",
    "Scaffolded",
    "check_product",
    "new_domain",
    "new_product",
]

KINDS = tuple(kinds.KINDS)


def new_domain(root: Path, name: str, description: str | None = None) -> Scaffolded:
    """`mesh new domain <name>`: a code location ready for its first product."""
    root = root.resolve()
    changes = Changes(root)
    try:
        create_domain(root, name, description, changes)
    except BaseException:
        changes.rollback()
        raise
    created, modified = changes.report()
    return Scaffolded(
        created=created,
        modified=modified,
        notes=[
            f"The code location '{name}' loads once it holds a product (a domain without products is "
            "refused at load)."
        ],
        next_steps=[
            f"mesh new product {name} <product> [--kind sql|python|dbt] [--input <domain>.<product>]"
        ],
    )


# --------------------------------------------------------------------------------------------------
# Products: inputs and the contract they start from
# --------------------------------------------------------------------------------------------------


@dataclass
class ProductRequest:
    """Everything `mesh new product` can be told; `None` means: ask, or use the default."""

    domain: str
    name: str
    kind: str = "sql"
    inputs: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    primary_key: list[str] = field(default_factory=list)
    title: str | None = None
    description: str | None = None
    usage: str | None = None
    limitations: str | None = None
    owner_team: str | None = None
    steward: str | None = None
    classification: str | None = None
    product_type: str | None = None
    status: str | None = None
    freshness: str | None = None
    support_channel: str | None = None
    business_capability: str | None = None
    allowed_roles: list[str] | None = None
    tags: list[str] = field(default_factory=list)
    project: str | None = None


def _model_dirs(project_dir: Path) -> list[Path]:
    config = yaml.safe_load((project_dir / "dbt_project.yml").read_text()) or {}
    return [project_dir / p for p in config.get("model-paths") or ["models"]]


def _choose_project(root: Path, registry: Registry, request: ProductRequest) -> str:
    from mesh_assets.assets.dbt_contracts import products_of_project

    if request.project is not None:
        check_identifier("dbt project", request.project)
        project = request.project
    else:
        used = kinds.projects([p.spec for p in registry.domain_products(request.domain)])
        project = used[0] if used else request.domain
    others = sorted({p.spec.domain for p in products_of_project(registry, project)} - {request.domain})
    if others:
        # A project's profile writes to one domain's schemas: two domains cannot share it.
        raise ScaffoldError(
            f"dbt project '{project}' builds products of domain(s) {', '.join(others)}; a dbt project "
            f"serves one domain: pass --project {request.domain} (or another new name)"
        )
    folder = root / "dbt_projects" / project
    if folder.exists() and not (folder / "dbt_project.yml").exists():
        raise ScaffoldError(f"dbt_projects/{project} exists but is not a dbt project (no dbt_project.yml)")
    return project


# --------------------------------------------------------------------------------------------------
# new product
# --------------------------------------------------------------------------------------------------


@dataclass
class _Draft:
    """A new product as it is being put together, step by step: what each step needs from the last."""

    root: Path
    request: ProductRequest
    registry: Registry
    folder: Path
    kind: kinds.TransformationKind
    inputs: list[InputChoice] = field(default_factory=list)
    sources: list[SourceChoice] = field(default_factory=list)
    contract: Contract | None = None
    title: str = ""
    purpose: str = ""
    project: str = ""

    @property
    def key(self) -> str:
        return f"{self.request.domain}.{self.request.name}"

    @property
    def model(self) -> str:
        return f"{self.request.name}_v1"

    @property
    def planned(self) -> Contract:
        assert self.contract is not None, "the contract is planned before the spec is written"
        return self.contract


def new_product(root: Path, request: ProductRequest, asker: Asker | None = None) -> Scaffolded:
    """`mesh new product`: a complete spec, a transformation that runs, and a test; or a refusal."""
    draft = _check_request(root.resolve(), request)
    _plan_reads(draft)
    spec_text = _spec_text(draft, asker)
    changes = Changes(draft.root)
    try:
        notes = _write_product(draft, spec_text, changes)
        _refuse_invalid(draft)
    except BaseException:
        changes.rollback()
        raise
    created, modified = changes.report()
    return Scaffolded(
        created=created,
        modified=modified,
        notes=notes + _contract_notes(draft.planned),
        next_steps=_next_steps(draft),
    )


def _check_request(root: Path, request: ProductRequest) -> _Draft:
    """The request's names, kind and key checked against the mesh, before anything is asked or planned."""
    domain, name = request.domain, request.name
    domains = existing_domains(root)
    if domain not in domains:
        close = difflib.get_close_matches(domain, domains, n=1)
        hint = f"did you mean '{close[0]}'? Or create it" if close else "create it"
        raise ScaffoldError(f"no domain '{domain}'; {hint} with `mesh new domain {domain}`")
    if domain == GOVERNANCE_DOMAIN:
        raise ScaffoldError(f"'{GOVERNANCE_DOMAIN}' is the governance location; it holds no products")
    check_identifier("product", name)
    if request.kind not in KINDS:
        raise ScaffoldError(f"--kind {request.kind}: use one of {', '.join(KINDS)}")
    folder = root / "domains" / domain / "products" / name
    registry = load_registry(root)
    if f"{domain}.{name}" in registry.products or folder.exists():
        raise ScaffoldError(
            f"product '{domain}.{name}' already exists ({folder.relative_to(root)}); pick another name, or "
            "add a major version to its spec (output_ports)"
        )
    for key in request.primary_key:
        check_identifier("column", key)
    return _Draft(root, request, registry, folder, kinds.kind_of(request.kind))


def _plan_reads(draft: _Draft) -> None:
    """The input ports and source extracts it reads, and the contract they start it from."""
    from mesh_assets.infra import environment

    request = draft.request
    draft.inputs = [resolve_input(draft.registry, reference, draft.key) for reference in request.inputs]
    seen = [i.reference for i in draft.inputs]
    twice = sorted({r for r in seen if seen.count(r) > 1})
    if twice:
        raise ScaffoldError(f"--input {', '.join(twice)} given twice; declare each input once")
    sources_dir = environment.resolve().sources_dir if request.sources else Path()
    draft.sources = [resolve_source(s, sources_dir) for s in dict.fromkeys(request.sources)]
    draft.contract = plan_contract(request.kind, draft.inputs, draft.sources, request.primary_key)


def _spec_text(draft: _Draft, asker: Asker | None) -> str:
    """The spec file: governance and description answered (or defaulted), then every section filled."""
    request, inputs, contract = draft.request, draft.inputs, draft.planned
    domain, name = request.domain, request.name
    input_classes = [i.producer.spec.classification.value for i in inputs]
    floor = "confidential" if contract.pii else "internal"
    governance = resolve_governance(
        draft.root,
        draft.registry,
        domain,
        **request_choices(request),
        default_classification=max([floor, *input_classes], key=CLASS_ORDER.index),
        default_status="draft",
        asker=asker,
    )
    draft.title = request.title or humanize(name)
    read = [i.reference for i in inputs] + [s.source for s in draft.sources]
    purpose_default = (
        f"{draft.title}, built from {', '.join(read)} for the {domain} domain."
        if read
        else f"{draft.title}: a data product of the {domain} domain, starting from sample rows."
    )
    draft.purpose = answer(
        request.description,
        label="Purpose (what the product is for)",
        flag="--description",
        default=purpose_default,
        asker=asker,
        check=check_text(10),
    )
    key_text = ", ".join(contract.primary_key)
    usage = request.usage or (
        f"Read the published port {domain}.{name}_v1 (asset {domain}/{name}/v1); one row per {key_text}."
    )
    limitations = request.limitations or (
        "A new product: its contract may still change while it is a draft."
        if governance.status == "draft"
        else "Holds what its inputs held at the last publish."
    )
    check_text(10)(usage)
    check_text(3)(limitations)
    product_type = request.product_type or (
        ProductType.AGGREGATE.value if inputs else ProductType.SOURCE_ALIGNED.value
    )
    check_choice([t.value for t in ProductType])(product_type)
    for tag in request.tags:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", tag):
            raise ScaffoldError(f"--tag {tag}: tags are lowercase letters, digits, '-' or '_'")
    document = spec_document(
        name=name,
        domain=domain,
        title=draft.title,
        purpose=draft.purpose,
        usage=usage,
        limitations=limitations,
        governance=governance,
        product_type=product_type,
        tags=list(dict.fromkeys([domain.replace("_", "-"), *request.tags])),
        input_ports=_input_ports(draft),
        transformation=_transformation(draft),
        output_ports=[_output_port(contract)],
    )
    return render_spec(document, draft.folder)


def _input_ports(draft: _Draft) -> list[dict[str, Any]]:
    input_ports: list[dict[str, Any]] = [dict(i.entry) for i in draft.inputs]
    for source in draft.sources:
        input_ports.append(
            {
                "source": source.source,
                "format": source.file_format,
                "description": f"The {source.source} extract.",
            }
        )
    return input_ports


def _transformation(draft: _Draft) -> dict[str, Any]:
    """The spec's `transformation`: the kind's starting fields (a shared project chosen first)."""
    transformation: dict[str, Any] = {"kind": draft.kind.name}
    if draft.kind.shared_project:
        draft.project = _choose_project(draft.root, draft.registry, draft.request)
        transformation["project"] = draft.project
    for field_name, value in draft.kind.scaffold_fields.items():
        transformation[field_name] = Flow(list(value)) if isinstance(value, list) else value
    return transformation


def _output_port(contract: Contract) -> dict[str, Any]:
    quality: dict[str, Any] = {"row_count": FlowMap({"min": 1})}
    quality["rules"] = contract.rules
    port: dict[str, Any] = {
        "version": "1.0.0",
        "columns": [FlowMap(c) for c in contract.columns],
        "primary_key": Flow(contract.primary_key),
    }
    if contract.event_time:
        port["event_time"] = contract.event_time
    port["quality"] = quality
    return port


def _write_product(draft: _Draft, spec_text: str, changes: Changes) -> list[str]:
    """The spec, the kind's code, the test, and (for a shared project) its generated contracts."""
    changes.write(draft.folder / "dataproduct.yaml", spec_text)
    write_code, test_extra = _CODE_WRITERS[draft.kind.scaffold_template]
    notes = write_code(draft, changes)
    _write_test(draft, test_extra, changes)
    if draft.kind.needs_prepare:
        from mesh_assets.assets.dbt_contracts import generated_paths, prepare

        project_dir = draft.root / kinds.DBT_PROJECTS / draft.project
        for written in [*generated_paths(project_dir), project_dir / "target", project_dir / "logs"]:
            changes.record(written)
        try:
            prepare(load_registry(draft.root), draft.project)
        except RuntimeError as exc:
            raise ScaffoldError(str(exc), exit_code=1) from exc
    return notes


def _refuse_invalid(draft: _Draft) -> None:
    problems = product_problems(draft.root, [draft.key])[draft.key]
    if problems:
        raise ScaffoldError(
            "the product would not validate, so nothing was written:\n"
            + "\n".join(f"  - {p}" for p in problems),
            exit_code=1,
        )


def _contract_notes(contract: Contract) -> list[str]:
    """What the planned contract joined, left out, and why."""
    notes = []
    for choice, key, added in contract.joins:
        notes.append(f"joined {choice.reference} on {', '.join(key)} (adds {len(added)} column(s))")
    for choice in contract.unjoined:
        ref = choice.reference if isinstance(choice, InputChoice) else choice.source
        notes.append(f"{ref} is declared but not joined: its key is not a column of the first input")
    if contract.dropped_pii:
        notes.append(
            f"left out PII column(s) {', '.join(contract.dropped_pii)}: this product would read them masked "
            "unless their owner approves an agreement granting PII in clear (`mesh access request --pii`)"
        )
    return notes


def _next_steps(draft: _Draft) -> list[str]:
    domain, name = draft.request.domain, draft.request.name
    where = f"domains/{domain}/tests/test_{name}.py"
    steps = ["mesh validate", f"mesh run --domain {domain}", f"pytest {where}"]
    upstream = sorted({i.producer.spec.domain for i in draft.inputs} - {domain})
    if upstream:
        steps[1] = "mesh run " + " ".join(f"--domain {d}" for d in [*upstream, domain])
    return steps


def _write_sql_model(draft: _Draft, changes: Changes) -> list[str]:
    code = sql_model(draft.key, 1, draft.title, draft.planned, draft.kind.name)
    changes.write(draft.folder / f"{draft.model}.sql", code)
    return []


def _write_python_module(draft: _Draft, changes: Changes) -> list[str]:
    module = str(draft.kind.scaffold_fields["module"])
    code = python_module(draft.key, draft.model, draft.title, draft.purpose, draft.planned)
    changes.write(draft.folder / module, code)
    return []


def _write_dbt(draft: _Draft, changes: Changes) -> list[str]:
    request = draft.request
    return _write_dbt_model(
        draft.root,
        draft.project,
        request.domain,
        request.name,
        draft.model,
        draft.title,
        draft.planned,
        changes,
    )


def _python_test(draft: _Draft, text: str) -> str:
    """The test of a Python product also calls its function on sample frames."""
    domain, name, contract = draft.request.domain, draft.request.name, draft.planned
    imports = PYTHON_TEST_IMPORTS_FULL
    if contract.base is None:
        imports = imports.replace("import pandas as pd\n\n", "")  # no hand-made inputs to build
    text = text.replace(PYTHON_TEST_IMPORTS, imports)
    return text + PYTHON_TEST_EXTRA.format(
        key=draft.key, domain=domain, name=name, function=draft.model, inputs=sample_frame_code(contract)
    )


CodeWriter = Callable[[_Draft, Changes], list[str]]
TestExtra = Callable[[_Draft, str], str]
_CODE_WRITERS: dict[str, tuple[CodeWriter, TestExtra | None]] = {
    "sql_model": (_write_sql_model, None),
    "python_module": (_write_python_module, _python_test),
    "dbt_model": (_write_dbt, None),
}
"""What each kind's `scaffold_template` writes (its code, and what its test adds), with notes."""


def _write_dbt_model(
    root: Path,
    project: str,
    domain: str,
    name: str,
    model: str,
    title: str,
    contract: Contract,
    changes: Changes,
) -> list[str]:
    project_dir = root / "dbt_projects" / project
    notes = []
    if not (project_dir / "dbt_project.yml").exists():
        changes.write(project_dir / "dbt_project.yml", DBT_PROJECT.format(domain=domain, project=project))
        changes.write(project_dir / "profiles.yml", dbt_profiles(project, domain))
        notes.append(f"created the dbt project dbt_projects/{project} (targets local and prod)")
    model_dirs = _model_dirs(project_dir)
    clash = [p for d in model_dirs if d.exists() for p in d.rglob(f"{model}.sql")]
    if clash:
        raise ScaffoldError(f"dbt model {model} already exists ({clash[0]}); pick another product name")
    changes.write(
        model_dirs[0] / name / f"{model}.sql", sql_model(f"{domain}.{name}", 1, title, contract, "dbt")
    )
    return notes


def _write_test(draft: _Draft, extra: TestExtra | None, changes: Changes) -> None:
    root, domain, name = draft.root, draft.request.domain, draft.request.name
    tests = root / "domains" / domain / "tests"
    if not (tests / "__init__.py").exists():
        # A package, so same-named test files of two domains never collide under pytest.
        changes.write(tests / "__init__.py", "")
    path = tests / f"test_{name}.py"
    text = TEST_TEMPLATE.format(
        key=f"{domain}.{name}", name=name, domain=domain, test_path=path.relative_to(root)
    )
    if extra is not None:
        text = extra(draft, text)
    changes.write(path, text)
