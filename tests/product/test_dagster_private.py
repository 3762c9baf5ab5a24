"""Private Dagster and dagster-dbt names: each one the platform uses still exists with the signature it was
written against, and none is used outside `mesh_assets/product/dagster_private.py`.

An upgrade of dagster or dagster-dbt that renames, removes or changes one fails here, naming it and why the
platform needs it, instead of failing a run, a sensor or the UI later.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

from mesh_assets.product.dagster_private import PRIVATE_NAMES, PrivateName

PACKAGE = Path(__file__).resolve().parents[2] / "mesh_assets"
SHIM = PACKAGE / "product" / "dagster_private.py"
PRIVATE_MODULE_PREFIXES = ("dagster._", "dagster_dbt._", "dagster_snowflake._", "dagster_postgres._")


def _resolve(entry: PrivateName) -> object:
    target: object = importlib.import_module(entry.module)
    for part in entry.name.split("."):
        assert hasattr(target, part), f"{entry.module}.{entry.name} is gone; the platform needs: {entry.why}"
        target = inspect.getattr_static(target, part) if isinstance(target, type) else getattr(target, part)
    return target


@pytest.mark.parametrize("entry", PRIVATE_NAMES, ids=lambda e: f"{e.module}.{e.name}")
def test_each_private_name_still_exists_with_the_signature_the_platform_was_written_against(
    entry: PrivateName,
) -> None:
    found = _resolve(entry)
    if entry.signature is None:
        return
    function = found.__func__ if isinstance(found, classmethod | staticmethod) else found
    assert str(inspect.signature(function)) == entry.signature, (
        f"{entry.module}.{entry.name} changed its signature; the platform relies on it: {entry.why}"
    )


def _private_imports(path: Path) -> list[tuple[str, str, bool]]:
    """(module, name, under TYPE_CHECKING) of each import of a private Dagster module in `path`."""
    tree = ast.parse(path.read_text())
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only |= {id(child) for child in ast.walk(node)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PRIVATE_MODULE_PREFIXES):
            found += [(node.module or "", alias.name, id(node) in typing_only) for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith(PRIVATE_MODULE_PREFIXES)]
            found += [(name, "", id(node) in typing_only) for name in names]
    return found


def test_private_names_are_used_only_through_the_one_module_that_lists_them() -> None:
    listed = {(entry.module, entry.name.split(".")[0]) for entry in PRIVATE_NAMES}
    outside = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == SHIM:
            continue
        for module, name, typing_only in _private_imports(path):
            # An annotation may name a listed private type; anything that runs goes through the module.
            if not (typing_only and (module, name) in listed):
                outside.append(f"{path.relative_to(PACKAGE.parent)}: from {module} import {name}")
    assert outside == [], "use mesh_assets.product.dagster_private (and list the name there):\n" + "\n".join(
        outside
    )


def test_the_import_scan_sees_a_private_import_that_runs(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\n"
        "from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS\n"
        "if TYPE_CHECKING:\n"
        "    from dagster._serdes import ConfigurableClassData\n"
    )
    assert _private_imports(sample) == [
        ("dagster._core.storage.sqlite", "SQLITE_BUSY_TIMEOUT_SECONDS", False),
        ("dagster._serdes", "ConfigurableClassData", True),
    ]
