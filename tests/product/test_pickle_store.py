"""The platform's caches between processes: unreadable is empty, writes are whole, failures cost only work."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from mesh_assets.product import pickle_store


def test_entries_written_are_read_back_and_no_partial_file_is_left(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "cache.pickle"
    assert pickle_store.write(path, {"a": [1, 2], "b": {"c": 3}})
    assert pickle_store.read(path) == {"a": [1, 2], "b": {"c": 3}}
    assert sorted(p.name for p in path.parent.iterdir()) == ["cache.pickle"]


A_PICKLED_LIST = pickle.dumps([1, 2])
"""Readable, but not the entries' dict."""


@pytest.mark.parametrize("content", [None, b"", b"\x80\x05truncated", A_PICKLED_LIST])
def test_a_missing_truncated_or_foreign_file_reads_as_empty(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "cache.pickle"
    if content is not None:
        path.write_bytes(content)
    assert pickle_store.read(path) == {}


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; the case cannot be made")
def test_a_cache_that_cannot_be_written_is_skipped_not_raised(tmp_path: Path) -> None:
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        assert pickle_store.write(folder / "cache.pickle", {"a": 1}) is False
    finally:
        folder.chmod(0o700)


def test_a_path_blocked_by_a_file_is_skipped_not_raised(tmp_path: Path) -> None:
    # Works as root too: a regular file where the cache's folder should be.
    (tmp_path / "blocked").write_text("not a folder")
    assert pickle_store.write(tmp_path / "blocked" / "cache.pickle", {"a": 1}) is False
