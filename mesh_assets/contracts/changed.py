"""Which products a change touches: the files changed against a git ref, mapped onto products.

What `mesh ci` builds (and `mesh run --changed-since` would): the changed products plus every product
downstream of them, because a consumer's data changes when its producer's does.

Files map onto products by where they live:
- `domains/<d>/products/<p>/**` → product `<d>.<p>` (its spec, SQL, Python; whether the spec parses or
  not, and then its consumers are those of the ports it had at the base), but not its `access/`
  folder: agreements change who may read, not what is built (`mesh ci`'s access step judges them);
- `domains/<d>/**` elsewhere (its `definitions.py`) → every product of domain `<d>`;
- `dbt_projects/<project>/models/**/<model>.sql|.yml` → the product that owns `<model>`; any other file
  of the project (`dbt_project.yml`, macros, profiles) → every product of the project;
- the platform itself (`mesh_assets/**`, `pyproject.toml`, `requirements.lock`, `dagster.yaml`,
  `workspace.yaml`) → every product: a platform change can change any build;
- anything else (docs, tests, benchmarks) → nothing to build.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from mesh_assets.contracts.diff_consumers import readers, unique_consumers
from mesh_assets.contracts.diff_git import ContractDiffError, _git, read_specs_at
from mesh_assets.product import kinds
from mesh_assets.product.agreement import ACCESS_FOLDER
from mesh_assets.product.spec import DataProductSpec

if TYPE_CHECKING:
    from mesh_assets.product.registry import Registry

PLATFORM_FILES = ("pyproject.toml", "requirements.lock", "dagster.yaml", "workspace.yaml")
PLATFORM_DIRS = ("mesh_assets",)


@dataclass
class ChangeSet:
    """The products a change touches, and why."""

    base: str
    files: list[str] = field(default_factory=list)
    """Paths (relative to the repository root) changed against `base`, untracked files included."""
    changed: dict[str, list[str]] = field(default_factory=dict)
    """Product key → the changed files that touch it."""
    downstream: dict[str, list[str]] = field(default_factory=dict)
    """Product key → the changed products upstream of it (not themselves changed)."""

    @property
    def to_build(self) -> list[str]:
        """Changed and downstream products (keys, sorted)."""
        return sorted({*self.changed, *self.downstream})


def changed_files(root: Path, base: str) -> list[str]:
    """Files that differ between git `base` and the working tree (committed, staged, unstaged, new)."""
    try:
        _git(root, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}")
    except ContractDiffError as exc:
        raise ContractDiffError(
            f"'{base}' is not a commit of the repository at {root}; in CI, fetch enough history "
            "(e.g. actions/checkout with fetch-depth: 0) for the base to exist"
        ) from exc
    top = Path(_git(root, "rev-parse", "--show-toplevel").decode().strip())
    prefix = _git(root, "rev-parse", "--show-prefix").decode().strip()
    tracked = _git(top, "diff", "--name-only", "-z", base, "--").decode().split("\0")
    untracked = _git(top, "ls-files", "--others", "--exclude-standard", "-z").decode().split("\0")
    files = set()
    for name in filter(None, [*tracked, *untracked]):
        if name.startswith(prefix):
            files.add(name[len(prefix) :])
    return sorted(files)


def _dbt_owners(registry: Registry) -> dict[tuple[str, str], str]:
    """(project, model) → product key, for every dbt model a product owns."""
    owners = {}
    for product in registry.products.values():
        kind = kinds.kind_of(product)
        project = kind.project(product.spec)
        if project is not None:
            for model in kind.models(product.spec):
                owners[(project, model)] = product.key
    return owners


def products_of_file(path: str, registry: Registry) -> set[str]:
    """The product keys a changed file touches (see the module docstring for the mapping)."""
    parts = PurePosixPath(path).parts
    everything = set(registry.products)
    if not parts:
        return set()
    if parts[0] in PLATFORM_DIRS or path in PLATFORM_FILES:
        return everything
    if parts[0] == "domains" and len(parts) >= 3:
        domain = parts[1]
        if len(parts) >= 6 and parts[2] == "products" and parts[4] == ACCESS_FOLDER:
            return set()  # agreements change who may read, not what is built: `mesh validate` judges them
        if len(parts) >= 5 and parts[2] == "products":
            # The folder names the product: a spec that no longer parses is still this product's change.
            key = f"{domain}.{parts[3]}"
            return {key} if key in registry.products or key in registry.unreadable else set()
        return {k for k, p in registry.products.items() if p.spec.domain == domain}
    if parts[0] == "dbt_projects" and len(parts) >= 3:
        project = parts[1]
        if parts[2] in {"target", "logs", "dbt_packages"}:
            return set()
        products = registry.products.values()
        in_project = {p.key for p in products if kinds.kind_of(p).project(p.spec) == project}
        if parts[2] == "models" and PurePosixPath(path).suffix in {".sql", ".py"}:
            owner = _dbt_owners(registry).get((project, PurePosixPath(path).stem))
            return {owner} if owner else in_project
        return in_project
    return set()


def consumers_of(
    producer: str, registry: Registry, base_specs: Mapping[str, DataProductSpec] | None = None
) -> list[str]:
    """The products reading a port of `producer` (keys).

    Resolved in the working tree; for a producer whose spec does not parse there (so has no ports), against
    the ports it published at the base (`base_specs`), which its consumers' ranges were written for.
    """
    if producer in registry.products or not base_specs or producer not in base_specs:
        return [resolved.consumer.key for resolved in registry.consumers_of(producer)]
    working_tree = (p.spec for p in registry.products.values())
    found = readers(working_tree, producer, base_specs[producer].output_ports)
    return [consumer.product for consumer in unique_consumers(c for cs in found.values() for c in cs)]


def downstream_of(
    keys: set[str], registry: Registry, base_specs: Mapping[str, DataProductSpec] | None = None
) -> dict[str, list[str]]:
    """Every product that reads (transitively) a port of one of `keys`, with the changed ones it follows.

    `base_specs` (the specs at the base) name the consumers of a changed product whose spec no longer parses.
    """
    found: dict[str, set[str]] = {}
    frontier = [(key, key) for key in keys]
    while frontier:
        producer, origin = frontier.pop()
        for key in consumers_of(producer, registry, base_specs):
            if key in keys:
                continue
            if origin not in found.setdefault(key, set()):
                found[key].add(origin)
                frontier.append((key, origin))
    return {key: sorted(origins) for key, origins in sorted(found.items())}


def changes_against(root: Path, registry: Registry, base: str) -> ChangeSet:
    """The products changed against git `base`, and their downstream consumers."""
    files = changed_files(root, base)
    changes = ChangeSet(base=base, files=files)
    for path in files:
        for key in products_of_file(path, registry):
            changes.changed.setdefault(key, []).append(path)
    broken = registry.unreadable & set(changes.changed)
    # Only a changed spec that no longer parses needs the base (one `git cat-file` of the specs).
    base_specs = read_specs_at(root, base).specs if broken else None
    changes.downstream = downstream_of(set(changes.changed), registry, base_specs)
    return changes
