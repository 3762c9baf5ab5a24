"""Test helpers that edit product specs (and other files) in a private copy of the mesh."""

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


def write_later(path: Path, text: str) -> None:
    """Write a file and move its mtime on, so the registry's (root, mtimes) cache rereads it."""
    # Two writes within the filesystem's mtime resolution would look unchanged to the cache.
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    now = path.stat()
    if now.st_mtime_ns <= before:
        os.utime(path, ns=(now.st_atime_ns, before + 1_000_000_000))


def edit_spec(root: Path, key: str, change: Callable[[dict[str, Any]], object]) -> Path:
    """Apply `change` to a product's spec (as a mapping) and write it back; returns the spec file."""
    path = spec_path(root, key)
    data = yaml.safe_load(path.read_text())
    change(data)
    write_later(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path
