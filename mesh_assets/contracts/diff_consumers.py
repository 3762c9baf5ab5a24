"""Who reads which major of a producer: the consumers a contract change is named to."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mesh_assets.contracts.diff_rules import Consumer
from mesh_assets.product.spec import DataProductSpec, OutputPort
from mesh_assets.product.versions import Semver, VersionRangeError, satisfies


def readers(
    consumers: Iterable[DataProductSpec], producer: str, ports: Sequence[OutputPort]
) -> dict[int, list[Consumer]]:
    """Who reads which major of `producer` if it published `ports`, keyed by major.

    Each consumer reads the newest port inside its range, exactly as the registry resolves input ports;
    a consumer whose range matches no port (or is not a range) reads nothing.
    """
    found: dict[int, list[Consumer]] = {}
    for spec in consumers:
        if spec.key == producer:
            continue
        for declared in spec.product_inputs:
            if declared.product != producer:
                continue
            try:
                candidates = [p for p in ports if satisfies(p.version, declared.version)]
            except VersionRangeError:
                continue
            if not candidates:
                continue
            port = max(candidates, key=lambda p: Semver.parse(p.version))
            found.setdefault(port.major, []).append(Consumer.of(spec, declared))
    return found


def unique_consumers(consumers: Iterable[Consumer]) -> list[Consumer]:
    """Each consumer once (its first entry), in order."""
    seen: dict[str, Consumer] = {}
    for consumer in consumers:
        seen.setdefault(consumer.product, consumer)
    return list(seen.values())
