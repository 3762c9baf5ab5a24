"""Files of pickled entries the platform keeps between processes (parsed specs, column lineage).

One place for how they are kept: beside the installed packages (`<sys.prefix>/var/cache/mesh`), never in a
working copy; read as empty when missing, truncated or written by another Python; replaced atomically, so
a concurrent reader sees the old or the new file; and never an error, because a cache that cannot be
read or written only costs the work it would have saved (a read-only installation computes every time).
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path
from typing import Any


def cache_dir() -> Path:
    """Where the platform's caches live: beside the installed packages."""
    return Path(sys.prefix) / "var" / "cache" / "mesh"


def read(path: Path) -> dict[str, Any]:
    """The entries kept in `path`; empty when there is none or it cannot be read."""
    try:
        entries = pickle.loads(path.read_bytes())
    except Exception:  # missing, truncated or from another Python or format: start over
        return {}
    return entries if isinstance(entries, dict) else {}


def write(path: Path, entries: dict[str, Any]) -> bool:
    """Replace `path` with `entries` atomically; False when it cannot be written (the cache is skipped)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        partial.write_bytes(pickle.dumps(entries, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(partial, path)
    except OSError:
        return False
    return True
