"""sales_forecast: a linear-trend forecast of monthly net revenue per country and product line."""

from __future__ import annotations

import numpy as np
import pandas as pd

HORIZON_MONTHS = 3
TRAINING_MONTHS = 12
MIN_MONTHS = 3
Z_95 = 1.96


def sales_forecast_v0(inputs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Forecast the next three months from the last twelve complete months of each series."""
    sales = inputs["sales.sales"]
    customers = inputs["commercial_analytics.customer_360"][["customer_id", "country_code"]]
    monthly = (
        sales.merge(customers, on="customer_id", how="inner")
        .assign(
            sales_month=lambda d: pd.to_datetime(d["sales_month"]),
            revenue=lambda d: d["net_revenue_eur"].astype(float),
        )
        .groupby(["country_code", "product_line", "sales_month"], as_index=False)["revenue"]
        .sum()
    )
    # The latest month is still being booked: training on it would bend every trend down.
    latest = monthly["sales_month"].max()
    complete = monthly[monthly["sales_month"] < latest]
    first_forecast = latest
    rows = []
    for (country, line), series in complete.groupby(["country_code", "product_line"]):
        history = series.sort_values("sales_month").tail(TRAINING_MONTHS)
        if len(history) < MIN_MONTHS:
            continue
        x = (history["sales_month"].dt.year * 12 + history["sales_month"].dt.month).to_numpy(float)
        y = history["revenue"].to_numpy(float)
        slope, intercept = np.polyfit(x, y, 1)
        spread = float(np.std(y - (slope * x + intercept), ddof=1)) if len(y) > 2 else 0.0
        for step in range(HORIZON_MONTHS):
            month = first_forecast + pd.DateOffset(months=step)
            point = max(0.0, slope * (month.year * 12 + month.month) + intercept)
            rows.append(
                {
                    "forecast_month": month.date(),
                    "country_code": country,
                    "product_line": line,
                    "forecast_revenue_eur": round(point, 2),
                    "lower_eur": round(max(0.0, point - Z_95 * spread), 2),
                    "upper_eur": round(point + Z_95 * spread, 2),
                    "trained_months": len(history),
                    "method": f"linear_trend_{TRAINING_MONTHS}m",
                }
            )
    return pd.DataFrame(rows)
