"""Test helpers that edit product specs in a private copy of the mesh."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml


def spec_path(root: Path, key: str) -> Path:
    """The `dataproduct.yaml` of `<domain>.<product>` under `root`."""
    domain, name = key.split(".")
    return root / "domains" / domain / "products" / name / "dataproduct.yaml"


def edit_spec(root: Path, key: str, change: Callable[[dict[str, Any]], object]) -> Path:
    """Change a product's spec and move its mtime on, so the registry cache rereads it."""
    path = spec_path(root, key)
    before = path.stat().st_mtime_ns
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))
    return path
