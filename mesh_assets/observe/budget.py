"""Error-budget arithmetic: pure functions over counts and time buckets, no Dagster, no I/O.

An SLO has a target (e.g. 0.99) over a rolling window (e.g. 30 days). Its indicator (SLI) is the share of
good events (or good seconds) among all of them in the window, and the *error budget* is the number of bad
ones the target allows: `(1 - target) * total`. "Budget left" is the unspent share of that allowance: 1.0
when nothing went wrong, 0.0 when exactly the allowance was spent, negative when the SLO is violated.

Events are counted in fixed-width time buckets (1/30 of the window, at least a minute) so that a rolling
window costs a few dozen numbers per port, whatever the event rate; the window's trailing edge is rounded
to a bucket.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass

BUCKETS_PER_WINDOW = 30
"""Resolution of the rolling window: a 30-day window is counted per day."""
MIN_BUCKET_SECONDS = 60
BUDGET_FLOOR = -1.0
"""Budget left is clamped here: a target of 100% has no allowance, so one bad event is an infinite
overspend. -100% reads as "exhausted, at least twice over"."""
AT_RISK_BELOW = 0.25
"""An SLO whose budget left falls under this share is reported `at risk`."""

# Counter slots of a bucket: one good/bad pair per SLO.
PUBLISH_OK, PUBLISH_FAILED, CHECK_PASSED, CHECK_FAILED, VOLUME_OK, VOLUME_BAD, FRESH_S, STALE_S = range(8)
SLOTS = 8
PAIRS: dict[str, tuple[int, int]] = {
    "freshness": (FRESH_S, STALE_S),
    "availability": (PUBLISH_OK, PUBLISH_FAILED),
    "quality": (CHECK_PASSED, CHECK_FAILED),
    "volume": (VOLUME_OK, VOLUME_BAD),
}
"""SLO name -> (good slot, bad slot)."""

Buckets = MutableMapping[int, list[float]]
"""Bucket index (`floor(timestamp / bucket_seconds)`) -> counters (see the slots above)."""


def bucket_seconds(window_s: float) -> int:
    """Width of one bucket for a window: 1/30 of it, at least a minute."""
    return max(MIN_BUCKET_SECONDS, int(window_s // BUCKETS_PER_WINDOW))


def buckets_in_window(window_s: float, width_s: int) -> int:
    """How many buckets (the current, partial one included) make up the window."""
    return max(1, math.ceil(window_s / width_s))


def first_bucket(now: float, window_s: float, width_s: int) -> int:
    """Index of the oldest bucket still inside the window ending at `now`."""
    return int(now // width_s) - buckets_in_window(window_s, width_s) + 1


def add(buckets: Buckets, timestamp: float, slot: int, amount: float, width_s: int) -> None:
    """Count `amount` in `slot` of the bucket holding `timestamp`."""
    counters = buckets.setdefault(int(timestamp // width_s), [0.0] * SLOTS)
    counters[slot] += amount


def add_interval(buckets: Buckets, start: float, end: float, slot: int, width_s: int) -> None:
    """Count the seconds of `[start, end)` in `slot`, split at bucket boundaries (freshness time)."""
    while start < end:
        boundary = (int(start // width_s) + 1) * width_s
        stop = min(end, boundary)
        add(buckets, start, slot, stop - start, width_s)
        start = stop


def prune(buckets: Buckets, now: float, window_s: float, width_s: int) -> None:
    """Forget buckets that have left the window."""
    oldest = first_bucket(now, window_s, width_s)
    for index in [i for i in buckets if i < oldest]:
        del buckets[index]


def totals(buckets: Mapping[int, list[float]], now: float, window_s: float, width_s: int) -> list[float]:
    """Counters summed over the buckets inside the window ending at `now`."""
    oldest = first_bucket(now, window_s, width_s)
    summed = [0.0] * SLOTS
    for index, counters in buckets.items():
        if index >= oldest:
            for slot, value in enumerate(counters):
                summed[slot] += value
    return summed


def ratio(good: float, bad: float) -> float | None:
    """The SLI: share of good among all; None when nothing was measured."""
    total = good + bad
    return good / total if total > 0 else None


def budget_left(good: float, bad: float, target: float) -> float | None:
    """Unspent share of the error budget (1 = untouched, 0 = spent, < 0 = SLO violated); None: no data."""
    total = good + bad
    if total <= 0:
        return None
    allowed = (1.0 - target) * total
    if allowed <= 0:
        return 1.0 if bad <= 0 else BUDGET_FLOOR
    return max(BUDGET_FLOOR, 1.0 - bad / allowed)


def exhausted(bad: float, left: float | None) -> bool:
    """The budget is spent (and something actually went wrong: an untouched 100% target is not)."""
    return bad > 0 and left is not None and left <= 0


@dataclass(frozen=True)
class Judgement:
    """Status of one SLO: its SLI over the window, budget left and whether it is breached now."""

    slo: str
    target: float
    sli: float | None
    budget_left: float | None
    good: float
    bad: float
    breached_now: bool
    """The SLO's live condition is bad (e.g. freshness FAIL, last publish failed)."""
    recent_burn: float | None = None
    """Share of the window's error budget spent in its most recent tenth (see `FAST_BURN_SHARE`)."""

    @property
    def exhausted(self) -> bool:
        """The error budget over the window is spent."""
        return exhausted(self.bad, self.budget_left)

    @property
    def burning_fast(self) -> bool:
        """At least `FAST_BURN_SHARE` of the budget went in the last tenth of the window (not yet spent)."""
        return not self.exhausted and self.recent_burn is not None and self.recent_burn >= FAST_BURN_SHARE

    @property
    def status(self) -> str:
        """`exhausted` > `breached` > `at risk` > `ok`; `no data` when nothing was ever measured."""
        if self.exhausted:
            return "exhausted"
        if self.breached_now:
            return "breached"
        if self.sli is None:
            return "no data"
        if self.burning_fast or (self.budget_left is not None and self.budget_left < AT_RISK_BELOW):
            return "at risk"
        return "ok"


