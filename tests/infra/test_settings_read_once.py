"""Settings are read once: the environment is resolved into an immutable value and nothing at run time
writes the process environment (one process, one environment).

The leak these tests pin down: the dbt asset ran `os.environ.update(warehouse.dbt_env())`, so on Snowflake a
non-prod environment set `SNOWFLAKE_DATABASE=MESH_DEV` for the whole process, and `Environment.database`
(which re-read `os.environ` on every access) then resolved `MESH_DEV_DEV`, and "prod" as `MESH_DEV`.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from mesh_assets.infra import environment
from mesh_assets.run.runner import run_mesh

REPO = Path(__file__).resolve().parents[2]
RUNTIME_CODE = [REPO / "mesh_assets", REPO / "domains"]
WRITERS = {"update", "setdefault", "pop", "popitem", "clear", "__setitem__", "__delitem__"}


def _environ_writes(path: Path, root: Path = REPO) -> list[str]:
    """`file:line code` of each statement in `path` that writes `os.environ` (or calls putenv/unsetenv)."""
    tree = ast.parse(path.read_text(), str(path))
    found = []

    def is_environ(node: ast.AST) -> bool:
        return isinstance(node, ast.Attribute) and node.attr == "environ"

    for node in ast.walk(tree):
        hit = False
        if isinstance(node, ast.Assign | ast.AugAssign | ast.Delete):
            targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
            hit = any(isinstance(t, ast.Subscript) and is_environ(t.value) for t in targets)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            hit = (node.func.attr in WRITERS and is_environ(node.func.value)) or node.func.attr in {
                "putenv",
                "unsetenv",
            }
        if hit:
            found.append((node.lineno, f"{path.relative_to(root)}:{node.lineno} {ast.unparse(node)[:80]}"))
    return [hit for _, hit in sorted(found)]


def test_no_runtime_code_writes_the_process_environment() -> None:
    files = [path for folder in RUNTIME_CODE for path in folder.rglob("*.py")]
    writes = [hit for path in files for hit in _environ_writes(path)]
    assert writes == [], "settings are read once; pass values, or a subprocess its own env=:\n" + "\n".join(
        writes
    )


def test_the_scan_would_see_each_way_of_writing_the_environment(tmp_path: Path) -> None:
    # The check above must be able to fail: every form it looks for, in one file.
    text = (
        "import os\n"
        "os.environ['A'] = '1'\n"
        "os.environ.update({'B': '2'})\n"
        "os.environ.setdefault('C', '3')\n"
        "del os.environ['A']\n"
        "os.putenv('D', '4')\n"
        "x = os.environ.get('E')\n"
    )
    sample = tmp_path / "sample.py"
    sample.write_text(text)
    hits = _environ_writes(sample, tmp_path)
    assert [hit.split()[0] for hit in hits] == [f"sample.py:{line}" for line in (2, 3, 4, 5, 6)]


def test_a_resolved_environment_keeps_its_databases_whatever_the_process_environment_becomes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MESH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MESH_TARGET", "snowflake")
    monkeypatch.setenv("MESH_ENV", "dev")
    monkeypatch.setenv("SNOWFLAKE_DATABASE", "MESH")
    monkeypatch.setenv("MESH_DEFER", "prod")
    env = environment.resolve()

    # What the old dbt step did to the process: the environment's database became "prod's".
    monkeypatch.setenv("SNOWFLAKE_DATABASE", "MESH_DEV")
    monkeypatch.setenv("MESH_DEFER", "none")

    assert (env.database, env.prod_database, env.defers_to_prod) == ("MESH_DEV", "MESH", True)
    warehouse = env.warehouse()
    assert (warehouse.database, warehouse.prod_database) == ("MESH_DEV", "MESH")
    assert warehouse.dbt_output_overrides() == {"database": "MESH_DEV"}


@pytest.mark.slow
def test_a_dbt_step_run_in_process_leaves_the_process_environment_as_it_found_it(
    mesh_copy: Path, isolated: Path
) -> None:
    before = dict(os.environ)
    resolved = environment.resolve()

    results = run_mesh(products=["sales.orders"])

    outcome = [(r.product, r.status) for r in results]
    assert outcome == [("sales.orders", "ok")], [r.error for r in results]
    changed = {k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k)}
    assert changed == set(), f"the build wrote the process environment: {sorted(changed)}"
    assert environment.resolve() == resolved
