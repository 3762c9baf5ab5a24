"""Synthetic orders with a weekly rhythm (busy weekdays, quiet weekends), and the port that publishes
them, for the monitor tests: the same seed gives the same rows, so every anomaly is injected on purpose."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from mesh_assets.product.spec import OutputPort

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
