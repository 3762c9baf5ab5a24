"""`mesh run` imports the binding writers' libraries in the background, for stages that write bindings."""

from __future__ import annotations

import sys
from pathlib import Path

from mesh_assets.assets import bindings
from mesh_assets.product.registry import load_registry


def test_a_stage_without_file_bindings_preloads_nothing(repo_root: Path) -> None:
    orders = load_registry(repo_root).products["sales.orders"]

    assert bindings.preload(orders.spec.output_ports) is None


def test_a_stage_with_an_iceberg_binding_preloads_pyarrow_and_pyiceberg_in_a_daemon_thread(
    repo_root: Path,
) -> None:
    sales = load_registry(repo_root).products["sales.sales"]

    thread = bindings.preload(sales.spec.output_ports)

    assert thread is not None and thread.daemon
    thread.join()
    assert {*bindings.PRELOADED, *bindings.PRELOADED_ICEBERG} <= set(sys.modules)
