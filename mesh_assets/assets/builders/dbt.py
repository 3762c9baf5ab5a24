"""dbt products: models of a project under `dbt_projects/`, run through dagster-dbt.

Each dbt model belongs to exactly one product, as an internal or as the model that builds a port's
candidate batch (the platform then audits and publishes it, like any port). dbt tests become asset
checks. Contracts and tests come from the specs (`mesh_assets.assets.dbt_contracts`). Imported only by
domains that have dbt products: dagster-dbt alone costs about a second of code-location load.
"""

import hashlib
import importlib.metadata
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)
from packaging.version import Version

from mesh_assets.assets import column_lineage, lineage_cache
from mesh_assets.assets.dbt_contracts import (
    candidate_sources,
    dbt_executable,
    generated_macros_path,
    port_source_name,
    prepare,
    products_of_project,
    project_vars,
    vars_args,
)
from mesh_assets.assets.dbt_outcomes import (
    DBT_FAILURE,
    failed_nodes,
    link_candidate_sources,
    link_seeded_sources,
    seed_backed_sources,
)
from mesh_assets.assets.ports import owners, product_tags
from mesh_assets.assets.publish import WAREHOUSE_POOL
from mesh_assets.infra.environment import Environment
from mesh_assets.infra.warehouse.base import Warehouse
from mesh_assets.product import addressing, kinds
from mesh_assets.product.errors import MeshSpecError, SpecIssue
from mesh_assets.product.registry import Product, Registry


def _manifest(registry: Registry, project: str, env: Environment, domain: str) -> Path:
    project_dir = registry.root / "dbt_projects" / project
    manifest = project_dir / "target" / "manifest.json"
    inputs = [project_dir / "dbt_project.yml", *project_dir.glob("models/**/*")]
    inputs += [m for m in [generated_macros_path(project_dir)] if m.exists()]
    inputs += [p.path for p in products_of_project(registry, project)]
    stale = not manifest.exists() or max(f.stat().st_mtime for f in inputs) > manifest.stat().st_mtime
    if stale:
        # A fresh clone or an edited model: parse once here so `make dev` always shows the current
        # project (about 5 s); `mesh prepare` does the same ahead of time.
        dg.get_dagster_logger().info(f"dbt manifest of {project} is missing or stale; running dbt parse")
        # The domain's warehouse: the profile is rendered as its runs render it (its role included).
        prepare(registry, project, env.dbt_target, warehouse=env.warehouse(domain))
    return manifest


class MeshDbtCli(DbtCliResource):
    """dagster-dbt's CLI resource without two costs it pays on every invocation before dbt even starts.

    Measured on the sales stage: about 4.5 s between the step's start and dbt's first log line, of which
    a `dbt --version` subprocess (to learn the version of the executable) and an in-process dbt adapter
    with the project's macros loaded (used only to fetch row counts and column metadata, which the mesh
    does not ask for: its audit step counts rows) take most. dbt itself runs exactly as before.
    Both members are private: they are listed in `mesh_assets.product.dagster_private.PRIVATE_NAMES`,
    whose test fails if dagster-dbt renames or changes them.
    """

    @property
    def _cli_version(self) -> Version:
        # The executable is the dbt beside this interpreter (`dbt_executable`): this dbt-core.
        return Version(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Any) -> None:
        return None


PARTIAL_PARSE_FILE = "partial_parse.msgpack"


def partial_parse_state(env: Environment, project: str, overrides: Mapping[str, Any]) -> Path:
    """The shared partial-parse state of `project` for one rendered profile (target + warehouse storage).

    dbt keeps `partial_parse.msgpack` in its target path, but each invocation gets its own target path
    (`<run>-<op>`), so the state is kept beside them, one per profile rendering: dbt discards it when the
    rendered connection differs, so runs on another warehouse file must not overwrite this one's.
    """
    rendering = json.dumps([env.dbt_target, sorted(overrides.items())], default=str)
    key = hashlib.sha256(rendering.encode()).hexdigest()[:16]
    return env.dbt_artifacts_dir(project) / "partial_parse" / f"{env.dbt_target}-{key}.msgpack"


