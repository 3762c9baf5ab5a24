"""Reading a dbt project: parse and build it empty with dbt, its manifest's nodes, the built column types.

`dbt build --empty` into a scratch DuckDB file parses the project (a project that does not parse is
refused with dbt's own message) and reveals the exact column types every model returns.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from mesh_assets.assets.dbt_outcomes import seed_source_ids
from mesh_assets.selfservice.errors import OnboardError

_OWNED = ("model", "seed", "snapshot")
"""The nodes a product owns: every one becomes a port or an internal."""


class DbtProject:
    """The parsed project's models, seeds, snapshots and tests, and which of them reads which."""

    def __init__(self, manifest: dict[str, Any]) -> None:
        self.manifest = manifest
        self.nodes = {
            uid: node for uid, node in manifest["nodes"].items() if node.get("resource_type") in _OWNED
        }
        self.models = {uid: n for uid, n in self.nodes.items() if n["resource_type"] == "model"}
        self.tests = [n for n in manifest["nodes"].values() if n.get("resource_type") == "test"]
        self.seeded_sources = seed_source_ids(manifest)
        """Sources naming a seed's relation, to the seed: a model reading one reads the seed."""
        self.parents = {uid: self._read(node) for uid, node in self.nodes.items()}

    def _read(self, node: dict[str, Any]) -> list[str]:
        read = (self.seeded_sources.get(p, p) for p in node.get("depends_on", {}).get("nodes", []))
        return [parent for parent in read if parent in self.nodes]

    def by_name(self, name: str) -> str | None:
        """The unique id of the model called `name`."""
        return next((uid for uid, n in self.models.items() if n["name"] == name), None)

    def ancestors(self, uid: str) -> set[str]:
        """Every node upstream of `uid`."""
        found: set[str] = set()
        stack = list(self.parents[uid])
        while stack:
            node = stack.pop()
            if node not in found:
                found.add(node)
                stack += self.parents[node]
        return found


def node_meta(node: dict[str, Any]) -> dict[str, Any]:
    """A node's `meta`, its `config.meta` winning."""
    return {**(node.get("meta") or {}), **((node.get("config") or {}).get("meta") or {})}


def mesh_meta(node: dict[str, Any]) -> dict[str, Any]:
    """The node's `meta.mesh` settings (product, version, port, primary_key, title), if any."""
    mesh = node_meta(node).get("mesh")
    return mesh if isinstance(mesh, dict) else {}


def is_marked_port(node: dict[str, Any]) -> bool:
    """Whether the team marked the model public: `access: public` or `config.meta.mesh.port`."""
    mark = mesh_meta(node).get("port")
    if mark is False:
        return False
    return bool(mark) or node.get("access") == "public"


def dbt_message(output: str) -> str:
    """dbt's output without its timestamps and blank lines: the message a person needs."""
    lines = [re.sub(r"^\s*\d\d:\d\d:\d\d\s+", "", line).rstrip() for line in output.splitlines()]
    return "\n".join(line for line in lines if line.strip()).strip()


def _run_dbt(
    args: list[str], project_dir: Path, scratch: Path, dbt_vars: dict[str, Any] | None = None
) -> subprocess.CompletedProcess[str]:
    from mesh_assets.assets.dbt_contracts import dbt_executable, vars_args

    command = [
        dbt_executable(),
        *args,
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(project_dir),
        *vars_args(dbt_vars or {}),
    ]
    env = {
        **os.environ,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MESH_DUCKDB_PATH": str(scratch / "onboard.duckdb"),
        "DBT_LOG_PATH": str(scratch / "logs"),
    }
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=project_dir)


def _has_seeds(project_dir: Path) -> bool:
    import yaml

    config = yaml.safe_load((project_dir / "dbt_project.yml").read_text()) or {}
    return any(any((project_dir / str(p)).rglob("*.csv")) for p in config.get("seed-paths") or ["seeds"])


def build_empty(
    project_dir: Path, scratch: Path, dbt_vars: dict[str, Any] | None = None
) -> tuple[dict[str, Any], str | None]:
    """Parse the project and build it with `--empty` into a scratch DuckDB file, its seeds first.

    The seeds are loaded first (`dbt seed`), because a project may read its seeds as sources (dbt Labs'
    jaffle-shop seeds its raw data where its `ecom` sources point), which dbt does not link: in one
    `dbt build` a model may run before the seed it reads exists. `dbt_vars` go to every invocation.
    Returns the manifest and, when some models did not run on DuckDB, dbt's message (the contract then
    falls back to the YAML's declared data types). Refuses a project that does not parse with dbt's
    own message.
    """
    has_packages = any((project_dir / f).exists() for f in ("packages.yml", "dependencies.yml"))
    if has_packages and not (project_dir / "dbt_packages").exists():
        deps = _run_dbt(["deps", "--quiet", "--no-use-colors"], project_dir, scratch, dbt_vars)
        if deps.returncode != 0:
            raise OnboardError(
                f"dbt could not install the project's packages:\n{dbt_message(deps.stdout + deps.stderr)}",
                exit_code=1,
            )
    common = ["--quiet", "--no-use-colors", "--no-version-check", "--target", "local"]
    excluded = ["--exclude-resource-type", "unit_test"]
    if _has_seeds(project_dir):
        seeded = _run_dbt(
            ["seed", *common, "--target-path", str(scratch / "seed")], project_dir, scratch, dbt_vars
        )
        if seeded.returncode == 0:
            excluded += ["--exclude-resource-type", "seed"]
        # Else the build below tries the seeds again, in its own order, and says what failed.
    result = _run_dbt(
        ["build", "--empty", *common, *excluded, "--target-path", str(scratch / "target")],
        project_dir,
        scratch,
        dbt_vars,
    )
    manifest = scratch / "target" / "manifest.json"
    message = dbt_message(result.stdout + "\n" + result.stderr)
    if not manifest.exists() or result.returncode >= 2:
        raise OnboardError(f"dbt could not parse the project:\n{message}", exit_code=1)
    return json.loads(manifest.read_text()), (message if result.returncode != 0 else None)


def relation_types(database: Path, nodes: list[dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    """`(column, DuckDB type)` of each built node, by unique id (absent when it was not built)."""
    import duckdb

    if not database.exists():
        return {}
    found: dict[str, list[tuple[str, str]]] = {}
    with duckdb.connect(str(database), read_only=True) as connection:
        for node in nodes:
            rows = connection.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                [node["schema"], node.get("alias") or node["name"]],
            ).fetchall()
            if rows:
                found[node["unique_id"]] = [(str(name), str(dtype)) for name, dtype in rows]
    return found
