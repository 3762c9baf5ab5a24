"""A minimal valid product spec (one port, two columns), as a mapping to edit: shared by the tests."""

from __future__ import annotations

MINIMAL_SPEC: dict = {
    "name": "widgets",
    "domain": "sales",
    "title": "Widgets",
    "description": {
        "purpose": "Every widget we sell.",
        "usage": "Join on widget_id.",
        "limitations": "None.",
    },
    "owner": {"team": "sales_data", "steward": "ana.lopez@example.com"},
    "product_type": "source-aligned",
    "status": "active",
    "business_capability": "Order management",
    "classification": "internal",
    "access": {"mode": "open"},
    "access_policy": {},
    "distribution_rights": {"redistribute_unmodified": False, "redistribute_modified": True},
    "data_sharing_agreement": {"reference": "DSA-1", "terms": "Internal use."},
    "support": {"channel": "#sales-data"},
    "slos": {"freshness": {"max_age": "24h"}},
    "transformation": {"kind": "sql"},
    "output_ports": [
        {
            "version": "1.0.0",
            "columns": [
                {"name": "widget_id", "type": "string", "nullable": False, "description": "Widget id."},
                {"name": "price", "type": "decimal", "precision": 12, "scale": 2, "description": "Price."},
            ],
            "primary_key": ["widget_id"],
        }
    ],
}


def fingerprints(environ: dict[str, str], key: str = "sales.sales", major: int = 2) -> dict[str, object]:
    """The table's and each binding's fingerprint (rows, schema, checksum) of a port in a built mesh."""
    import duckdb

    from mesh_assets.assets.bindings import fingerprint, places, read_binding
    from mesh_assets.infra import environment
    from mesh_assets.product import addressing
    from mesh_assets.product.registry import load_registry

    env = environment.resolve(environ=environ)
    spec = load_registry(env.root).products[key].spec
    port = next(p for p in spec.output_ports if p.major == major)
    relation = addressing.port_relation(spec.domain, spec.name, major)
    with duckdb.connect(str(env.duckdb_path), read_only=True) as connection:
        table = connection.sql(f"SELECT * FROM {relation.sql}").to_arrow_table()
    where = places(env, spec, port)
    return {"table": fingerprint(table)} | {
        b.kind: fingerprint(read_binding(where, b.kind)) for b in port.bindings if b.kind != "share"
    }
