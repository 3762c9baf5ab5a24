"""The honest floor: the example mesh's own transformations on DuckDB, no platform, vs `mesh run`.

The floor is built from the specs, so it follows the mesh as products change. For every product, in the
order `mesh run` builds them (producers first):
- each source extract lands as text, exactly as the platform lands it (`read_csv(..., all_varchar)`);
- a SQL product's internals and ports run their SQL rendered by `mesh_assets.assets.builders.sql.render`
  (the same `input()`/`source()`/`ref()` resolution, PII protection included);
- a dbt product's models run the SQL dbt compiled (`dbt compile` once, before any timing), one
  `CREATE TABLE ... AS <compiled SQL>` per model in the manifest's dependency order;
- a Python product's function is called directly with the frames of its declared inputs;
- each port's result is written straight to the published table, projected onto its contract's types in
  the same statement (what consumers read must have the promised types).
No Dagster, no checks, no candidate/staging copies, no dbt tests, no locks, no governance overview.

Rendering and compiling happen in this process before the clock starts; the floor itself runs in a
fresh child process that imports only duckdb (and pandas, for the Python products), so process start is
paid on both sides. Measured side by side in one run, alternating: the floor and `mesh run` (the whole
mesh, in a fresh process, on its own warehouse file after one cold run that parses dbt and creates the
Dagster instance), and a plain `dbt build` of `dbt_projects/sales` on the mesh's warehouse file (the
issue's 10k goal: the whole `mesh run` at most 4x that build).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


# --- the plan: built from the specs, before any timing --------------------------------------------------


def _casts(columns) -> str:
    from mesh_assets.product.spec import portable_sql_type

    return ", ".join(f'CAST("{c.name}" AS {portable_sql_type(c)}) AS "{c.name}"' for c in columns)


def _ordered_internals(product, registry) -> list[tuple[str, str]]:
    """(name, rendered SQL) of each internal model, in dependency order within the product."""
    from mesh_assets.assets.builders import sql as sql_builder
    from mesh_assets.product import addressing

    spec = product.spec
    rendered = {n: sql_builder.render(product, registry, n) for n in spec.transformation.internals}
    keys = {addressing.internal_key(spec.domain, spec.name, n): n for n in rendered}
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        for dep in rendered[name].deps:
            if dep in keys:
                visit(keys[dep])
        order.append(name)

    for name in rendered:
        visit(name)
    return [(name, rendered[name].sql) for name in order]


def _dbt_compile(project: str, work: Path, duckdb_path: Path) -> dict:
    """`dbt compile` the project once against the floor's warehouse path; its manifest."""
    project_dir = ROOT / "dbt_projects" / project
    target = work / f"dbt-{project}-target"
    env = {**os.environ, "MESH_DUCKDB_PATH": str(duckdb_path), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    dbt = str(Path(sys.executable).with_name("dbt"))
    cmd = [dbt, "compile", "--quiet", "--project-dir", str(project_dir), "--profiles-dir", str(project_dir)]
    cmd += ["--target", "local", "--target-path", str(target), "--log-path", str(work / "dbt-logs")]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise RuntimeError(f"dbt compile failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return json.loads((target / "manifest.json").read_text())


def _dbt_models(manifest: dict, names: set[str]) -> list[dict]:
    """The compiled models named `names`, in the manifest's dependency order."""
    nodes = {
        uid: node
        for uid, node in manifest["nodes"].items()
        if node["resource_type"] == "model" and node["name"] in names
    }
    order: list[str] = []

    def visit(uid: str) -> None:
        if uid in order or uid not in nodes:
            return
        for dep in nodes[uid]["depends_on"]["nodes"]:
            visit(dep)
        order.append(uid)

    for uid in sorted(nodes):
        visit(uid)
    return [
        {
            "kind": "sql",
            "what": f"dbt model {nodes[uid]['name']}",
            "schema": nodes[uid]["schema"],
            "sql": f"CREATE OR REPLACE TABLE {nodes[uid]['relation_name']} AS {nodes[uid]['compiled_code']}",
        }
        for uid in order
    ]


def build_plan(work: Path, duckdb_path: Path, sources_dir: Path) -> list[dict]:
    """Every product's steps, producers first: each a SQL statement or a direct Python call."""
    from mesh_assets.product import access, addressing
    from mesh_assets.product.registry import GOVERNANCE_DOMAIN, load_registry, topological_order
    from mesh_assets.product.spec import DbtTransformation

    registry = load_registry(ROOT)
    registry.raise_for_errors()
    manifests: dict[str, dict] = {}
    plan: list[dict] = []
    for product in topological_order(registry):
        spec = product.spec
        if spec.domain == GOVERNANCE_DOMAIN:
            continue
        steps: list[dict] = []
        for source in spec.source_inputs:
            relation = addressing.source_relation(spec.domain, source.source)
            path = str(sources_dir / source.system / f"{source.extract}.{source.format}").replace("'", "''")
            reader = (
                f"read_csv('{path}', header = true, all_varchar = true)"
                if source.format == "csv"
                else f"read_parquet('{path}')"
            )
            steps.append(
                {
                    "kind": "sql",
                    "what": f"land {source.source}",
                    "schema": relation.schema,
                    "sql": f"CREATE OR REPLACE TABLE {relation.sql} AS SELECT * FROM {reader}",
                }
            )
        transformation = spec.transformation
        if transformation.kind == "sql":
            from mesh_assets.assets.builders import sql as sql_builder

            for name, sql in _ordered_internals(product, registry):
                relation = addressing.internal_relation(spec.domain, spec.name, name)
                steps.append(
                    {
                        "kind": "sql",
                        "what": f"internal {name}",
                        "schema": relation.schema,
                        "sql": f"CREATE OR REPLACE TABLE {relation.sql} AS {sql}",
                    }
                )
        if isinstance(transformation, DbtTransformation):
            if transformation.project not in manifests:
                manifests[transformation.project] = _dbt_compile(transformation.project, work, duckdb_path)
            names = {*transformation.internals, *(spec.port_model(p) for p in spec.output_ports)}
            steps += _dbt_models(manifests[transformation.project], names)
        for port in spec.output_ports:
            published = addressing.port_relation(spec.domain, spec.name, port.major)
            casts = _casts(port.columns)
            model = spec.port_model(port)
            if transformation.kind == "sql":
                select = sql_builder.render(product, registry, model).sql
                sql = f"CREATE OR REPLACE TABLE {published.sql} AS SELECT {casts} FROM ({select})"
                steps.append(
                    {"kind": "sql", "what": f"port v{port.major}", "schema": published.schema, "sql": sql}
                )
            elif transformation.kind == "python":
                from mesh_assets.assets.builders.python import input_relations

                protected = access.input_queries(product, registry, "duckdb")
                inputs = {
                    name: protected.get(name, f"SELECT * FROM {relation.sql}")
                    for name, (relation, _) in input_relations(product, registry).items()
                }
                steps.append(
                    {
                        "kind": "python",
                        "what": f"port v{port.major}",
                        "schema": published.schema,
                        "module": str(product.folder / transformation.module),
                        "function": model,
                        "inputs": inputs,
                        "sql": f"CREATE OR REPLACE TABLE {published.sql} AS SELECT {casts} FROM _floor_frame",
                    }
                )
            else:  # dbt built the candidate into `<domain>_internal.<model>`
                candidate = addressing.Relation(spec.domain + addressing.INTERNAL_SCHEMA_SUFFIX, model)
                sql = f"CREATE OR REPLACE TABLE {published.sql} AS SELECT {casts} FROM {candidate.sql}"
                steps.append(
                    {"kind": "sql", "what": f"port v{port.major}", "schema": published.schema, "sql": sql}
                )
        plan.append({"product": spec.key, "kind": transformation.kind, "steps": steps})
    return plan


# --- the floor itself: run in a fresh process ------------------------------------------------------------


def execute(plan_path: Path, duckdb_path: Path) -> dict:
    """Run the plan on `duckdb_path` (in this process); seconds per product and in all."""
    started = time.perf_counter()
    import importlib.util

    import duckdb

    plan = json.loads(plan_path.read_text())
    connection = duckdb.connect(str(duckdb_path))
    schemas: set[str] = set()
    per_product: dict[str, float] = {}
    for product in plan:
        product_started = time.perf_counter()
        for step in product["steps"]:
            if step["schema"] not in schemas:
                connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{step["schema"]}"')
                schemas.add(step["schema"])
            if step["kind"] == "python":
                spec = importlib.util.spec_from_file_location(f"floor_{len(per_product)}", step["module"])
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                frames = {name: connection.execute(sql).df() for name, sql in step["inputs"].items()}
                frame = getattr(module, step["function"])(frames)
                connection.register("_floor_frame", frame)
                connection.execute(step["sql"])
                connection.unregister("_floor_frame")
            else:
                connection.execute(step["sql"])
        per_product[product["product"]] = round(time.perf_counter() - product_started, 3)
    connection.close()
    return {"in_process_s": round(time.perf_counter() - started, 3), "products_s": per_product}


# --- the comparison ----------------------------------------------------------------------------------------


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Wall seconds and stdout of one child process; raises if it fails."""
    started = time.perf_counter()
    result = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return seconds, result.stdout


def _port_rows(plan: list[dict], *files: Path) -> dict[str, list[int]]:
    """Rows of every published port in each warehouse file: the floor must build what the mesh builds."""
    import duckdb

    tables = [
        s["sql"].split(" AS ")[0].removeprefix("CREATE OR REPLACE TABLE ") for p in plan for s in p["steps"]
    ]
    ports = [t for t in tables if "_internal" not in t]
    counts: dict[str, list[int]] = {t: [] for t in ports}
    for path in files:
        with duckdb.connect(str(path), read_only=True) as connection:
            for table in ports:
                counts[table].append(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    return counts


def _dagster_profile(home: Path, since: float) -> list[dict]:
    """The stages of the last `mesh run`: each Dagster run's seconds and its steps' (`dbt_stage.py`'s)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from dbt_stage import _dagster_profile as profile

    return profile(home, since)


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def _plain_dbt(work: Path, duckdb_path: Path) -> list[str]:
    project = ROOT / "dbt_projects" / "sales"
    dbt = str(Path(sys.executable).with_name("dbt"))
    return [
        dbt, "build", "--project-dir", str(project), "--profiles-dir", str(project), "--target", "local",
        "--target-path", str(work / "plain-target"), "--log-path", str(work / "plain-logs"),
    ]  # fmt: skip


def main(scale: int, repeats: int) -> dict:
    """Generate extracts at `scale`; time the floor, `mesh run` and a plain dbt build, alternating."""
    with tempfile.TemporaryDirectory(prefix="mesh-bench-floor-") as tmp:
        work = Path(tmp)
        mesh_db, floor_db = work / "mesh" / "mesh.duckdb", work / "floor" / "mesh.duckdb"
        mesh_db.parent.mkdir()
        floor_db.parent.mkdir()
        env = {
            **os.environ,
            "MESH_DATA_DIR": str(work / "data"),
            "MESH_DUCKDB_PATH": str(mesh_db),
            "MESH_SOURCES_DIR": str(work / "sources"),
            "DAGSTER_HOME": str(work / "dagster_home"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
        env.pop("MESH_TARGET", None)
        (work / "dagster_home").mkdir()
        (work / "dagster_home" / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
        generate_s, _ = _timed(
            [sys.executable, "-m", "mesh_assets.cli", "generate", "--scale", str(scale)], env
        )

        plan = build_plan(work, floor_db, work / "sources")
        floor_db.unlink(missing_ok=True)  # dbt compile opened it; the floor starts from an empty file
        plan_path = work / "plan.json"
        plan_path.write_text(json.dumps(plan))
        floor_cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--execute",
            str(plan_path),
            str(floor_db),
        ]
        mesh_cmd = [sys.executable, "-m", "mesh_assets.cli", "run"]

        mesh_cold_s, _ = _timed(mesh_cmd, env)  # parses dbt for this warehouse file, creates the instance
        _timed(_plain_dbt(work, mesh_db), env)  # the plain build's own first (full) parse
        floor_s, floor_inner, mesh_s, dbt_s = [], [], [], []
        for _ in range(repeats):
            seconds, out = _timed(floor_cmd, env)
            floor_s.append(seconds)
            floor_inner.append(json.loads(out))
            since = time.time()
            mesh_s.append(_timed(mesh_cmd, env)[0])
            dbt_s.append(_timed(_plain_dbt(work, mesh_db), env)[0])
        ports = _port_rows(plan, mesh_db, floor_db)
        dagster_runs = _dagster_profile(work / "dagster_home", since)
    floor_median, mesh_median, dbt_median = _median(floor_s), _median(mesh_s), _median(dbt_s)
    last = floor_inner[-1]
    result = {
        "scale_orders": scale,
        "repeats": repeats,
        "measured_under_load": "2 cores shared with two other people's work; see os_load_avg",
        "os_load_avg": [round(x, 2) for x in os.getloadavg()],
        "generate_s": round(generate_s, 1),
        "floor_s": floor_median,
        "floor_in_process_s": _median([r["in_process_s"] for r in floor_inner]),
        "mesh_run_s": mesh_median,
        "ratio_mesh_to_floor": round(mesh_median / floor_median, 2),
        "plain_dbt_build_sales_s": dbt_median,
        "ratio_mesh_to_plain_dbt_build": round(mesh_median / dbt_median, 2),
        "mesh_run_cold_s": round(mesh_cold_s, 2),
        "port_rows_mesh_vs_floor": ports,
        "floor_builds_the_same_ports": all(m == f for m, f in ports.values()),
        "floor_products_s": last["products_s"],
        "last_mesh_run_dagster_runs": dagster_runs,
        "last_mesh_run_in_dagster_runs_s": round(sum(r["run_s"] for r in dagster_runs), 2),
        "floor_steps": {p["product"]: [s["what"] for s in p["steps"]] for p in plan},
        "floor_runs_s": [round(s, 2) for s in floor_s],
        "mesh_run_runs_s": [round(s, 2) for s in mesh_s],
        "plain_dbt_build_runs_s": [round(s, 2) for s in dbt_s],
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", type=int, action="append", help="orders (repeatable; default 10k and 1M)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--execute", nargs=2, metavar=("PLAN", "DUCKDB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # this tree's mesh_assets, not another checkout's editable install
    if args.execute:
        print(json.dumps(execute(Path(args.execute[0]), Path(args.execute[1]))))
        sys.exit(0)
    for scale in args.scale or [10_000, 1_000_000]:
        out = Path(__file__).parent / "results" / f"floor_{scale}.json"
        out.write_text(json.dumps(main(scale, args.repeats), indent=2) + "\n")
        print(f"recorded in {out}")