@contextmanager
def reused_partial_parse(state: Path, target_path: Path) -> Iterator[None]:
    """Seed the invocation's target path with the shared partial-parse state; keep what dbt wrote back.

    Without a shared state yet, dagster-dbt seeds from the project's `target/` (what `mesh prepare`
    parsed, with the same profile rendering). The state is replaced atomically, so a concurrent
    invocation (Snowflake runs may overlap) reads an old or a new file, never half of one.
    """
    seeded = target_path / PARTIAL_PARSE_FILE
    if state.exists():
        target_path.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(state, seeded)
    try:
        yield
    finally:
        # dbt writes the state right after parsing, so even a failed build leaves a valid one.
        if seeded.exists():
            state.parent.mkdir(parents=True, exist_ok=True)
            partial = state.with_name(f"{state.name}.{os.getpid()}.tmp")
            shutil.copyfile(seeded, partial)
            os.replace(partial, state)


class MeshDbtTranslator(DagsterDbtTranslator):
    """Maps each dbt node onto the mesh: its product, role, asset key, owners and tags."""

    def __init__(
        self,
        registry: Registry,
        project: str,
        env: Environment,
        automation: dict[str, dg.AutomationCondition | None],
    ) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))
        self.env = env
        self.automation = automation
        self.models: dict[str, Product] = {}
        self.sources: dict[tuple[str, str], dg.AssetKey] = {}
        for product in products_of_project(registry, project):
            for name in kinds.kind_of(product).models(product.spec):
                self.models[name] = product
            for source in product.spec.source_inputs:
                self.sources[(source.system, source.extract)] = addressing.source_key(
                    product.spec.domain, product.spec.name, source.source
                )
            for declared in product.spec.product_inputs:
                resolved = registry.resolve(product, declared)
                if resolved is not None:
                    producer = resolved.producer.spec
                    table = resolved.relation.name
                    self.sources[(port_source_name(producer.domain), table)] = addressing.port_key(
                        producer.domain, producer.name, resolved.port.major
                    )

        # Column lineage of the project's models (cached per manifest and spec: see `column_lineage`).
        owned = {p.key: p for p in self.models.values()}
        self.lineage = lineage_cache.mesh_lineage(registry, list(owned.values()))

    def get_asset_spec(
        self, manifest: dict[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetSpec:
        base = super().get_asset_spec(manifest, unique_id, project)
        props = manifest["sources"].get(unique_id) or manifest["nodes"].get(unique_id) or {}
        if props.get("resource_type") == "source":
            key = self.sources.get((props["source_name"], props["name"]))
            return base.replace_attributes(key=key) if key is not None else base
        product = self.models.get(props.get("name", ""))
        if product is None:
            return base
        spec = product.spec
        lineage = column_lineage.dagster_lineage(self.lineage[product.key].models.get(props["name"]))
        if lineage is not None:
            base = base.merge_attributes(metadata={"dagster/column_lineage": lineage})
        return base.replace_attributes(
            key=addressing.internal_key(spec.domain, spec.name, props["name"]),
            group_name=spec.name,
            owners=owners(spec),
            tags=product_tags(spec, "internal"),
            kinds={self.env.target, "dbt"},
            automation_condition=self.automation.get(product.key),
        )

    def get_asset_check_spec(
        self,
        asset_spec: dg.AssetSpec,
        manifest: dict[str, Any],
        unique_id: str,
        project: DbtProject | None,
    ) -> dg.AssetCheckSpec | None:
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None:
            return None
        # Not blocking in Dagster: a blocking check fails the whole dbt step, and with it every port of
        # the project's other products. dbt itself skips what depends on a failed test, and the port of
        # the product whose test failed refuses to publish (`publish.dbt_failures`).
        return dg.AssetCheckSpec(
            name=spec.name,
            asset=spec.asset_key,
            description=spec.description,
            additional_deps=spec.additional_deps,
            metadata=spec.metadata,
            blocking=False,
        )


def dbt_project_assets(
    registry: Registry,
    domain: str,
    project: str,
    env: Environment,
    automation: dict[str, dg.AutomationCondition | None],
) -> dg.AssetsDefinition:
    """The dbt models of the project's products in `domain`, as one dagster-dbt multi-asset."""
    project_dir = registry.root / "dbt_projects" / project
    manifest_path = _manifest(registry, project, env, domain)
    translator = MeshDbtTranslator(registry, project, env, automation)
    dbt_project = DbtProject(project_dir=project_dir, profiles_dir=project_dir, target=env.dbt_target)
    manifest = json.loads(manifest_path.read_text())
    # Raw data a project seeds itself and reads as sources (jaffle-shop's `ecom`): the seed is the source.
    seeds_read_as_sources = set(seed_backed_sources(manifest).values())
    manifest = link_seeded_sources(manifest)
    # A consumer built in the same dbt invocation as its producer reads the producer's model, not its port.
    manifest = link_candidate_sources(manifest, candidate_sources(registry, project))
    _refuse_unowned_models(manifest, translator, registry, project)
    dbt_vars = vars_args(project_vars(registry, project))

    @dbt_assets(
        manifest=manifest,
        project=dbt_project,
        dagster_dbt_translator=translator,
        name=f"{domain}__{project}__dbt",
        pool=WAREHOUSE_POOL,
    )
    def _dbt(context: dg.AssetExecutionContext, warehouse: dg.ResourceParam[Warehouse]):
        # Artifacts and logs of this invocation go with the run's data, not into the project folder.
        invocation = f"{context.run.run_id}-{context.op_execution_context.op.name}"
        artifacts = env.dbt_artifacts_dir(project) / invocation
        dbt = MeshDbtCli(
            project_dir=dbt_project,
            # The environment's storage is in the invocation's own profile (a deferring one also attaches
            # prod): nothing reaches dbt through this process's environment.
            profiles_dir=str(warehouse.dbt_profiles_dir(project_dir, artifacts / "profile")),
            target=env.dbt_target,
            dbt_executable=dbt_executable(),
        )
        overrides = warehouse.dbt_output_overrides()
        state = partial_parse_state(env, project, overrides)
        seeded, excluded = None, []
        # dbt opens the DuckDB file itself: hold the warehouse's writer lock for the whole command.
        with warehouse.exclusive():
            selected = {key.path[-1] for key in context.selected_asset_keys}
            if selected & seeds_read_as_sources:
                # dbt does not link a source to the seed that fills it, so `dbt build` may run a model
                # before its seed exists: seed first, then build the rest.
                with reused_partial_parse(state, artifacts / "seed"):
                    seeded = dbt.cli(["seed", *dbt_vars], context=context, target_path=artifacts / "seed")
                    yield from seeded.stream()
                excluded = ["--exclude", "resource_type:seed"]
            # A failing node must not fail the step: the ports of the products it does not feed publish.
            with reused_partial_parse(state, artifacts):
                build = dbt.cli(
                    ["build", *excluded, *dbt_vars],
                    context=context,
                    target_path=artifacts,
                    raise_on_error=False,
                )
                yield from build.stream()
            yield from _report_failures(context, build, manifest, translator, seeded)

    return _dbt


def _report_failures(
    context: dg.AssetExecutionContext,
    build: Any,
    manifest: dict[str, Any],
    translator: MeshDbtTranslator,
    seeded: Any,
) -> Iterator[dg.AssetObservation]:
    """One observation per model dbt did not build, with dbt's reason; a failure of dbt itself raises.

    The port of a product whose model failed or was skipped is then not published (Dagster skips it),
    and `mesh run` names dbt's reason; every other product of the step publishes.
    """
    results = []
    for invocation in (seeded, build):
        if invocation is None:
            continue
        path = invocation.target_path / "run_results.json"
        if invocation.process.wait() >= 2 or not path.exists():
            # Not a node's failure but dbt's own (a compile error, a lost connection): nothing was judged.
            raise invocation.get_error() or dg.Failure(f"dbt exited {invocation.process.returncode}")
        results += json.loads(path.read_text()).get("results", [])
    for node, reason in failed_nodes(manifest, results).items():
        props = manifest["nodes"].get(node) or {}
        if props.get("name") not in translator.models:
            continue
        key = translator.get_asset_spec(manifest, node, None).key
        if key not in context.selected_asset_keys:
            continue
        context.log.error(f"dbt did not build {props['name']}: {reason}")
        yield dg.AssetObservation(asset_key=key, description=reason, metadata={DBT_FAILURE: reason})


BUILT_NODES = {"model", "seed", "snapshot"}
"""dbt resource types that become assets and must belong to a product."""


def _refuse_unowned_models(
    manifest: dict[str, Any], translator: MeshDbtTranslator, registry: Registry, project: str
) -> None:
    unowned = sorted(
        node["name"]
        for node in manifest["nodes"].values()
        # Seeds and snapshots too: anything dbt builds gets a domain-namespaced key through a product.
        if node.get("resource_type") in BUILT_NODES and node["name"] not in translator.models
    )
    if unowned:
        raise MeshSpecError(
            [
                SpecIssue(
                    registry.root / "dbt_projects" / project,
                    "models",
                    f"dbt node(s) {', '.join(unowned)} belong to no product",
                    "list each under a product's transformation.internals, or as a port's model",
                )
            ],
            registry.root,
        )
