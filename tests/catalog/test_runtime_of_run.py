"""The ports' runtime is read once per governance run, shared by its catalog and scorecard steps, and read
again for another run or once the specs changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh_assets.catalog import runtime
from mesh_assets.product.registry import Registry


def test_one_governance_run_reads_the_ports_runtime_once_and_another_run_reads_it_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads: list[tuple[object, Registry]] = []

    def read(instance: object, registry: Registry) -> dict:
        reads.append((instance, registry))
        return {"read": len(reads)}

    monkeypatch.setattr(runtime, "read_runtime", read)
    monkeypatch.setattr(runtime, "_LAST_RUN", [])
    mesh, edited = Registry(root=Path("mesh")), Registry(root=Path("mesh"))
    catalog_step = runtime.runtime_of_run("run-1", "instance", mesh)
    scorecard_step = runtime.runtime_of_run("run-1", "instance", mesh)
    assert scorecard_step is catalog_step and len(reads) == 1
    assert runtime.runtime_of_run("run-2", "instance", mesh) == {"read": 2}  # the next run: fresh
    # A spec edited between the two steps: `load_registry` gave a new registry, so the runtime is re-read.
    assert runtime.runtime_of_run("run-2", "instance", edited) == {"read": 3}
