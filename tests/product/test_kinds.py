"""Transformation kinds: one registry answers what the platform asks of a kind, and nothing else decides it.

A fourth kind is one `TransformationKind` in `product/kinds.py` (plus its spec model, builder, lineage and
scaffold template, each checked here to be present); no module compares `transformation.kind` with a
kind's name or tests `isinstance(..., *Transformation)` outside the registry.
"""

from __future__ import annotations

import ast
import copy
import typing
from pathlib import Path
from typing import Any

import pytest
from binding_specs import MINIMAL_SPEC

from mesh_assets.assets import lineage_cache
from mesh_assets.assets.builders import BUILDERS
from mesh_assets.product import addressing, kinds
from mesh_assets.product.kinds import KINDS, kind_of, narrow
from mesh_assets.product.registry import Product
from mesh_assets.product.spec import (
    DataProductSpec,
    DbtTransformation,
    PythonTransformation,
)
from mesh_assets.selfservice import check, scaffold

PACKAGE = Path(__file__).resolve().parents[2] / "mesh_assets"
KIND_NAMES = {"sql", "python", "dbt"}

REGISTRY_MODULES = {"mesh_assets/product/kinds.py"}
"""Where a kind may be decided by name or by its spec model: the registry itself."""



def _spec(transformation: dict[str, Any], **changes: Any) -> DataProductSpec:
    # The shared minimal spec with two ports, the second built by a model not named after the port.
    document: dict[str, Any] = {
        **copy.deepcopy(MINIMAL_SPEC),
        "transformation": transformation,
        "output_ports": [
            {
                "version": "1.0.0",
                "columns": [{"name": "widget_id", "type": "string", "description": "Widget id."}],
                "primary_key": ["widget_id"],
            },
            {
                "version": "2.0.0",
                "model": "widgets_latest",
                "columns": [{"name": "widget_id", "type": "string", "description": "Widget id."}],
                "primary_key": ["widget_id"],
            },
        ],
    }
    document.update(copy.deepcopy(changes))
    return DataProductSpec.model_validate(document)


SQL = _spec({"kind": "sql", "internals": ["stg_widgets", "widgets_v1"]})
PYTHON = _spec({"kind": "python", "module": "build.py"})
DBT = _spec({"kind": "dbt", "project": "sales", "internals": ["stg_widgets"]})


# --- the registry is the spec's union ---------------------------------------------------------------


def _union_models() -> set[type]:
    annotation = DataProductSpec.model_fields["transformation"].annotation
    return set(typing.get_args(annotation))


def test_the_registry_holds_exactly_the_kinds_of_the_spec_transformation_union() -> None:
    assert {kind.model for kind in KINDS.values()} == _union_models()


def test_each_kind_is_registered_under_the_name_its_spec_model_declares() -> None:
    for name, kind in KINDS.items():
        (literal,) = typing.get_args(kind.model.model_fields["kind"].annotation)
        assert (kind.name, literal) == (name, name)


def test_every_kind_has_a_builder_a_lineage_and_a_scaffold_template() -> None:
    assert set(BUILDERS) == set(KINDS)
    assert set(lineage_cache.LINEAGE) == set(KINDS)
    assert {kind.scaffold_template for kind in KINDS.values()} <= set(scaffold._CODE_WRITERS)
    assert set(check.DRY_RUN_BUILDS) == {name for name, kind in KINDS.items() if kind.dry_run}
    assert tuple(KINDS) == scaffold.KINDS


def test_a_kind_with_shared_projects_has_a_builder_for_them() -> None:
    for name, kind in KINDS.items():
        assert (BUILDERS[name].project_assets is not None) == kind.shared_project, name


# --- what the registry answers ----------------------------------------------------------------------


def test_kind_of_finds_the_kind_of_a_product_a_spec_a_transformation_and_a_name(tmp_path: Path) -> None:
    product = Product(DBT, tmp_path / "dataproduct.yaml")
    assert kind_of(product) is kind_of(DBT) is kind_of(DBT.transformation) is kind_of("dbt") is KINDS["dbt"]


def test_kind_of_an_unknown_name_says_which_kinds_there_are() -> None:
    with pytest.raises(ValueError, match=r"unknown transformation kind 'snowpark'.*sql, python, dbt"):
        kind_of("snowpark")


def test_narrow_gives_the_kind_s_own_fields_and_refuses_another_kind() -> None:
    assert narrow(PYTHON.transformation, PythonTransformation).module == "build.py"
    with pytest.raises(TypeError, match="a sql transformation is not a DbtTransformation"):
        narrow(SQL.transformation, DbtTransformation)


def test_models_are_the_internals_then_the_port_models_each_once() -> None:
    # widgets_v1 is both an internal and port v1's model: built once, as the internal it is first.
    assert kind_of(SQL).models(SQL) == ["stg_widgets", "widgets_v1", "widgets_latest"]
    assert kind_of(DBT).models(DBT) == ["stg_widgets", "widgets_v1", "widgets_latest"]
    assert kind_of(PYTHON).models(PYTHON) == ["widgets_v1", "widgets_latest"]
    assert kind_of(PYTHON).internals(PYTHON) == []


def test_only_a_dbt_product_is_built_in_a_shared_project() -> None:
    assert [kind_of(s).project(s) for s in (SQL, PYTHON, DBT)] == [None, None, "sales"]
    other = _spec({"kind": "dbt", "project": "marketing"})
    assert kinds.projects([DBT, SQL, other, DBT, PYTHON]) == ["marketing", "sales"]


