"""What a mesh pays per product and per check: a domain of 50 scaffolded SQL products against one of 1.

Issue 29's goal: a domain of 50 SQL products scaffolded with `mesh new product … --kind sql --input
sales.orders` builds at ≤ 0.3 s per product, measured as (T50 - T1) / 49 in one run, so that every fixed
cost (interpreter, `import dagster`, the instance, the code location's load, the governance overview) falls
out and what remains is what a real mesh of hundreds of products pays for each one it adds.

In a temporary copy of the repository's mesh (domains, dbt projects, `dagster.yaml`, `workspace.yaml`;
`MESH_ROOT` points at it, `PYTHONPATH` puts it first so its new domains import), with its own warehouse,
data folder, extracts and Dagster instance: generate the extracts (10k orders), build the whole example
once (so `sales.orders` is published, every location warm), then create two domains with the self-service
scaffolder (`new_domain` / `new_product`, what `mesh new domain` and `mesh new product --kind sql --input
sales.orders` call, in one child process rather than 51 CLI starts): `bench_one` with one product and
`bench_many` with `--products` of them. Both domains live in the same mesh, so both runs load the same
registry and pay the same fixed costs. Timed, alternating, `--repeats` times each, each in a fresh
process: `mesh run --domain bench_one` (T1) and `mesh run --domain bench_many` (T50); CPU seconds of each
child are recorded beside wall seconds, since the 2-core machine is shared (the load average is recorded).

Checks per product are counted in the Dagster event log of the last one-product run (its asset-check
evaluations); the last many-product run's steps and event counts are recorded to show where the
per-product cost goes. `--profile` adds one many-product run under cProfile and prints its top functions.
Runtime with the defaults: about 5 minutes on the shared 2-core machine (~7 at load 4-5), most of it
the 50-product runs; `--repeats` sets the number of alternating pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from instance_ab import runs_since

ROOT = Path(__file__).resolve().parent.parent
GOAL_S_PER_PRODUCT = 0.3
ONE, MANY = "bench_one", "bench_many"
SCAFFOLD = """
import sys
from pathlib import Path
from mesh_assets.selfservice.scaffold import ProductRequest, new_domain, new_product

root, one, many, count = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
for domain, products in ((one, 1), (many, count)):
    new_domain(root, domain, "Products scaffolded by benchmarks/per_product.py")
    for n in range(products):
        request = ProductRequest(
            domain=domain, name=f"p{n:03d}", kind="sql", inputs=["sales.orders"],
            owner_team="bench_data", steward="bench@example.com",
        )
        new_product(root, request)
