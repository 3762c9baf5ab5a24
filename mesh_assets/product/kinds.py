"""Transformation kinds: everything the platform asks about how a product is built, answered in one place.

A product's `transformation` is one of the spec's kinds (`sql`, `python`, `dbt`). The wings above ask
the same questions of every kind: which models and code files a product of the kind has, whether its
code is SQL the platform can read (column lineage, the back-door lint), how its code reads a port or a
source, what the catalog calls it, what `mesh new product` writes for it. Each kind answers them here, so
no module decides a kind by comparing names: a new kind is one `TransformationKind` added to `KINDS`
(with its spec model in the spec's `Transformation` union, and its builder in `assets.builders`).

Only data and small pure functions: this is the lowest wing (it imports the spec and addresses, nothing
that runs code or reads the warehouse).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar, cast

from mesh_assets.product import addressing
from mesh_assets.product.spec import (
    DataProductSpec,
    DbtTransformation,
    PythonTransformation,
    SpecModel,
    SqlTransformation,
)

Model = TypeVar("Model", bound=SpecModel)

DBT_PROJECTS = "dbt_projects"
"""The folder, under the mesh root, of the dbt projects dbt products are built in."""


@dataclass(frozen=True)
class TransformationKind:
    """One way a product is built, and what the platform needs to know about it.

    The base answers for a kind whose code lives in its product folder and has no internals; the kinds
    below override what differs.
    """

    name: str
    """The spec's `transformation.kind`."""
    model: type[SpecModel]
    """The spec model of the kind's `transformation`."""
    sql_code: bool
    """Its code is SQL the platform reads: column lineage from the code, the back-door lint."""
    scaffold_template: str
    """What `mesh new product --kind <name>` writes as the product's code (`selfservice.scaffold`)."""
    scaffold_fields: Mapping[str, Any] = field(default_factory=dict)
    """The `transformation` fields of a new product's spec, besides `kind` (a dbt project is chosen)."""
    shared_project: bool = False
    """Its products are built in a shared project under `dbt_projects/` (`project`), which `mesh new
    product` chooses or creates."""
    templated_sql: bool = False
    """Its models are `<model>.sql` files in the product folder that the platform renders (`input()`,
    `source()`, `ref()`): `mesh validate` renders them, and a port named by its table is refused."""
    compiled_by_tool: bool = False
    """Its SQL is compiled by its own tool (dbt): names may carry a database, seeds are its own."""
    needs_prepare: bool = False
    """Reading a new input port needs `mesh prepare` first (it writes the dbt sources)."""
    decimals_as_double: bool = False
    """pandas reads decimals as floats: a new product of the kind publishes them as doubles."""
    reads_bindings: bool = False
    """Its code reads its inputs in the platform's Python, outside the warehouse's isolated session, so an
    input may be read through the port's Iceberg binding (`via: iceberg`)."""
    dry_run: bool = True
    """`check_product` (what a product's tests call) builds it once in an in-memory DuckDB; a dbt
    product is built by dbt itself, in `mesh run`."""
    port_read_hint: str = "{{ input('<domain>.<product>') }}"
    """How its code reads a port, with placeholders (for a fix that does not know the port yet)."""
    source_read_hint: str = "{{ source('<system>.<extract>') }}"
    """How its code reads a landed source extract, with placeholders."""

    def internals(self, spec: DataProductSpec) -> list[str]:
        """The product's internal models, in build order."""
        return []

    def models(self, spec: DataProductSpec) -> list[str]:
        """Every model (or function) of the product: internals first, then the port models, once each."""
        return list(dict.fromkeys([*self.internals(spec), *(spec.port_model(p) for p in spec.output_ports)]))

    def project(self, spec: DataProductSpec) -> str | None:
        """The shared project (under `dbt_projects/`) the product is built in; None when its code is in
        its own folder."""
        return None

    def required_files(self, spec: DataProductSpec, folder: Path, root: Path) -> list[tuple[str, Path]]:
        """The files that must exist for the product to build, each with what it is (for the error)."""
        return []

    def folder_code(self, spec: DataProductSpec, folder: Path) -> list[Path]:
        """The product's code files in its own folder (linked from its Dagster assets)."""
        return []

    def code_files(self, spec: DataProductSpec, folder: Path, root: Path) -> list[Path]:
        """Every code file of the product: in its folder, and its models in a shared project."""
        return self.folder_code(spec, folder)

    def owned_relations(self, spec: DataProductSpec) -> list[tuple[addressing.Relation, str]]:
        """The internal relations the product's models write, each with what it is."""
        return []

    def port_reference(self, key: str, major: int) -> str:
        """How the product's code reads port `v<major>` of product `key` (`<domain>.<product>`)."""
        return f"{{{{ input('{key}') }}}}"

    def source_reference(self, source: str) -> str:
        """How the product's code reads the landed extract `<system>.<extract>`."""
        return f"{{{{ source('{source}') }}}}"

    def detail(self, spec: DataProductSpec) -> str:
        """What the catalog says about how the product is built."""
        return ""