def test_each_kind_names_the_files_it_needs_to_build(tmp_path: Path) -> None:
    folder = tmp_path / "domains" / "sales" / "products" / "widgets"
    assert kind_of(SQL).required_files(SQL, folder, tmp_path) == [
        ("stg_widgets", folder / "stg_widgets.sql"),
        ("widgets_v1", folder / "widgets_v1.sql"),
        ("widgets_latest", folder / "widgets_latest.sql"),
    ]
    assert kind_of(PYTHON).required_files(PYTHON, folder, tmp_path) == [("module", folder / "build.py")]
    assert kind_of(DBT).required_files(DBT, folder, tmp_path) == [
        ("project", tmp_path / "dbt_projects" / "sales" / "dbt_project.yml")
    ]


def test_code_files_are_the_folder_s_code_and_a_dbt_product_s_own_models(tmp_path: Path) -> None:
    folder = tmp_path / "domains" / "sales" / "products" / "widgets"
    models = tmp_path / "dbt_projects" / "sales" / "models"
    for path in (
        folder / "widgets_v1.sql",
        folder / "stg_widgets.sql",
        models / "staging" / "stg_widgets.sql",
        models / "marts" / "widgets_v1.sql",
        models / "marts" / "someone_elses.sql",
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("select 1")
    assert kind_of(SQL).code_files(SQL, folder, tmp_path) == [
        folder / "stg_widgets.sql",
        folder / "widgets_v1.sql",
    ]
    assert kind_of(PYTHON).code_files(PYTHON, folder, tmp_path) == [folder / "build.py"]
    assert kind_of(DBT).code_files(DBT, folder, tmp_path) == [
        models / "staging" / "stg_widgets.sql",
        models / "marts" / "widgets_v1.sql",
    ]
    # A dbt model's own asset links its file: the port links only what is in the product folder.
    assert kind_of(DBT).folder_code(DBT, folder) == []


def test_the_relations_a_product_owns_are_its_sql_internals_or_all_its_dbt_models() -> None:
    assert kind_of(SQL).owned_relations(SQL) == [
        (addressing.Relation("sales_internal", "widgets__stg_widgets"), "internal model"),
        (addressing.Relation("sales_internal", "widgets__widgets_v1"), "internal model"),
    ]
    assert [r.name for r, _ in kind_of(DBT).owned_relations(DBT)] == [
        "stg_widgets",
        "widgets_v1",
        "widgets_latest",
    ]
    assert kind_of(PYTHON).owned_relations(PYTHON) == []


def test_dbt_code_reads_ports_and_sources_through_dbt_sources_and_the_rest_through_input() -> None:
    assert (
        kind_of(SQL).port_reference("customers.customer_master", 2)
        == "{{ input('customers.customer_master') }}"
    )
    assert kind_of(DBT).port_reference("customers.customer_master", 2) == (
        "{{ source('port_customers', 'customer_master_v2') }}"
    )
    assert kind_of(SQL).source_reference("crm.customers") == "{{ source('crm.customers') }}"
    assert kind_of(DBT).source_reference("crm.customers") == "{{ source('crm', 'customers') }}"


def test_the_catalog_words_each_kind_from_its_spec() -> None:
    assert kind_of(DBT).detail(DBT) == "dbt project `sales`"
    assert kind_of(PYTHON).detail(PYTHON) == "pandas functions in `build.py`"
    assert kind_of(SQL).detail(SQL).startswith("SQL models run in the warehouse")


def test_only_platform_templated_sql_refuses_a_port_named_by_its_table() -> None:
    assert {name for name, kind in KINDS.items() if kind.templated_sql} == {"sql"}
    assert {name for name, kind in KINDS.items() if kind.sql_code} == {"sql", "dbt"}


# --- nobody else decides a kind ---------------------------------------------------------------------


def _kind_checks(tree: ast.AST) -> list[tuple[int, str]]:
    """Lines that compare a `.kind` with a kind's name, or test isinstance against a `*Transformation`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            names: set[str] = set()
            for side in sides:
                items = side.elts if isinstance(side, ast.Tuple | ast.List | ast.Set) else [side]
                names |= {i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)}
            on_kind = any(isinstance(side, ast.Attribute) and side.attr == "kind" for side in sides)
            if on_kind and names & KIND_NAMES:
                found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.Call) and ast.unparse(node.func) == "isinstance" and len(node.args) == 2:
            second = node.args[1]
            classes = second.elts if isinstance(second, ast.Tuple) else [second]
            for cls in classes:
                name = cls.attr if isinstance(cls, ast.Attribute) else getattr(cls, "id", "")
                if name.endswith("Transformation"):
                    found.append((node.lineno, ast.unparse(node)))
    return found


def test_the_detector_finds_both_ways_of_deciding_a_kind() -> None:
    code = (
        "if t.kind == 'sql': pass\n"
        "if 'dbt' != spec.transformation.kind: pass\n"
        "if p.kind in ('python', 'x'): pass\n"
        "if isinstance(t, DbtTransformation): pass\n"
        "if isinstance(t, (int, spec.SqlTransformation)): pass\n"
        "if alert.kind == 'slack' or kind == 'sql': pass\n"
    )
    assert [line for line, _ in _kind_checks(ast.parse(code))] == [1, 2, 3, 4, 5]


def test_no_module_decides_a_transformation_kind_outside_the_registry() -> None:
    root = PACKAGE.parent
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if relative in REGISTRY_MODULES:
            continue
        found += [f"{relative}:{line}: {code}" for line, code in _kind_checks(ast.parse(path.read_text()))]
    assert not found, (
        "decided a transformation kind by name or spec model; ask `product.kinds` instead "
        "(kind_of(...).<question>, narrow(...) for a kind's own fields):\n" + "\n".join(found)
    )
