"""Fitness functions over 1,000 generated products, against loading the same registry, in the same run.

The generated mesh is realistic on the axes that cost time: 20 domains of 50 products, 4 to 14 columns
of every logical type, one or two ports (the older deprecated), 0 to 3 inputs on earlier products
(approval-required producers approve their consumers), quality rules, PII columns, tags and roles drawn
from vocabularies, and examples on some columns. Same seed, same mesh.

Measured (median of `--repeats` runs, each on a fresh registry load, every served contract validated):
- baseline: `load_registry` of the generated mesh (YAML parse, spec models, cross-product validation);
- fitness: `fitness.evaluate` of every product, specs only (no catalog or instance facts).
Target: fitness under 2 s. Results in `benchmarks/results/fitness.json`.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

TARGET_S = 2.0
DOMAINS = 20
COLUMNS: list[dict[str, Any]] = [
    {"name": "customer_id", "type": "string", "examples": ["C000042"]},
    {"name": "order_id", "type": "bigint", "examples": [100234]},
    {"name": "sku", "type": "string", "examples": ["RGT-0042"]},
    {"name": "country_code", "type": "string", "examples": ["CH"]},
    {"name": "product_line", "type": "string"},
    {"name": "quantity", "type": "integer"},
    {"name": "units", "type": "bigint"},
    {"name": "amount", "type": "decimal", "precision": 14, "scale": 2},
    {"name": "unit_price", "type": "decimal", "precision": 12, "scale": 2},
    {"name": "share", "type": "double"},
    {"name": "is_active", "type": "boolean"},
    {"name": "created_at", "type": "timestamp"},
    {"name": "updated_at", "type": "timestamp"},
    {"name": "order_date", "type": "date"},
    {"name": "status", "type": "string", "examples": ["active"]},
    {"name": "city", "type": "string"},
    {"name": "contact_email", "type": "string", "pii": True},
    {"name": "contact_phone", "type": "string", "pii": True},
    {"name": "score", "type": "double"},
    {"name": "region", "type": "string"},
]
TAGS = ["sales", "revenue", "customers", "orders", "finance", "planning", "crm", "erp", "monthly", "eur"]
TAGS += ["lims", "instruments", "assays", "supply", "reagents", "service", "churn", "forecast", "pii"]
ROLES = ["analyst", "data_scientist", "sales_ops", "finance", "service_ops", "account_manager"]


def _spec(rng: random.Random, domain: str, name: str, inputs: list[tuple[str, int]]) -> dict[str, Any]:
    picked = rng.sample(COLUMNS[1:], rng.randint(3, 13))
    key = {"name": f"{name}_key", "type": "string", "nullable": False, "unique": True}
    if rng.random() < 0.7:
        key["examples"] = [f"{name.upper()}-0001"]
    columns = [key]
    for column in picked:
        entry = {k: v for k, v in column.items() if k != "examples" or rng.random() < 0.5}
        entry["description"] = f"The {column['name'].replace('_', ' ')} of the {name} record."
        columns.append(entry)
    key["description"] = f"Identifier of the {name} record."
    names = [c["name"] for c in columns]
    has_pii = any(c.get("pii") for c in columns)
    rules: list[dict[str, Any]] = []
    if "status" in names:
        rules.append({"type": "accepted_values", "column": "status", "values": ["active", "closed"]})
    if "quantity" in names:
        rules.append({"type": "range", "column": "quantity", "min": 1, "max": 10000})
    if "country_code" in names:
        rules.append({"type": "pattern", "column": "country_code", "regex": "^[A-Z]{2}$"})
    timestamps = [c["name"] for c in columns if c["type"] == "timestamp"]
    port: dict[str, Any] = {
        "version": f"{rng.randint(1, 3)}.{rng.randint(0, 9)}.0",
        "columns": columns,
        "primary_key": [key["name"]],
        "quality": {"row_count": {"min": rng.choice([1, 10, 100])}, "rules": rules},
    }
    if timestamps:
        port["event_time"] = timestamps[0]
    ports = [port]
    if rng.random() < 0.2:
        major = int(port["version"].split(".")[0])
        newer = {**copy.deepcopy(port), "version": f"{major + 1}.0.0"}
        deprecation = {"sunset": "2099-12-31", "replacement": str(major + 1), "reason": "Replaced by v2."}
        ports = [newer, {**port, "status": "deprecated", "deprecation": deprecation}]
    roles = rng.sample(ROLES, rng.randint(1, 3))
    spec: dict[str, Any] = {
        "name": name,
        "domain": domain,
        "title": f"Product {name}",
        "description": {
            "purpose": f"Generated product {name} of domain {domain}: records for benchmarking fitness.",
            "usage": "Join on the key column; aggregate by date or country.",
            "limitations": "Synthetic data generated for a benchmark.",
        },
        "owner": {"team": f"{domain}_team", "steward": f"steward.{domain}@example.com"},
        "product_type": rng.choice(["source-aligned", "aggregate", "consumer-aligned"]),
        "status": "active",
        "business_capability": "Benchmarking",
        "classification": "confidential" if has_pii else rng.choice(["internal", "confidential"]),
        "access": {"mode": rng.choice(["open", "open", "approval_required"])},
        "access_policy": {
            "allowed_roles": roles,
            "denied_roles": ["external_partner"] if rng.random() < 0.3 else [],
            "pii_handling": rng.choice(["mask", "hash", "remove"]),
        },
        "distribution_rights": {"redistribute_unmodified": False, "redistribute_modified": True},
        "data_sharing_agreement": {"reference": f"DSA-{domain}-{name}", "terms": "Internal use only."},
        "support": {"channel": f"#{domain}-data"},
        "slos": {"freshness": {"max_age": rng.choice(["6h", "24h", "2d"])}},
        "tags": rng.sample(TAGS, rng.randint(2, 5)),
        "input_ports": [{"product": key_, "version": f"^{major}"} for key_, major in inputs],
        "transformation": {"kind": "sql"},
        "output_ports": ports,
    }
    return spec


def _agreement(consumer: str, major: int) -> dict[str, Any]:
    """An approved product-to-product agreement (approvals are agreement files, not spec fields)."""
    when = "2026-11-01T00:00:00Z"
    decision = {"action": "approve", "by": "steward@example.com", "at": when, "reason": "Ok."}
    return {
        "consumer": {"kind": "product", "id": consumer},
        "major": major,
        "purpose": "Benchmark consumer reading its input.",
        "purpose_category": "data_product",
        "requested_by": "owner@example.com",
        "requested_at": "2026-11-01T00:00:00Z",
        "approval": "approved",
        "decisions": [decision],
    }


def generate(root: Path, products: int, seed: int = 7) -> Path:
    """Write a mesh of `products` generated specs (and their SQL files) under `root`."""
    rng = random.Random(seed)
    specs: dict[str, dict[str, Any]] = {}
    majors: dict[str, int] = {}
    approvals: dict[str, list[tuple[str, int]]] = {}
    for index in range(products):
        domain = f"domain_{index % DOMAINS:02d}"
        name = f"product_{index:04d}"
        earlier = list(specs)
        inputs = rng.sample(earlier, min(len(earlier), rng.randint(0, 3)))
        spec = _spec(rng, domain, name, [(k, majors[k]) for k in inputs])
        key = f"{domain}.{name}"
        for producer in inputs:
            if specs[producer]["access"]["mode"] == "approval_required":
                approvals.setdefault(producer, []).append((key, majors[producer]))
        specs[key] = spec
        majors[key] = max(int(p["version"].split(".")[0]) for p in spec["output_ports"])
    for key, spec in specs.items():
        domain, name = key.split(".")
        folder = root / "domains" / domain / "products" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "dataproduct.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        for port in spec["output_ports"]:
            (folder / f"{name}_v{port['version'].split('.')[0]}.sql").write_text("select 1 as x\n")
        for consumer, major in approvals.get(key, []):
            (folder / "access").mkdir(exist_ok=True)
            (folder / "access" / f"{consumer}.yaml").write_text(yaml.safe_dump(_agreement(consumer, major)))
    for index in range(DOMAINS):
        (root / "domains" / f"domain_{index:02d}" / "definitions.py").write_text("")
    return root


def main(products: int, repeats: int) -> dict[str, Any]:
    """Generate the mesh, measure both, print and return the results."""
    from mesh_assets.govern import fitness
    from mesh_assets.product import registry

    with tempfile.TemporaryDirectory(prefix="mesh-fitness-bench-") as folder:
        root = generate(Path(folder), products)
        fitness.evaluate(registry.load_registry(root))  # imports and first-use costs out of the way
        loads, evaluations, validations = [], [], 0
        scorecard = None
        for _ in range(repeats):
            registry._load.cache_clear()
            started = time.perf_counter()
            loaded = registry.load_registry(root)
            loads.append(time.perf_counter() - started)
            before = fitness.odcs_validations()
            started = time.perf_counter()
            scorecard = fitness.evaluate(loaded)
            evaluations.append(time.perf_counter() - started)
            validations = fitness.odcs_validations() - before
        assert scorecard is not None
        ports = sum(len(p.spec.output_ports) for p in loaded.products.values())
        columns = sum(len(port.columns) for p in loaded.products.values() for port in p.spec.output_ports)
        load_s, fitness_s = statistics.median(loads), statistics.median(evaluations)
        results = {
            "products": len(loaded.products),
            "ports": ports,
            "columns": columns,
            "spec_errors": len(loaded.errors),
            "repeats": repeats,
            "load_registry_s": round(load_s, 3),
            "fitness_s": round(fitness_s, 3),
            "ratio_fitness_to_load": round(fitness_s / load_s, 2),
            "odcs_schema_validations": validations,
            "target_s": TARGET_S,
            "under_target": fitness_s < TARGET_S,
            "fit_products": sum(p.fit for p in scorecard.products),
            "python": sys.version.split()[0],
        }
    header = ("products", 9), ("ports", 7), ("columns", 9), ("load s", 9), ("fitness s", 11), ("ratio", 7)
    print("".join(f"{name:>{width}}" for name, width in header) + f"{'validations':>13}")
    print(
        f"{results['products']:>9}{ports:>7}{columns:>9}{load_s:>9.3f}{fitness_s:>11.3f}"
        f"{fitness_s / load_s:>7.2f}{validations:>13}"
    )
    verdict = "under" if fitness_s < TARGET_S else "OVER"
    print(
        f"fitness of {results['products']} products: {fitness_s:.2f}s, {verdict} the {TARGET_S:.0f}s target"
    )
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    out = Path(__file__).parent / "results" / "fitness.json"
    measured = main(args.products, args.repeats)
    out.write_text(json.dumps(measured, indent=2) + "\n")
    print(f"recorded in {out}")
