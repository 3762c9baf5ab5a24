"""`mesh validate` on the example mesh and on 1,000 generated products, against the cost of starting.

Each measurement is `mesh validate` in a fresh process (what a developer and CI run), median of
`--repeats`. Baselines, same run: the interpreter alone (`python -c pass`) and `import dagster`, which
every `mesh` command pays (the CLI resolves the environment first; `mesh_assets.infra.environment`
imports dagster). Goals (issue 15): 1.5 s for the example mesh, 3 s for 1,000 products.

The generated mesh is `fitness.generate`'s (20 domains, 1,000 SQL products, 1,183 ports), with each
port's SQL rewritten to read every declared input through `{{ input() }}` and name the port's columns,
so the renderer and the back-door lint do real work on distinct files. Also recorded: the import of
great-expectations, which `mesh validate` pays only when an expectation (or a GX version) is new to its
verdict cache (`mesh_assets.govern.validate.verdict_cache_dir`), and the generated mesh validated without
the parsed-spec cache (`mesh_assets.product.spec_cache`), as the first validate of a new mesh runs.
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

import yaml

ROOT = Path(__file__).resolve().parent.parent
GOALS_S = {"example": 1.5, "generated_1000": 3.0}
NO_SPEC_CACHE = (
    "import mesh_assets.product.spec_cache as c; c.MIN_FILES = 10**9; "
    "from mesh_assets.cli.app import main; main()"
)


def _timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    """Wall seconds of one child; a validate must reach its summary line (exit 1 = issues found)."""
    started = time.perf_counter()
    result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    validated = result.returncode in (0, 1) and "output ports in" in result.stdout
    if result.returncode != 0 and not validated:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return seconds


def _median(cmd: list[str], env: dict[str, str], cwd: Path, repeats: int) -> tuple[float, list[float]]:
    runs = [_timed(cmd, env, cwd) for _ in range(repeats)]
    return round(statistics.median(runs), 3), [round(r, 3) for r in runs]


def generate(root: Path, products: int) -> Path:
    """`fitness.generate`'s mesh, each port's SQL reading its declared inputs and naming its columns."""
    sys.path.insert(0, str(Path(__file__).parent))
    import fitness

    fitness.generate(root, products)
    for spec_file in sorted((root / "domains").glob("*/products/*/dataproduct.yaml")):
        spec = yaml.safe_load(spec_file.read_text())
        inputs = [i["product"] for i in spec["input_ports"]]
        for port in spec["output_ports"]:
            major = port["version"].split(".")[0]
            columns = ",\n    ".join(f'cast(null as varchar) as "{c["name"]}"' for c in port["columns"])
            if inputs:
                reads = "\n".join(
                    f"{'from' if n == 0 else 'cross join'} {{{{ input('{key}') }}}} as i{n}"
                    for n, key in enumerate(inputs)
                )
            else:
                reads = "from (values (1)) as seed (x)"
            sql = f"-- {spec['domain']}.{spec['name']} v{major}: generated for the validate benchmark\n"
            sql += f"select\n    {columns}\n{reads}\n"
            (spec_file.parent / f"{spec['name']}_v{major}.sql").write_text(sql)
    return root


def main(products: int, repeats: int) -> dict:
    """Time `mesh validate` on both meshes and the baselines, alternating nothing (each is short)."""
    python = sys.executable
    mesh = [python, "-m", "mesh_assets.cli", "validate"]
    with tempfile.TemporaryDirectory(prefix="mesh-bench-validate-") as tmp:
        work = Path(tmp)
        env = {**os.environ, "MESH_DATA_DIR": str(work / "data"), "PYTHONPATH": str(ROOT)}
        env.pop("MESH_ROOT", None)
        python_s, _ = _median([python, "-c", "pass"], env, ROOT, repeats)
        dagster_s, _ = _median([python, "-c", "import dagster"], env, ROOT, repeats)
        gx_s, _ = _median([python, "-c", "import great_expectations"], env, ROOT, 1)
        first_s = round(_timed(mesh, env, ROOT), 3)  # fills the GX verdict cache if it was empty
        example_s, example_runs = _median(mesh, env, ROOT, repeats)
        generated = generate(work / "generated", products)
        generated_env = {**env, "MESH_ROOT": str(generated), "MESH_DATA_DIR": str(generated / "data")}
        generated_s, generated_runs = _median(mesh, generated_env, generated, repeats)
        # The same without the parsed-spec cache (what the first validate of a new mesh pays).
        uncached = [python, "-c", NO_SPEC_CACHE, "validate"]
        uncached_s, _ = _median(uncached, generated_env, generated, max(1, repeats // 2))
    result = {
        "repeats": repeats,
        "measured_under_load": "2 cores shared with two other people's work; see os_load_avg",
        "os_load_avg": [round(x, 2) for x in os.getloadavg()],
        "python_start_s": python_s,
        "import_dagster_s": dagster_s,
        "import_great_expectations_s": gx_s,
        "example_s": example_s,
        "example_goal_s": GOALS_S["example"],
        "example_ratio_to_import_dagster": round(example_s / dagster_s, 2),
        "example_first_run_s": first_s,
        "generated_products": products,
        "generated_s": generated_s,
        "generated_goal_s": GOALS_S["generated_1000"],
        "generated_ratio_to_import_dagster": round(generated_s / dagster_s, 2),
        "generated_without_spec_cache_s": uncached_s,
        "example_runs_s": example_runs,
        "generated_runs_s": generated_runs,
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    out = Path(__file__).parent / "results" / "validate.json"
    out.write_text(json.dumps(main(args.products, args.repeats), indent=2) + "\n")
    print(f"recorded in {out}")