FAST_BURN_SHARE = 0.10
FAST_BURN_SPAN = 0.10
"""Fast burn: 10% of the window's budget spent in its last 10% (3 days of 30), the SRE workbook's
"ticket" threshold: at that pace the budget is gone well before the window ends."""


def recent_burn(recent_bad: float, good: float, bad: float, target: float) -> float | None:
    """Share of the window's error budget (`good`/`bad` over the window) spent by `recent_bad`, the bad
    events of the window's most recent `FAST_BURN_SPAN`; None for a target without a budget (100%)."""
    allowed = (1.0 - target) * (good + bad)
    return recent_bad / allowed if allowed > 0 else None


def judge(
    slo: str, target: float, counters: list[float], breached_now: bool, recent: list[float] | None = None
) -> Judgement:
    """Judge one SLO from its window's counters and, for the burn rate, its last tenth's (see `totals`)."""
    good_slot, bad_slot = PAIRS[slo]
    good, bad = counters[good_slot], counters[bad_slot]
    burn = recent_burn(recent[bad_slot], good, bad, target) if recent is not None else None
    return Judgement(
        slo=slo,
        target=target,
        sli=ratio(good, bad),
        budget_left=budget_left(good, bad, target),
        good=good,
        bad=bad,
        breached_now=breached_now,
        recent_burn=burn,
    )


VOLUME_MAX_DROP = 0.5
"""A publish with less than half the previous publish's rows is a volume anomaly."""
VOLUME_MAX_GROWTH = 2.0
"""A publish with more than 3x (i.e. +200%) the previous publish's rows is a volume anomaly."""


def judge_volume(
    rows: int,
    previous: int | None,
    min_rows: int,
    max_rows: int | None,
    max_drop: float = VOLUME_MAX_DROP,
    max_growth: float = VOLUME_MAX_GROWTH,
) -> tuple[bool, str]:
    """Whether a publish's row count is healthy: within the contract's bounds and not a sudden jump.

    Returns (ok, what a person reads: the observed value and the bound it broke).
    """
    if rows < min_rows:
        return False, f"{rows:,} rows, fewer than the minimum {min_rows:,}"
    if max_rows is not None and rows > max_rows:
        return False, f"{rows:,} rows, more than the maximum {max_rows:,}"
    if previous:
        change = rows / previous - 1.0
        if change < -max_drop:
            return False, f"{rows:,} rows, {-change:.0%} fewer than the previous publish ({previous:,})"
        if change > max_growth:
            return False, f"{rows:,} rows, {change:.0%} more than the previous publish ({previous:,})"
    return True, f"{rows:,} rows"


def format_share(value: float | None) -> str:
    """`99.3%`, or `-` when unmeasured."""
    if value is None:
        return "-"
    return f"{value:.1%}" if abs(value) < 10 else f"{value:.0%}"


def format_duration(seconds: float) -> str:
    """`3d 4h`, `5h 12m`, `42m`, `12s`: a human age."""
    seconds = max(0.0, seconds)
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"
