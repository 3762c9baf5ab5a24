"""Freshness SLOs compared by what they promise: the oldest the data may get, and when it is due.

Cron deadlines are sampled from a fixed date, so a verdict never depends on the clock.
"""

from __future__ import annotations

import bisect
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import pairwise

from mesh_assets.product.spec import FreshnessSlo, parse_duration

_SAMPLE_START = datetime(2026, 1, 5, tzinfo=UTC)
"""A fixed Monday to sample cron deadlines from, so a verdict never depends on the clock."""
_SAMPLE_SPAN = timedelta(days=400)
_SAMPLE_MAX_TICKS = 3000


@cache
def _deadlines(cron: str, timezone: str) -> tuple[datetime, ...]:
    """The cron's ticks over the sample window, starting with the last tick before it."""
    # dagster's iterator understands the same cron dialect as the FreshnessPolicy the SLO becomes; it
    # is heavy to import, so only SLOs with a cron pay for it.
    from mesh_assets.product.dagster_private import cron_ticks

    start = _SAMPLE_START.timestamp()
    before = next(cron_ticks(start, cron, timezone, ascending=False))
    ticks = [before]
    for tick in cron_ticks(start, cron, timezone):
        if tick - _SAMPLE_START > _SAMPLE_SPAN or len(ticks) >= _SAMPLE_MAX_TICKS:
            break
        if tick > ticks[-1]:
            ticks.append(tick)
    return tuple(ticks)


def _worst_age(slo: FreshnessSlo) -> timedelta:
    """The oldest the data may ever be under the SLO.

    A rolling window allows `max_age`; a cron deadline promises an update within `lower_bound` before
    each tick, so just before the next tick the data may be the longest gap between ticks plus that old.
    """
    if slo.max_age is not None:
        return parse_duration(slo.max_age)
    ticks = _deadlines(slo.cron or "", slo.cron_timezone)
    gap = max((b - a for a, b in pairwise(ticks)), default=timedelta(0))
    return gap + parse_duration(slo.lower_bound or "0m")


def _deadline_later(old: FreshnessSlo, new: FreshnessSlo) -> bool:
    """Whether some deadline of `old` moves later under `new` (its nearest new deadline is after it).

    Consumers schedule on deadlines ("the data is in by 06:00"): a deadline that moves later breaks
    them even when the worst-case age stays the same.
    """
    old_ticks = _deadlines(old.cron or "", old.cron_timezone)
    new_ticks = _deadlines(new.cron or "", new.cron_timezone)
    for tick in old_ticks[1:]:
        after = bisect.bisect_right(new_ticks, tick)
        if after == 0 or after >= len(new_ticks):
            continue  # outside the sampled deadlines of `new`
        if new_ticks[after] - tick < tick - new_ticks[after - 1]:
            return True
    return False


def compare_freshness(base: FreshnessSlo, head: FreshnessSlo) -> tuple[str, timedelta, timedelta]:
    """`weaker`, `stronger` or `same`, with each SLO's worst-case data age.

    Weaker when the data may get older than before, or (between two cron SLOs) a deadline comes later.
    """
    old, new = _worst_age(base), _worst_age(head)
    both_cron = base.cron is not None and head.cron is not None
    if new > old or (both_cron and _deadline_later(base, head)):
        return "weaker", old, new
    if new < old or (both_cron and _deadline_later(head, base)):
        return "stronger", old, new
    return "same", old, new


def describe_freshness(slo: FreshnessSlo) -> str:
    """The SLO as written in the spec, e.g. `max_age 24h`."""
    if slo.max_age is not None:
        return f"max_age {slo.max_age}"
    return f"cron '{slo.cron}' ({slo.cron_timezone}) within {slo.lower_bound}"


def hours(delta: timedelta) -> str:
    """`36h`: a duration in hours, as diff reasons show it."""
    return f"{delta.total_seconds() / 3600:g}h"
