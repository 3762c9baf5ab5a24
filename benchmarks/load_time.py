"""Code-location load time: each domain's definitions against a bare `dg.Definitions` of the same size.

Each measurement is a fresh interpreter (imports included), as Dagster's code server pays it: import the
location, build its definitions and resolve the asset graph. The baseline builds a bare
`dg.Definitions` with as many plain `AssetSpec`s (and checks) in the same way, in the same run.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

REPEATS = 5
LOCATION = """
import time; t = time.perf_counter()
from mesh_assets.run.runner import load_location
defs = load_location({name!r}); graph = defs.resolve_asset_graph()
print(time.perf_counter() - t, len(list(graph.get_all_asset_keys())), len(graph.asset_check_keys))
"""
BARE = """
import time; t = time.perf_counter()
import dagster as dg
specs = [dg.AssetSpec(["bench", str(i)]) for i in range({assets})]
checks = [dg.AssetCheckSpec(f"c{{i}}", asset=specs[i % len(specs)].key) for i in range({checks})]
@dg.multi_asset_check(specs=checks)
def _checks(): pass
defs = dg.Definitions(assets=specs, asset_checks=[_checks] if checks else [])
graph = defs.resolve_asset_graph()
print(time.perf_counter() - t, len(list(graph.get_all_asset_keys())), len(graph.asset_check_keys))
"""


def _measure(code: str) -> tuple[float, int, int]:
    runs = []
    for _ in range(REPEATS):
        out = subprocess.run(
            [sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
        runs.append((float(out[0]), int(out[1]), int(out[2])))
    return statistics.median(r[0] for r in runs), runs[0][1], runs[0][2]


def main() -> dict:
    """Measure every location and print a table of seconds and ratios."""
    results = {}
    print(f"{'location':<22}{'assets':>7}{'checks':>7}{'load s':>9}{'bare s':>9}{'ratio':>7}")
    for name in ["customers", "sales", "diagnostics", "commercial_analytics", "mesh"]:
        seconds, assets, checks = _measure(LOCATION.format(name=name))
        bare, _, _ = _measure(BARE.format(assets=assets, checks=checks))
        results[name] = {
            "assets": assets,
            "checks": checks,
            "load_s": round(seconds, 3),
            "bare_s": round(bare, 3),
            "ratio": round(seconds / bare, 2),
        }
        print(f"{name:<22}{assets:>7}{checks:>7}{seconds:>9.2f}{bare:>9.2f}{seconds / bare:>7.2f}")
    return results


if __name__ == "__main__":
    out = Path(__file__).parent / "results" / "load_time.json"
    out.write_text(json.dumps(main(), indent=2) + "\n")
    print(f"recorded in {out}")
