"""A minimal valid product spec for the binding tests (one port, two columns), as a mapping to edit."""

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