"""


def _copy_mesh(destination: Path) -> Path:
    """The repository's mesh, as `tests/conftest.copy_mesh` copies it, plus `workspace.yaml` (new domains)."""
    destination.mkdir(parents=True)
    shutil.copytree(ROOT / "domains", destination / "domains", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(
        ROOT / "dbt_projects",
        destination / "dbt_projects",
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"),
    )
    for name in ("dagster.yaml", "workspace.yaml"):
        shutil.copy(ROOT / name, destination / name)
    return destination


def _timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one child process; raises if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu


def _runs_since(home: Path, since: float) -> list[dict]:
    """Each Dagster run started after `since`: wall seconds, steps, and its events counted by type."""
    runs = []
    for instance, run, run_s, steps in runs_since(home, since, digits=3):
        events = instance.all_logs(run.run_id)
        kinds = Counter(e.dagster_event.event_type_value for e in events if e.dagster_event)
        checks = Counter(
            e.dagster_event.event_specific_data.asset_key.path[1]
            for e in events
            if e.dagster_event and e.dagster_event.event_type_value == "ASSET_CHECK_EVALUATION"
        )
        runs.append(
            {
                "job": run.job_name,
                "run_s": run_s,
                "events": len(events),
                "events_by_type": dict(kinds.most_common()),
                "check_evaluations_by_product": dict(checks),
                "steps": len(steps),
                "steps_total_s": round(sum(steps.values()), 2),
                "slowest_steps_s": dict(sorted(steps.items(), key=lambda kv: -kv[1])[:5]),
            }
        )
    return runs


def _profile(cmd: list[str], env: dict[str, str], cwd: Path, out: Path) -> list[dict]:
    """One run under cProfile: its top functions by cumulative time (the caller reads them)."""
    import pstats

    _timed([sys.executable, "-m", "cProfile", "-o", str(out), *cmd[1:]], env, cwd)
    stats = pstats.Stats(str(out))
    rows = []
    for (file, line, name), (_, calls, total, cumulative, _) in stats.stats.items():
        rows.append(
            {
                "function": f"{Path(file).name}:{line}:{name}",
                "calls": calls,
                "tottime_s": round(total, 2),
                "cumtime_s": round(cumulative, 2),
            }
        )
    return sorted(rows, key=lambda r: -r["cumtime_s"])[:60]


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def main(scale: int, products: int, repeats: int, profile: bool) -> dict:
    """Scaffold the two domains in a temporary mesh, time their builds alternating, count their checks."""
    load = [os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="mesh-bench-per-product-") as tmp:
        work = Path(tmp)
        repo = _copy_mesh(work / "repo")
        home = work / "dagster_home"
        home.mkdir()
        shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MESH_", "DAGSTER_"))}
        env.update(
            # The copy first (its new domains are the `domains` package), then this checkout's platform.
            PYTHONPATH=f"{repo}{os.pathsep}{ROOT}",
            MESH_ROOT=str(repo),
            MESH_DATA_DIR=str(work / "data"),
            MESH_DUCKDB_PATH=str(work / "mesh.duckdb"),
            MESH_SOURCES_DIR=str(work / "sources"),
            DAGSTER_HOME=str(home),
            DBT_SEND_ANONYMOUS_USAGE_STATS="false",
            # Never the developer's git identity or config: stewards come from the request.
            GIT_CONFIG_GLOBAL=str(work / "gitconfig"),
            GIT_CONFIG_NOSYSTEM="1",
        )
        mesh = [sys.executable, "-m", "mesh_assets.cli"]
        _timed([*mesh, "generate", "--scale", str(scale)], env, repo)
        example_s, _ = _timed([*mesh, "run"], env, repo)  # publishes sales.orders; every location warm
        scaffold_s, _ = _timed(
            [sys.executable, "-c", SCAFFOLD, str(repo), ONE, MANY, str(products)], env, repo
        )
        load.append(os.getloadavg())
        one, many = [*mesh, "run", "--domain", ONE], [*mesh, "run", "--domain", MANY]
        t1, t50, cpu1, cpu50 = [], [], [], []
        for _ in range(repeats):
            since = time.time()
            wall, cpu = _timed(one, env, repo)
            t1.append(wall)
            cpu1.append(cpu)
            one_runs = _runs_since(home, since)
            since = time.time()
            wall, cpu = _timed(many, env, repo)
            t50.append(wall)
            cpu50.append(cpu)
            many_runs = _runs_since(home, since)
            load.append(os.getloadavg())
        profiled = _profile(many, env, repo, work / "many.prof") if profile else []
    # The domain's own run (the governance run that follows it has checks of its own: the scorecard's).
    one_run = next(r for r in one_runs if "p000" in r["check_evaluations_by_product"])
    many_run = next(r for r in many_runs if "p000" in r["check_evaluations_by_product"])
    checks = one_run["check_evaluations_by_product"]["p000"]
    extra = products - 1
    t1_s, t50_s = _median(t1), _median(t50)
    per_product = round((t50_s - t1_s) / extra, 3)
    per_product_cpu = round((_median(cpu50) - _median(cpu1)) / extra, 3)
    result = {
        "scale_orders": scale,
        "products": products,
        "repeats": repeats,
        "example_mesh_run_s": round(example_s, 2),
        "scaffold_s": round(scaffold_s, 2),
        "t1_s": t1_s,
        "t50_s": t50_s,
        "s_per_extra_product": per_product,
        "cpu_s_per_extra_product": per_product_cpu,
        "checks_per_product": checks,
        "s_per_check": round(per_product / checks, 4),
        "goal_s_per_product": GOAL_S_PER_PRODUCT,
        "goal_met": per_product <= GOAL_S_PER_PRODUCT,
        "events_per_extra_product": round((many_run["events"] - one_run["events"]) / extra, 1),
        "steps_per_extra_product": round((many_run["steps"] - one_run["steps"]) / extra, 2),
        "dagster_run_s_per_extra_product": round((many_run["run_s"] - one_run["run_s"]) / extra, 3),
        "step_s_per_extra_product": round((many_run["steps_total_s"] - one_run["steps_total_s"]) / extra, 3),
        "t1_runs_s": [round(s, 2) for s in t1],
        "t50_runs_s": [round(s, 2) for s in t50],
        "t1_cpu_s": [round(s, 2) for s in cpu1],
        "t50_cpu_s": [round(s, 2) for s in cpu50],
        "os_load_avg": [[round(x, 2) for x in sample] for sample in load],
        "last_one_product_dagster_runs": one_runs,
        "last_many_products_dagster_runs": many_runs,
    }
    if profile:
        result["profile_many_top_cumulative"] = profiled
    printed = {k: v for k, v in result.items() if not k.startswith(("last_", "profile_"))}
    print(json.dumps(printed, indent=2))
    verdict = "met" if result["goal_met"] else "NOT met"
    print(
        f"per extra product {per_product} s ({checks} checks each, {result['s_per_check']} s per check); "
        f"goal ≤ {GOAL_S_PER_PRODUCT} s {verdict}"
    )
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=10_000)
    parser.add_argument("--products", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=2, help="alternating pairs of T1 and T50 runs")
    parser.add_argument("--profile", action="store_true", help="add one profiled many-product run")
    args = parser.parse_args()
    out = Path(__file__).parent / "results" / "per_product.json"
    out.write_text(json.dumps(main(args.scale, args.products, args.repeats, args.profile), indent=2) + "\n")
    print(f"recorded in {out}")
