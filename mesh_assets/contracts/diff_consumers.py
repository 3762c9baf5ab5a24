"""Who reads which major of a producer: the consumers a contract change is named to."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mesh_assets.contracts.diff_versions import version_key
from mesh_assets.product.spec import DataProductSpec, OutputPort, ProductInput
from mesh_assets.product.versions import VersionRangeError, satisfies


@dataclass(frozen=True)
class Consumer:
    """A product reading another product's port, and the people who answer for it."""

    product: str
    """`<domain>.<product>` of the consumer."""
    team: str
    steward: str
    purpose: str
    version_range: str
    """The version range its input port declares."""
    preview: bool = False

    @classmethod
    def of(cls, spec: DataProductSpec, declared: ProductInput) -> Consumer:
        """The product `spec` as a consumer, through the input port it `declared`."""
        return cls(
            product=spec.key,
            team=spec.owner.team,
            steward=spec.owner.steward,
            purpose=declared.purpose,
            version_range=declared.version,
            preview=declared.preview,
        )

    @property
    def domain(self) -> str:
        """The consumer's domain."""
        return self.product.split(".")[0]

    def label(self) -> str:
        """`<product> (<team>, <steward>)`, as shown to people."""
        return f"{self.product} ({self.team}, {self.steward})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "product": self.product,
            "team": self.team,
            "steward": self.steward,
            "purpose": self.purpose,
            "version_range": self.version_range,
            "preview": self.preview,
        }


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
            port = max(candidates, key=lambda p: version_key(p.version))
            found.setdefault(port.major, []).append(Consumer.of(spec, declared))
    return found


def unique_consumers(consumers: Iterable[Consumer]) -> list[Consumer]:
    """Each consumer once (its first entry), in order."""
    seen: dict[str, Consumer] = {}
    for consumer in consumers:
        seen.setdefault(consumer.product, consumer)
    return list(seen.values())
