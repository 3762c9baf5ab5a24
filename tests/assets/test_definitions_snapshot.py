"""Snapshots of every code location's public interface: a change to it is a visible diff in review.

Each location's asset keys, groups, owners, tags, kinds, deps, checks and freshness policies are compared
with `tests/snapshots/<location>.json`. After an intended change, refresh them with
`MESH_UPDATE_SNAPSHOTS=1 pytest tests/assets/test_definitions_snapshot.py` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dagster as dg
import pytest

from mesh_assets.run.runner import load_location

SNAPSHOTS = Path(__file__).parent.parent / "snapshots"
LOCATIONS = ["customers", "sales", "diagnostics", "commercial_analytics", "mesh"]


def interface(defs: dg.Definitions) -> dict:
    """The reviewable public interface of a location (nothing that depends on the environment)."""
    graph = defs.resolve_asset_graph()
    checks: dict[str, list[str]] = {}
    for check_key in graph.asset_check_keys:
        checks.setdefault(check_key.asset_key.to_user_string(), []).append(check_key.name)
    assets = {}
    for spec in sorted(defs.resolve_all_asset_specs(), key=lambda s: s.key.to_user_string()):
        key = spec.key.to_user_string()
        assets[key] = {
            "group": spec.group_name,
            "owners": sorted(spec.owners),
            "tags": {k: v for k, v in sorted(spec.tags.items()) if k.startswith("mesh/")},
            "kinds": sorted(spec.kinds - {"duckdb", "snowflake"}),
            "deps": sorted(dep.asset_key.to_user_string() for dep in spec.deps),
            "checks": sorted(checks.get(key, [])),
            "freshness": repr(spec.freshness_policy) if spec.freshness_policy else None,
            "automation": spec.automation_condition.get_label() if spec.automation_condition else None,
        }
    sensors = sorted(sensor.name for sensor in defs.sensors or [])
    return {"assets": assets, "sensors": sensors}


@pytest.mark.parametrize("location", LOCATIONS)
def test_code_location_interface_matches_its_snapshot(location: str, isolated: Path) -> None:
    current = interface(load_location(location))
    path = SNAPSHOTS / f"{location}.json"
    if os.environ.get("MESH_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    assert path.exists(), f"no snapshot for {location}: run MESH_UPDATE_SNAPSHOTS=1 pytest {__file__}"
    assert current == json.loads(path.read_text()), (
        f"{location}'s public interface changed; if intended, refresh with MESH_UPDATE_SNAPSHOTS=1 and review"
    )


def test_every_workspace_location_is_snapshotted(repo_root: Path) -> None:
    import yaml

    workspace = yaml.safe_load((repo_root / "workspace.yaml").read_text())
    names = [entry["python_module"]["location_name"] for entry in workspace["load_from"]]
    assert sorted(names) == sorted(LOCATIONS)


def test_consumers_depend_only_on_published_ports_of_other_domains(isolated: Path) -> None:
    from mesh_assets.product.addressing import is_port_key

    for location in LOCATIONS[:-1]:
        for spec in load_location(location).resolve_all_asset_specs():
            for dep in spec.deps:
                if dep.asset_key.path[0] != location:
                    assert is_port_key(dep.asset_key), (
                        f"{spec.key.to_user_string()} reads {dep.asset_key.to_user_string()}, "
                        "which is not an output port"
                    )


def test_every_product_is_one_group_with_one_port_per_major_version(isolated: Path) -> None:
    from mesh_assets.infra.environment import resolve
    from mesh_assets.product.registry import load_registry

    registry = load_registry(resolve().root)
    for location in LOCATIONS[:-1]:
        specs = list(load_location(location).resolve_all_asset_specs())
        for product in registry.domain_products(location):
            group = [s for s in specs if s.group_name == product.spec.name]
            ports = sorted(s.key.path[-1] for s in group if s.tags.get("mesh/role") == "output_port")
            assert ports == sorted(f"v{p.major}" for p in product.spec.output_ports)
            assert all(s.tags.get("mesh/role") in {"output_port", "internal"} for s in group)
