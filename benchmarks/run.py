"""`make bench`: every benchmark, each printing ratios against a baseline measured in the same run."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent

if __name__ == "__main__":
    for script, args in [
        ("load_time.py", []),
        ("build_mesh.py", ["--scale", "1000000"]),
        ("dbt_stage.py", []),
        ("floor.py", ["--scale", "10000", "--scale", "1000000"]),
        ("validate.py", []),
        ("instance_storage.py", []),
        ("checks.py", ["--scale", "1000000", "--scale", "10000000"]),
        ("sensor_tick.py", []),
        ("fitness.py", []),
        ("access.py", []),
        ("ci_gate.py", []),
        ("wap_split.py", ["--scale", "1000000"]),
        ("event_log.py", []),
        ("monitors.py", []),
        ("per_product.py", []),
    ]:
        print(f"== {script} {' '.join(args)}", flush=True)
        subprocess.run([sys.executable, str(HERE / script), *args], check=True)
