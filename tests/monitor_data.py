"""Synthetic orders with a weekly rhythm (busy weekdays, quiet weekends), and the port that publishes
them, for the monitor tests: the same seed gives the same rows, so every anomaly is injected on purpose."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import yaml

from mesh_assets.assets.ports import PortContext
from mesh_assets.assets.publish import port_asset
from mesh_assets.infra.warehouse.duckdb import DuckDBWarehouse
from mesh_assets.product.addressing import Relation
from mesh_assets.product.registry import Product
from mesh_assets.product.spec import DataProductSpec, OutputPort

WEEKDAY_ROWS = (200, 210, 205, 200, 190, 60, 30)
"""Mean orders per day, Monday first."""
STATUSES = ["placed", "shipped", "delivered", "cancelled"]

PORT_DATA: dict = {
    "version": "1.0.0",
    "event_time": "ordered_at",
    "primary_key": ["order_id"],
    "columns": [
        {"name": "order_id", "type": "string", "nullable": False, "description": "Order id."},
        {"name": "ordered_at", "type": "timestamp", "description": "When the order was placed."},
        {"name": "status", "type": "string", "description": "Order status."},
        {"name": "amount", "type": "double", "description": "Order amount."},
        {"name": "channel", "type": "string", "description": "Sales channel."},
        {"name": "customer", "type": "string", "description": "Customer id."},
    ],
}
PORT = OutputPort.model_validate(PORT_DATA)


def orders(
    first: date,
    days: int,
    seed: int = 7,
    newest: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """`days` days of orders from `first`; `newest` (if given) rewrites the last day: the injection."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(days):
        day = first + timedelta(days=i)
        n = int(rng.poisson(WEEKDAY_ROWS[day.weekday()]))
        seconds = np.sort(rng.integers(0, 86_400, n))
        midnight = datetime.combine(day, datetime.min.time())
        frame = pd.DataFrame(
            {
                "order_id": [f"{day:%Y%m%d}-{k:05d}" for k in range(n)],
                "ordered_at": [midnight + timedelta(seconds=int(s)) for s in seconds],
                "status": rng.choice(STATUSES, n, p=[0.2, 0.3, 0.45, 0.05]),
                "amount": np.round(rng.gamma(4.0, 25.0, n), 2),
                "channel": np.where(rng.random(n) < 0.05, None, rng.choice(["web", "shop", "phone"], n)),
                "customer": [f"C{c:05d}" for c in rng.integers(0, 5000, n)],
            }
        )
        if newest is not None and i == days - 1:
            frame = newest(frame.copy())
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


# --- injected anomalies on the newest day ----------------------------------------------------------------


def partial_load(frame: pd.DataFrame) -> pd.DataFrame:
    """Only a quarter of the day arrived."""
    return frame.head(len(frame) // 4)


def null_spike(frame: pd.DataFrame) -> pd.DataFrame:
    """Half the day lost its channel."""
    frame.loc[frame.index[: len(frame) // 2], "channel"] = None
    return frame


def shifted_mean(frame: pd.DataFrame) -> pd.DataFrame:
    """Amounts 60% higher (e.g. a currency mix-up)."""
    frame["amount"] = frame["amount"] * 1.6
    return frame


def takeover(frame: pd.DataFrame) -> pd.DataFrame:
    """Every order of the day is cancelled."""
    frame["status"] = "cancelled"
    return frame


def one_customer(frame: pd.DataFrame) -> pd.DataFrame:
    """Every order of the day has the same customer (a default filled in upstream)."""
    frame["customer"] = "C00001"
    return frame


# --- the port, published for real ----------------------------------------------------------------------


KEY = dg.AssetKey(["sales", "orders", "v1"])
PUBLISHED = Relation("sales", "orders_v1")
FIRST = date(2026, 9, 1)
SPEC: dict[str, Any] = {
    "name": "orders",
    "domain": "sales",
    "title": "Orders",
    "description": {
        "purpose": "Every order we take.",
        "usage": "Join on order_id.",
        "limitations": "Synthetic.",
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
    "support": {"channel": "#sales-data", "kind": "log"},
    "slos": {"freshness": {"max_age": "24h"}},
    "transformation": {"kind": "python"},
    "output_ports": [{**PORT_DATA, "quality": {"volume_change": None, "timeliness": None}}],
}


def product(folder: Path, **monitors: object) -> Product:
    data = copy.deepcopy(SPEC)
    data["output_ports"][0]["monitors"] = monitors
    path = folder / "dataproduct.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return Product(DataProductSpec.model_validate(data), path)


def publish(item: Product, frame: pd.DataFrame) -> dg.ExecuteInProcessResult:
    """One run of the port's asset, whose transformation writes `frame` as the candidate."""

    def build(context, session, candidate):  # type: ignore[no-untyped-def]
        session.write_dataframe(candidate, frame)

    asset = port_asset(
        item, item.spec.output_ports[0], PortContext("duckdb", "mesh"), [], "python", build, None
    )
    warehouse = DuckDBWarehouse(path=os.environ["MESH_DUCKDB_PATH"])
    with dg.DagsterInstance.get() as instance:
        return dg.materialize(
            [asset], resources={"warehouse": warehouse}, instance=instance, raise_on_error=False
        )
