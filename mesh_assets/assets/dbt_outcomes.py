"""What a dbt project's manifest and run results say, read without dbt or dagster-dbt (pure functions).

Two questions the platform asks of every dbt project it builds or onboards:

- which sources are really the project's own seeds (dbt Labs' jaffle-shop seeds its raw data into the
  schema its `ecom` sources name, and dbt does not link a source to the seed that fills it);
- which nodes a `dbt build` did not build, and why, in dbt's words: a model that errored, or one dbt
  skipped because a test, unit test or model upstream of it failed.
"""

from __future__ import annotations

import re
from typing import Any

DBT_FAILURE = "mesh/dbt_failure"
"""Metadata key of the observation a dbt step records for a model dbt did not build: dbt's reason."""
DBT_SKIPPED = "skipped by dbt: "
"""How the reason of a model dbt skipped for a failure upstream of it starts."""

_ANSI = re.compile(r"\x1b\[[0-9;]*m")

FAILED = {"error", "fail", "runtime error"}
"""run_results statuses of a node that failed (models: error; data and unit tests: fail or error)."""


def _relation(node: dict[str, Any]) -> tuple[str, str]:
    name = node.get("identifier") or node.get("alias") or node["name"]
    return str(node.get("schema") or "").lower(), str(name).lower()


def seed_backed_sources(manifest: dict[str, Any]) -> dict[tuple[str, str], str]:
    """`(source name, table name)` -> the name of the seed whose relation the source names."""
    seeds = {
        _relation(node): node["name"]
        for node in manifest.get("nodes", {}).values()
        if node.get("resource_type") == "seed"
    }
    found = {}
    for source in manifest.get("sources", {}).values():
        seed = seeds.get(_relation(source))
        if seed is not None:
            found[(source["source_name"], source["name"])] = seed
    return found


def seed_source_ids(manifest: dict[str, Any]) -> dict[str, str]:
    """Source unique id -> the unique id of the seed it names (see `seed_backed_sources`)."""
    seeds = {
        _relation(node): uid
        for uid, node in manifest.get("nodes", {}).items()
        if node.get("resource_type") == "seed"
    }
    return {
        uid: seeds[_relation(source)]
        for uid, source in manifest.get("sources", {}).items()
        if _relation(source) in seeds
    }


def link_seeded_sources(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest with each source that names a seed's relation replaced by the seed itself.

    dagster-dbt then draws the seed feeding the models that read the source (one asset, not a seed and
    an external source that nothing materializes, which would also hold back automation as missing).
    Only the platform's copy changes: dbt itself still reads the source.
    """
    return _replace_sources(manifest, seed_source_ids(manifest))


def link_candidate_sources(manifest: dict[str, Any], candidates: dict[str, str]) -> dict[str, Any]:
    """The manifest with each port source read from a sibling's candidate replaced by the producer's model.

    `candidates` maps `<source>.<table>` to the producer's port model (`dbt_contracts.candidate_sources`).
    The generated `source()` records both the source and the ref when dbt parses; Dagster must see only
    the model, inside the same dbt multi-asset: an edge to the producer's *port* asset would split the
    dbt step in two around the producer's publish (two dbt processes where one does).
    """
    models = {
        node["name"]: uid
        for uid, node in manifest.get("nodes", {}).items()
        if node.get("resource_type") == "model"
    }
    replaced = {
        uid: models[candidates[f"{source['source_name']}.{source['name']}"]]
        for uid, source in manifest.get("sources", {}).items()
        if candidates.get(f"{source['source_name']}.{source['name']}") in models
    }
    return _replace_sources(manifest, replaced)


def _replace_sources(manifest: dict[str, Any], replaced: dict[str, str]) -> dict[str, Any]:
    """The manifest with each source unique id of `replaced` replaced by the node id it maps to."""
    if not replaced:
        return manifest

    def swap(ids: list[str]) -> list[str]:
        return list(dict.fromkeys(replaced.get(i, i) for i in ids))

    for section in ("nodes", "unit_tests"):
        for node in (manifest.get(section) or {}).values():
            depends = node.get("depends_on") or {}
            if depends.get("nodes"):
                depends["nodes"] = swap(depends["nodes"])
    for name in ("parent_map", "child_map"):
        graph = manifest.get(name) or {}
        for uid in list(graph):
            graph[uid] = swap(graph[uid])
    children = manifest.get("child_map") or {}
    for source, node in replaced.items():
        if node in children:
            children[node] = list(dict.fromkeys([*children[node], *children.pop(source, [])]))
        children.pop(source, None)
        (manifest.get("parent_map") or {}).pop(source, None)
        manifest["sources"].pop(source, None)
    return manifest


def _parents(manifest: dict[str, Any], uid: str) -> list[str]:
    node = manifest.get("nodes", {}).get(uid) or manifest.get("unit_tests", {}).get(uid) or {}
    return list((node.get("depends_on") or {}).get("nodes") or [])


def failed_nodes(manifest: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, str]:
    """Each model, seed or snapshot dbt did not build, by unique id, with dbt's reason.

    A node that failed carries its own message; a node dbt skipped carries the failures upstream of it
    (a failed data test or unit test of an ancestor, or an ancestor that errored), so a person reads why.
    """
    status = {r["unique_id"]: str(r.get("status") or "").lower() for r in results}
    # dbt colours a unit test's diff; the reason is read in a table and a log, not a terminal.
    message = {r["unique_id"]: _ANSI.sub("", r.get("message") or "").strip() for r in results}
    seeds = seed_source_ids(manifest)
    failures = {uid for uid, s in status.items() if s in FAILED}
    built = {
        uid
        for uid, node in manifest.get("nodes", {}).items()
        if node.get("resource_type") in {"model", "seed", "snapshot"}
    }

    def described(uid: str) -> str:
        node = manifest.get("nodes", {}).get(uid) or manifest.get("unit_tests", {}).get(uid) or {}
        kind = node.get("resource_type", "node").replace("_", " ")
        return f"{kind} {node.get('name', uid)} failed: {message.get(uid) or status[uid]}"

    def ancestors(uid: str) -> set[str]:
        found: set[str] = set()
        stack = [uid]
        while stack:
            for parent in _parents(manifest, stack.pop()):
                parent = seeds.get(parent, parent)
                if parent not in found:
                    found.add(parent)
                    stack.append(parent)
        return found

    reasons = {}
    for uid, state in status.items():
        if uid not in built:
            continue
        if state in FAILED:
            reasons[uid] = described(uid)
        elif state == "skipped":
            upstream = ancestors(uid) | {uid}
            # A failed model or seed upstream of it; a failed test (data or unit) of one of them or of it.
            causes = [
                f
                for f in sorted(failures)
                if f != uid and (f in upstream if f in built else bool(set(_parents(manifest, f)) & upstream))
            ]
            reasons[uid] = DBT_SKIPPED + (
                "; ".join(described(f) for f in causes) or "something upstream of it failed"
            )
    return reasons
