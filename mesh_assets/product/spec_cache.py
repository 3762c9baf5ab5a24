"""Parsed spec files, kept across processes for large meshes (where parsing YAML dominates loading).

PyYAML builds every node in Python even with libyaml: at 1,000 products, parsing is about 60% of
`load_registry` and of `mesh validate`. The cache maps a file's content digest to what `yaml` parsed, so
an edited file is simply a new entry (no modification times to trust) and a hit is exactly what parsing
would return. It is used only from `MIN_FILES` spec files on: below that, parsing costs less than
reading the cache would save, and test meshes never touch it. It lives beside the installed packages
(`<sys.prefix>/var/cache/mesh`), never in a working copy; a read-only installation just parses.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml

from mesh_assets.product import pickle_store

MIN_FILES = 200
"""Meshes with fewer spec files are parsed every time."""


def cache_file() -> Path:
    """Where parsed specs are kept."""
    return pickle_store.cache_dir() / "specs.pickle"


def parse_yaml(text: str) -> Any:
    """A spec file's YAML, parsed safely (libyaml when available)."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


class SpecCache:
    """Parsed YAML by content digest; `parse` is `parse_yaml` with memory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, Any] = pickle_store.read(path)
        self.used: dict[str, Any] = {}
        self.missed = False

    def parse(self, text: str) -> Any:
        """Parse `text` (raising what `parse_yaml` raises), or return the cached parse of the same text."""
        digest = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
        if digest in self.entries:
            data = self.entries[digest]
        else:
            data = parse_yaml(text)
            self.missed = True
        self.used[digest] = data
        return data

    def save(self) -> None:
        """Keep this load's entries (others are dropped, so the file never outgrows one mesh)."""
        if not self.missed and len(self.used) == len(self.entries):
            return
        pickle_store.write(self.path, self.used)


def for_mesh(files: int) -> SpecCache | None:
    """The cache when a mesh of `files` spec files is worth it, else None."""
    return SpecCache(cache_file()) if files >= MIN_FILES else None
