"""Learned thresholds: what a monitored figure normally is, from its own past, with robust statistics.

`judge` takes a figure's training points (past days or publishes, each with its date) and the value to
judge, and returns a `Verdict`: `learning` below the minimum training size, else `ok` or `anomaly` with the
learned bounds. The baseline is the median and the spread the MAD (median absolute deviation, x 1.4826 so
it matches a standard deviation on normal data): one odd day in the training window moves neither, unlike
a mean and standard deviation. With weekly seasonality the baseline is the median of the same weekday and
the spread is pooled over every day's deviation from its own weekday's median, so weekends are judged
against weekends with the stability of the whole window. Counts are judged on a log scale (their noise
grows with their size); rates and means on their own scale. A minimum relative change (and an absolute
floor per kind of figure) keeps tiny moves of a very steady figure from being anomalies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from statistics import median

from mesh_assets.product.monitors import Direction, Monitors, Seasonality

MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class Verdict:
    """A monitor's judgement of one value."""

    status: str
    """`ok`, `anomaly` or `learning`."""
    value: float | None
    lower: float | None = None
    upper: float | None = None
    baseline: float | None = None
    training: int = 0
    needed: int = 0
    seasonal: bool = False
    reason: str = ""

    @property
    def anomaly(self) -> bool:
        """Whether the value is outside its learned bounds."""
        return self.status == "anomaly"


@dataclass(frozen=True)
class Scale:
    """How a kind of figure is judged: on a log scale (counts) or its own, and its smallest anomaly."""

    log: bool = False
    floor: float = 0.0
    """Changes up to this absolute amount are never anomalies (e.g. 2 points of a null rate)."""
    nonnegative: bool = False


COUNT = Scale(log=True, floor=1.0, nonnegative=True)
RATE = Scale(floor=0.02, nonnegative=True)
SHARE = Scale(floor=0.05, nonnegative=True)
"""A value's share: a new or vanishing value moves by at least 5 points before it is an anomaly."""
LEVEL = Scale()


def _mad(values: Sequence[float]) -> float:
    centre = median(values)
    return MAD_TO_SIGMA * median(abs(v - centre) for v in values)


def _loo_residuals(xs: Sequence[float], groups: Sequence[int]) -> list[float]:
    """Each point's deviation from the median of the *other* points of its group (same weekday, or all):
    in-sample deviations from a median of 8 Sundays would be biased small, and the bounds too tight."""
    members: dict[int, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    out = []
    for i, (x, g) in enumerate(zip(xs, groups, strict=True)):
        others = [xs[j] for j in members[g] if j != i]
        out.append(x - median(others) if others else 0.0)
    return out


def judge(
    value: float | None,
    at: date | None,
    points: Sequence[tuple[date | None, float | None]],
    config: Monitors,
    scale: Scale = LEVEL,
    direction: Direction | None = None,
    unit: str = "",
    sizes: Sequence[float | None] | None = None,
    size: float | None = None,
    source: str = "",
) -> Verdict:
    """Judge `value` (observed on day `at`) against the training `points` (oldest first; the last
    `config.window` count).

    `sizes` (rows behind each training point) and `size` (behind the value; default: the typical size)
    make the spread aware of sampling noise, which shrinks as 1/sqrt(rows): a Sunday with 30 orders is
    noisier than a Monday with 200, and judging it with the Monday's spread would raise false alarms.
    """
    sizes = list(sizes) if sizes is not None else [None] * len(points)
    kept = [
        (d, float(v), n)
        for (d, v), n in zip(points, sizes, strict=True)
        if v is not None and math.isfinite(v)
    ][-config.window :]
    needed = config.min_training
    if value is None:
        return Verdict("anomaly", None, training=len(kept), needed=needed, reason="no value to judge")
    if len(kept) < needed:
        return Verdict(
            "learning", value, training=len(kept), needed=needed, reason=f"learning, {len(kept)} of {needed}"
        )
    f = (lambda x: math.log1p(max(x, 0.0))) if scale.log else (lambda x: x)
    back = (lambda y: math.expm1(y)) if scale.log else (lambda y: y)
    xs = [f(v) for _, v, _ in kept]
    everyone = [0] * len(xs)
    centre, seasonal, groups = median(xs), False, everyone
    if config.seasonality != Seasonality.NONE and at is not None and all(d is not None for d, _, _ in kept):
        days = [d.weekday() for d, _, _ in kept]  # type: ignore[union-attr]
        counts = {wd: days.count(wd) for wd in set(days)}
        if len(counts) == 7 and min(counts.values()) >= 2:
            plain = _loo_residuals(xs, everyone)
            weekly = _loo_residuals(xs, days)
            # `auto`: weekly only when the weekday pattern explains a good part of the spread (mean
            # absolute deviations: the MAD would ignore a weekend that is 2 days in 7).
            mean_abs = lambda rs: sum(map(abs, rs)) / len(rs)  # noqa: E731
            if config.seasonality == Seasonality.WEEKLY or mean_abs(weekly) < 0.7 * mean_abs(plain):
                seasonal, groups = True, days
                centre = median(x for x, wd in zip(xs, days, strict=True) if wd == at.weekday())
    same_day = [i for i, g in enumerate(groups) if g == (at.weekday() if seasonal and at else 0)]
    residuals = _loo_residuals(xs, groups)
    spread = _mad(residuals)
    known = [(r, n) for r, (_, _, n) in zip(residuals, kept, strict=True) if n]
    if len(known) == len(kept):
        if size is None:  # judging a count itself: its expected size is the training's
            size = median(kept[i][2] for i in same_day)  # type: ignore[misc]
        if size and size > 0:
            per_row = _mad([r * math.sqrt(n) for r, n in known])
            spread = max(spread, per_row / math.sqrt(size))
    width = config.sensitivity * spread
    baseline = back(centre)
    lower, upper = back(centre - width), back(centre + width)
    margin = max(config.min_change * abs(baseline), scale.floor)
    if scale.log:
        # No count is steadier than Poisson noise (sd = sqrt(count)): a distinct count of ~36 quantities
        # that happened to sit still for weeks must not make one rare extra value an anomaly.
        margin = max(margin, config.sensitivity * math.sqrt(max(baseline, 0.0)))
    lower, upper = min(lower, baseline - margin), max(upper, baseline + margin)
    if scale.nonnegative:
        lower = max(lower, 0.0)
    direction = direction or config.direction
    low_ok = direction == Direction.SPIKE or value >= lower
    high_ok = direction == Direction.DROP or value <= upper
    shown = (
        f"{'same weekday' if seasonal else 'all days'}, {len(kept)} points, baseline {baseline:,.4g}{unit}"
    )
    if source:
        shown = f"{shown}; trained on {source}"
    if low_ok and high_ok:
        return Verdict(
            "ok", value, lower, upper, baseline, len(kept), needed, seasonal, f"within bounds ({shown})"
        )
    side, bound = ("below", lower) if not low_ok else ("above", upper)
    return Verdict(
        "anomaly",
        value,
        lower,
        upper,
        baseline,
        len(kept),
        needed,
        seasonal,
        f"{value:,.4g}{unit} is {side} the learned bound {bound:,.4g}{unit} ({shown})",
    )