@dataclass(frozen=True)
class _Sql(TransformationKind):
    def internals(self, spec: DataProductSpec) -> list[str]:
        return list(narrow(spec.transformation, SqlTransformation).internals)

    def required_files(self, spec: DataProductSpec, folder: Path, root: Path) -> list[tuple[str, Path]]:
        return [(model, folder / f"{model}.sql") for model in self.models(spec)]

    def folder_code(self, spec: DataProductSpec, folder: Path) -> list[Path]:
        return sorted(folder.glob("*.sql"))

    def owned_relations(self, spec: DataProductSpec) -> list[tuple[addressing.Relation, str]]:
        return [
            (addressing.internal_relation(spec.domain, spec.name, name), "internal model")
            for name in self.internals(spec)
        ]

    def detail(self, spec: DataProductSpec) -> str:
        return "SQL models run in the warehouse (DuckDB dialect, transpiled for Snowflake)"


@dataclass(frozen=True)
class _Python(TransformationKind):
    def required_files(self, spec: DataProductSpec, folder: Path, root: Path) -> list[tuple[str, Path]]:
        return [("module", folder / narrow(spec.transformation, PythonTransformation).module)]

    def folder_code(self, spec: DataProductSpec, folder: Path) -> list[Path]:
        return [folder / narrow(spec.transformation, PythonTransformation).module]

    def detail(self, spec: DataProductSpec) -> str:
        return f"pandas functions in `{narrow(spec.transformation, PythonTransformation).module}`"


@dataclass(frozen=True)
class _Dbt(TransformationKind):
    def internals(self, spec: DataProductSpec) -> list[str]:
        return list(narrow(spec.transformation, DbtTransformation).internals)

    def project(self, spec: DataProductSpec) -> str | None:
        return narrow(spec.transformation, DbtTransformation).project

    def required_files(self, spec: DataProductSpec, folder: Path, root: Path) -> list[tuple[str, Path]]:
        return [("project", root / DBT_PROJECTS / str(self.project(spec)) / "dbt_project.yml")]

    def code_files(self, spec: DataProductSpec, folder: Path, root: Path) -> list[Path]:
        models = root / DBT_PROJECTS / str(self.project(spec)) / "models"
        return [path for model in self.models(spec) for path in sorted(models.rglob(f"{model}.sql"))]

    def owned_relations(self, spec: DataProductSpec) -> list[tuple[addressing.Relation, str]]:
        schema = spec.domain + addressing.INTERNAL_SCHEMA_SUFFIX
        return [(addressing.Relation(schema, name), "dbt model") for name in self.models(spec)]

    def port_reference(self, key: str, major: int) -> str:
        domain, name = key.split(".")
        table = addressing.port_relation(domain, name, major).name
        return f"{{{{ source('{dbt_port_source(domain)}', '{table}') }}}}"

    def source_reference(self, source: str) -> str:
        system, extract = source.split(".")
        return f"{{{{ source('{system}', '{extract}') }}}}"

    def detail(self, spec: DataProductSpec) -> str:
        return f"dbt project `{self.project(spec)}`"


def dbt_port_source(domain: str) -> str:
    """The dbt source that exposes a domain's published ports to dbt models: `port_<domain>`."""
    return f"port_{domain}"


KINDS: Mapping[str, TransformationKind] = MappingProxyType(
    {
        kind.name: kind
        for kind in (
            _Sql(
                "sql",
                SqlTransformation,
                sql_code=True,
                scaffold_template="sql_model",
                scaffold_fields={"internals": []},
                templated_sql=True,
            ),
            _Python(
                "python",
                PythonTransformation,
                sql_code=False,
                scaffold_template="python_module",
                scaffold_fields={"module": "transform.py"},
                decimals_as_double=True,
                reads_bindings=True,
            ),
            _Dbt(
                "dbt",
                DbtTransformation,
                sql_code=True,
                scaffold_template="dbt_model",
                scaffold_fields={"internals": []},
                shared_project=True,
                compiled_by_tool=True,
                needs_prepare=True,
                dry_run=False,
                port_read_hint="{{ source('port_<domain>', '<product>_v<major>') }} (after `mesh prepare`)",
                source_read_hint="{{ source('<system>', '<extract>') }}",
            ),
        )
    }
)
"""Every transformation kind, by name (`tests/product/test_kinds.py`: exactly the spec's union)."""


def kind_of(thing: Any) -> TransformationKind:
    """The kind of a product, a spec, a transformation, or a kind's name."""
    if isinstance(thing, str):
        name = thing
    else:
        spec = getattr(thing, "spec", thing)  # a registry Product (not imported: it imports this module)
        transformation = getattr(spec, "transformation", spec)
        name = getattr(transformation, "kind", None)
    found = KINDS.get(name) if isinstance(name, str) else None
    if found is None:
        raise ValueError(f"unknown transformation kind {name!r} of {thing!r}: use one of {', '.join(KINDS)}")
    return found


def narrow(transformation: Any, model: type[Model]) -> Model:
    """`transformation` as the spec model of its kind, for the fields only that kind has; a clear error
    when it is another kind (a caller that reached the wrong kind's code)."""
    kind = kind_of(transformation)
    if kind.model is not model:
        raise TypeError(f"a {kind.name} transformation is not a {model.__name__}")
    return cast(Model, transformation)


def projects(specs: list[DataProductSpec]) -> list[str]:
    """The shared projects the specs' products are built in, sorted, once each."""
    return sorted({p for p in (kind_of(spec).project(spec) for spec in specs) if p is not None})
