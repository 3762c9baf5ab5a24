"""The calendar of a port's lifecycle: how a deprecation's sunset approaches and passes.

The rule: **time alone never breaks loading or building; only a code change can**, and code changes are
gated in CI (`mesh validate`, `mesh contract diff`). So a date never changes what a port *is*:

- more than 30 days before the sunset: `deprecated`; `mesh validate` warns its consumers;
- 30, 7 and 1 days before it (and on the day): the same, and one alert to each consumer's owners per step;
- after the sunset: `overdue` for retirement, still served and built; consumers warned, red in fitness,
  the catalog and the port's Dagster description; the alert repeats weekly;
- retired only when the owner sets `status: retired` or removes the port: a code change, refused by
  `mesh validate` and `mesh contract diff` while a consumer still reads it.

The sunset is the last day the owner promised to serve the port. From the next day it is *overdue for
retirement*: the owner may retire it in any release, and the consumers that still read it are the ones
to act. Nothing here reads the clock: every function takes `today`.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from mesh_assets.product.spec import DataProductSpec, OutputPort, Status

if TYPE_CHECKING:
    from mesh_assets.product.registry import Product, Registry

NOTICE_DAYS: tuple[int, ...] = (30, 7, 1)
"""Days before a sunset at which each consumer's owners are alerted, once each."""
OVERDUE_REPEAT_DAYS = 7
"""After the sunset, the alert repeats this often until the consumer moves or the port is retired."""
OVERDUE = "overdue"
"""The phase of a deprecated port past its sunset (its status stays `deprecated`)."""


def sunset_of(spec: DataProductSpec, port: OutputPort) -> date | None:
    """The sunset of a deprecated port, else None (a retired port keeps its deprecation as history)."""
    if spec.port_status(port) == Status.DEPRECATED and port.deprecation is not None:
        return port.deprecation.sunset
    return None


def days_to_sunset(spec: DataProductSpec, port: OutputPort, today: date) -> int | None:
    """Days from `today` to a deprecated port's sunset (0 on the day, negative once past), else None."""
    sunset = sunset_of(spec, port)
    return None if sunset is None else (sunset - today).days


def is_overdue(spec: DataProductSpec, port: OutputPort, today: date) -> bool:
    """Whether a deprecated port is past its sunset: overdue for retirement, but still served."""
    days = days_to_sunset(spec, port, today)
    return days is not None and days < 0


def phase(spec: DataProductSpec, port: OutputPort, today: date) -> str:
    """The port's status, or `overdue` for a deprecated port past its sunset."""
    return OVERDUE if is_overdue(spec, port, today) else spec.port_status(port).value


def notice_stage(sunset: date, today: date) -> str | None:
    """Which alert a consumer of a port with this sunset is due on `today`, as a stable label.

    `30d`, `7d`, `1d` before the sunset (the nearest step already reached, so a sensor that was down
    for a while sends the current step only, not every missed one); `overdue-<n>` for the n-th week
    after it; None when the sunset is further away than the first step.
    """
    days = (sunset - today).days
    if days < 0:
        return f"{OVERDUE}-{(-days - 1) // OVERDUE_REPEAT_DAYS}"
    reached = [step for step in NOTICE_DAYS if days <= step]
    return f"{min(reached)}d" if reached else None


def in_days(days: int) -> str:
    """`today`, `tomorrow`, `in 12 days`, `yesterday`, `3 days ago`."""
    if days == 0:
        return "today"
    if days == 1:
        return "tomorrow"
    if days == -1:
        return "yesterday"
    return f"in {days} days" if days > 0 else f"{-days} days ago"


def reader(spec: DataProductSpec) -> str:
    """A consumer and who answers for it: `<domain>.<product> (team <team>, steward <steward>)`."""
    return f"{spec.key} (team {spec.owner.team}, steward {spec.owner.steward})"


def describe(spec: DataProductSpec, port: OutputPort, today: date) -> str | None:
    """One sentence on a deprecated port's sunset as of `today` (None for other ports)."""
    days = days_to_sunset(spec, port, today)
    if days is None:
        return None
    dep = port.deprecation
    assert dep is not None  # days_to_sunset guarantees it
    sunset = dep.sunset.isoformat()
    if days < 0:
        return (
            f"overdue for retirement: its sunset {sunset} passed {in_days(days)}; still served until its "
            f"owner retires it, move to v{dep.replacement} now"
        )
    return f"deprecated: served until its sunset {sunset} ({in_days(days)}), then overdue for retirement"


def overdue_notices(product: Product, registry: Registry) -> list[tuple[str, str, str]]:
    """(field, message, fix) for each of a producer's ports overdue for retirement, naming its readers."""
    notices = []
    for index, port in enumerate(product.spec.output_ports):
        dep = port.deprecation
        if dep is None or not is_overdue(product.spec, port, registry.today):
            continue
        readers = sorted(
            {
                reader(c.consumer.spec)
                for c in registry.consumers_of(product.key)
                if c.port.major == port.major
            }
        )
        notices.append(
            (
                f"output_ports[{index}].deprecation.sunset",
                f"v{port.major} ({port.version}) is overdue for retirement: its sunset "
                f"{dep.sunset.isoformat()} passed {in_days((dep.sunset - registry.today).days)} and it is "
                "still served"
                + (f"; still read by {', '.join(readers)}" if readers else "; no consumer reads it"),
                "retire it once no consumer reads it (status: retired, or remove the port); until then it "
                "stays served and its consumers are warned",
            )
        )
    return notices
