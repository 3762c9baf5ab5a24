"""The scorecard: every characteristic of every product, as plain data, markdown and an HTML page."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mesh_assets.govern.fitness.characteristics import CHARACTERISTICS
from mesh_assets.govern.fitness.facts import NO_FACTS, Facts, MeshIndex
from mesh_assets.govern.fitness.verdicts import MANDATORY, Characteristic, Result
from mesh_assets.product.registry import Product, Registry


@dataclass(frozen=True)
class ProductFitness:
    """Every characteristic of one product."""

    key: str
    domain: str
    name: str
    status: str
    results: tuple[Result, ...]

    @property
    def fit(self) -> bool:
        """Passes every characteristic."""
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[Result]:
        """The characteristics it fails."""
        return [r for r in self.results if not r.passed]

    @property
    def mandatory_failures(self) -> list[Result]:
        """The mandatory characteristics it fails."""
        return [r for r in self.results if not r.passed and r.mandatory]

    def result(self, characteristic: Characteristic) -> Result:
        """The result of one characteristic."""
        return next(r for r in self.results if r.characteristic == characteristic)


@dataclass(frozen=True)
class Scorecard:
    """The fitness of every product of the mesh."""

    products: tuple[ProductFitness, ...]
    mandatory: frozenset[Characteristic]
    facts: dict[str, str]
    """What the evaluation could observe beyond the specs (catalog, instance)."""
    unreadable: tuple[str, ...] = ()
    """Products whose spec does not parse: not scored, and they fail the mesh."""

    @property
    def passed(self) -> bool:
        """No product fails a mandatory characteristic, and every spec parses."""
        return not self.unreadable and all(not p.mandatory_failures for p in self.products)

    def summary(self) -> str:
        """One line for people."""
        fit = sum(p.fit for p in self.products)
        blocking = sum(bool(p.mandatory_failures) for p in self.products)
        text = (
            f"{len(self.products)} products: {fit} fit, {len(self.products) - fit} with red characteristics, "
            f"{blocking} failing a mandatory one"
        )
        if self.unreadable:
            text += f"; {len(self.unreadable)} spec(s) do not parse ({', '.join(self.unreadable)})"
        return text

    def domains(self) -> list[tuple[str, list[ProductFitness]]]:
        """Products grouped by domain, both sorted."""
        grouped: dict[str, list[ProductFitness]] = {}
        for product in self.products:
            grouped.setdefault(product.domain, []).append(product)
        return sorted(grouped.items())

    def to_dict(self) -> dict[str, Any]:
        """Everything, as plain data (the `--json` output)."""
        return {
            "passed": self.passed,
            "summary": self.summary(),
            "mandatory": sorted(c.value for c in self.mandatory),
            "facts": self.facts,
            "unreadable": list(self.unreadable),
            "products": [
                {
                    "key": p.key,
                    "domain": p.domain,
                    "status": p.status,
                    "fit": p.fit,
                    "mandatory_failures": [r.characteristic.value for r in p.mandatory_failures],
                    "characteristics": {
                        r.characteristic.value: {
                            "passed": r.passed,
                            "mandatory": r.mandatory,
                            "reason": r.reason,
                        }
                        for r in p.results
                    },
                }
                for p in self.products
            ],
        }

    def to_json(self) -> str:
        """`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2)

    def markdown(self) -> str:
        """The red/green table per domain, then the reason of every red cell (for the Dagster UI)."""
        header = ["product", "status", *(_header(c, self.mandatory) for c in CHARACTERISTICS)]
        lines = [
            f"**{self.summary()}.** Mandatory characteristics are marked *; "
            f"{'; '.join(f'{k}: {v}' for k, v in self.facts.items())}.",
            "",
        ]
        for domain, products in self.domains():
            lines += [f"### {domain}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            for product in products:
                cells = ["🟢" if r.passed else "🔴" for r in product.results]
                lines.append(f"| {product.name} | {product.status} | " + " | ".join(cells) + " |")
            lines.append("")
        red = [(p, r) for p in self.products for r in p.failures]
        if red:
            lines += ["### Why red", ""]
            lines += [
                f"- **{p.key}** {r.characteristic.label}{' (mandatory)' if r.mandatory else ''}: {r.reason}"
                for p, r in red
            ]
        return "\n".join(lines).rstrip() + "\n"

    def html(self, catalog_href: str | None = None) -> str:
        """A self-contained, shareable HTML page of the scorecard (no script, no external resource)."""
        import jinja2

        # The catalog's templates, but not its environment: the page stands alone (inline style, no links
        # but those to product pages), so it can be mailed or attached as it is.
        environment = jinja2.Environment(
            loader=jinja2.PackageLoader("mesh_assets.catalog", "templates"),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
            undefined=jinja2.StrictUndefined,
        )
        return environment.get_template("scorecard.html").render(
            summary=self.summary(),
            observed="; ".join(f"{k}: {v}" for k, v in self.facts.items()),
            generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            headers=[_header(c, self.mandatory) for c in CHARACTERISTICS],
            domains=self.domains(),
            catalog_href=catalog_href,
            red=[(p, r) for p in self.products for r in p.failures],
            products_all=self.products,
        )


def _header(characteristic: Characteristic, mandatory: frozenset[Characteristic]) -> str:
    return characteristic.label + ("*" if characteristic in mandatory else "")


def evaluate_product(
    product: Product, registry: Registry, facts: Facts = NO_FACTS, index: MeshIndex | None = None
) -> ProductFitness:
    """Every characteristic of one product."""
    index = index or MeshIndex.of(registry)
    results = []
    for characteristic, function in CHARACTERISTICS.items():
        verdict = function(product, registry, facts, index)
        mandatory = characteristic in MANDATORY and verdict.gating
        results.append(Result(characteristic, verdict.passed, verdict.reason, mandatory))
    spec = product.spec
    return ProductFitness(product.key, spec.domain, spec.name, spec.status.value, tuple(results))


def evaluate(registry: Registry, facts: Facts | None = None) -> Scorecard:
    """The scorecard of every product of the registry."""
    facts = facts or NO_FACTS
    index = MeshIndex.of(registry)
    products = tuple(
        evaluate_product(registry.products[key], registry, facts, index) for key in sorted(registry.products)
    )
    observed = {
        "catalog": (
            f"{facts.catalog.path} (built {facts.catalog.built_at:%Y-%m-%d %H:%M} UTC)"
            if facts.catalog is not None and facts.catalog.built_at is not None
            else "not checked"
        ),
        "instance": "SLO status of every port" if facts.runtime is not None else "not checked",
    }
    return Scorecard(products, MANDATORY, observed, tuple(sorted(registry.unreadable)))
