"""Large meshes keep parsed spec files across processes; a cached parse is exactly what parsing returns."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mesh_assets.product import registry, spec_cache

TEXT = "name: orders\nsunset: 2027-06-30\nports: [{version: 1.2.0, nullable: false}]\n"


@pytest.fixture
def cache_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache" / "specs.pickle"
    monkeypatch.setattr(spec_cache, "cache_file", lambda: path)
    return path


def _parsing_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(text: str) -> None:
        raise AssertionError("parsed although the cache holds this text")

    monkeypatch.setattr(spec_cache, "parse_yaml", refuse)


def test_a_cached_parse_in_a_later_process_is_what_parsing_returns(
    cache_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = spec_cache.SpecCache(cache_path)
    parsed = first.parse(TEXT)
    first.save()
    _parsing_refused(monkeypatch)
    again = spec_cache.SpecCache(cache_path).parse(TEXT)

    assert parsed == yaml.safe_load(TEXT)
    assert again == parsed
    assert again is not parsed


def test_an_edited_text_is_parsed_again(cache_path: Path) -> None:
    first = spec_cache.SpecCache(cache_path)
    first.parse(TEXT)
    first.save()

    edited = spec_cache.SpecCache(cache_path).parse(TEXT.replace("orders", "sales"))

    assert edited["name"] == "sales"


def test_bad_yaml_raises_as_parsing_does_and_is_not_kept(cache_path: Path) -> None:
    cache = spec_cache.SpecCache(cache_path)

    with pytest.raises(yaml.YAMLError):
        cache.parse("name: [unclosed\n")
    assert cache.used == {}


def test_a_corrupt_cache_file_is_ignored(cache_path: Path) -> None:
    cache_path.parent.mkdir(parents=True)
    cache_path.write_bytes(b"not a pickle")

    assert spec_cache.SpecCache(cache_path).parse(TEXT)["name"] == "orders"


def test_small_meshes_are_parsed_every_time() -> None:
    assert spec_cache.for_mesh(spec_cache.MIN_FILES - 1) is None
    assert spec_cache.for_mesh(spec_cache.MIN_FILES) is not None


def test_a_registry_loaded_from_the_cache_equals_the_parsed_one(
    mesh_copy: Path, cache_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spec_cache, "MIN_FILES", 1)
    registry._load.cache_clear()
    parsed = registry.load_registry(mesh_copy)
    registry._load.cache_clear()
    _parsing_refused(monkeypatch)
    cached = registry.load_registry(mesh_copy)
    registry._load.cache_clear()

    assert cache_path.exists()
    assert cached.products.keys() == parsed.products.keys()
    assert all(cached.products[k].spec == parsed.products[k].spec for k in parsed.products)
    assert [i.message for i in cached.issues] == [i.message for i in parsed.issues]
