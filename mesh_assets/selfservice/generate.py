"""Deterministic source-system extracts for the example mesh of a diagnostics company.

The company sells reagents, consumables, instruments and service to labs and hospitals, and runs its
diagnostic instruments at customer sites. Three source systems feed the example mesh:

* ``crm/customers.csv``: customer master data, one row per CRM change, so customers repeat;
* ``erp/orders.csv``: ``scale`` distinct orders plus re-sent rows;
* ``lims/instrument_runs.csv``: runs of the instruments installed at customer sites.

The extracts are dirty on purpose: duplicated and late-arriving records, inconsistent casing and
whitespace, mixed phone formats, dangling or missing foreign keys, impossible quantities and durations.
The source-aligned products exist to clean exactly this, so their tests and checks need it to be there.

Every draw comes from a per-extract child of ``numpy.random.SeedSequence(seed)`` and every date is
anchored to the ``as_of`` day (default: today, so a fresh clone's data is fresh and its timeliness checks
pass on any day) instead of the clock, so the same seed, scale and as-of give byte-identical files. The
generation is vectorized and orders and runs are written in chunks, so 10M orders stay fast and bounded.
"""

from __future__ import annotations

import hashlib
import json
import operator
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

AS_OF = date(2026, 11, 1)
"""A fixed as-of day for reproducible comparisons (tests pin it); `mesh generate` defaults to today."""
MIN_SCALE = 100
HISTORY_DAYS = 730
CHUNK_ROWS = 1_000_000
COLUMNS: dict[str, tuple[str, ...]] = {
    "crm.customers": (
        "customer_id",
        "customer_name",
        "customer_type",
        "contact_email",
        "contact_phone",
        "country_code",
        "city",
        "created_at",
        "updated_at",
    ),
    "erp.orders": (
        "order_id",
        "customer_id",
        "order_ts",
        "sku",
        "product_line",
        "quantity",
        "unit_price",
        "currency",
        "status",
        "updated_at",
    ),
    "lims.instrument_runs": (
        "run_id",
        "instrument_id",
        "instrument_model",
        "customer_id",
        "assay",
        "started_at",
        "duration_seconds",
        "status",
        "error_code",
    ),
}

_DAY = 86_400
_MONTH_WEIGHT = np.array([0.9, 0.95, 1.0, 1.0, 1.0, 0.97, 0.9, 0.85, 1.0, 1.05, 1.15, 1.35])  # budget flush
_ORDER_HOURS = np.array([1, 1, 1, 1, 1, 2, 4, 8, 14, 16, 16, 15, 11, 14, 15, 14, 12, 8, 5, 3, 2, 2, 1, 1.0])
_RUN_HOURS = np.array([3, 3, 3, 3, 4, 6, 10, 14, 16, 16, 15, 14, 12, 12, 11, 10, 8, 7, 6, 5, 4, 4, 3, 3.0])

_TYPES = ("lab", "hospital", "clinic", "research_institute")
_TYPE_P = (0.45, 0.25, 0.22, 0.08)
# Per customer type: name heads and kinds ("St. Mary" + "Hospital"); some names also get the city.
_HEADS = [
    g.split("|")
    for g in (
        "Nordic|Alpine|Central|Rhine Valley|Pacific|Meier|Dupont|Garcia|Smith",
        "St. Mary|St. Joseph|St. Anne|St. Luke|Holy Cross|Sacred Heart|University",
        "Lakeside|Riverside|Parkview|Meier|Rossi|Moreau|Smith",
        "Nordic|Alpine|Atlantic|Central|Keller|Fischer|Tanaka",
    )
]
_KINDS = [
    g.split("|")
    for g in (
        "Clinical Lab|Laboratory|Medical Lab|Diagnostics|Pathology Lab",
        "Hospital|General Hospital|Medical Center|Children's Hospital",
        "Clinic|Family Clinic|Health Center|Medical Practice",
        "Research Institute|Institute for Molecular Medicine|Immunology Center",
    )
]
_COUNTRIES = ("DE", "US", "CH", "FR", "GB", "IT", "ES", "JP", "NL")
_COUNTRY_P = (0.22, 0.20, 0.12, 0.12, 0.10, 0.08, 0.07, 0.06, 0.03)
_CALLING = ("49", "1", "41", "33", "44", "39", "34", "81", "31")
_CURRENCY_OF = np.array([0, 1, 2, 0, 1, 0, 0, 1, 0])  # billing currency (index into _CURRENCIES) per country
_CITIES = [
    g.split("|")
    for g in (
        "Berlin|München|Hamburg|Köln|Frankfurt|Heidelberg",
        "Boston|Chicago|Houston|San Diego|Seattle|Atlanta",
        "Basel|Zürich|Bern|Genève|Lausanne|Rotkreuz",
        "Paris|Lyon|Marseille",
        "London|Manchester|Leeds|Cambridge",
        "Milano|Roma|Torino|Bologna",
        "Madrid|Barcelona|Valencia|Sevilla",
        "Tokyo|Osaka|Kyoto|Nagoya",
        "Amsterdam|Rotterdam|Utrecht|Leiden",
    )
]
_FIRST = [
    "anna",
    "lukas",
    "marie",
    "jonas",
    "sofia",
    "luca",
    "emma",
    "noah",
    "chiara",
    "hugo",
    "yuki",
    "oliver",
    "laura",
    "mateo",
    "elena",
    "james",
]
_LAST = [
    "meier",
    "mueller",
    "schmid",
    "dupont",
    "rossi",
    "garcia",
    "smith",
    "tanaka",
    "fischer",
    "keller",
    "moreau",
    "bianchi",
    "lopez",
    "brown",
]

_LINES = ("reagents", "instruments", "consumables", "service")
_LINE_P = (0.55, 0.05, 0.30, 0.10)
_LINE_SKUS = (
    ("RGT", 120, 80.0, 900.0),
    ("ANL", 12, 25_000.0, 250_000.0),
    ("CON", 80, 5.0, 150.0),
    ("SRV", 20, 500.0, 8_000.0),
)  # prefix, catalog size, list price range
_DISCOUNTS = (1.0, 0.95, 0.9, 0.85, 0.8)
_CURRENCIES = ("EUR", "USD", "CHF")
_FX = (1.0, 1.08, 0.94)
_STATUSES = ("placed", "shipped", "delivered", "cancelled", "returned")
_PRIOR = np.array([0, 0, 1, 0, 2])  # the status an order had before its current one

_MODELS = ("Helix 300", "Helix 600", "Orion HT", "Vireo PCR 96", "Lumen POC")
_MODEL_P = (0.3, 0.2, 0.25, 0.15, 0.1)
_ASSAYS = (
    "HbA1c",
    "CRP",
    "Glucose",
    "Ferritin",
    "TSH",
    "Vitamin-D",
    "Troponin-T",
    "NT-proBNP",
    "PCR-COVID",
    "PCR-Flu",
    "PCR-RSV",
)
_ASSAY_SECONDS = np.array([180, 420, 240, 900, 1080, 1500, 540, 720, 4500, 4800, 4800])
_PANELS = np.array(
    [
        [4, 4, 3, 2, 0, 0, 0, 0, 0, 0, 0],
        [3, 3, 2, 2, 3, 2, 0, 0, 0, 0, 0],
        [0, 0, 0, 2, 4, 3, 3, 2, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0, 5, 3, 2],
        [2, 3, 0, 0, 0, 0, 4, 0, 2, 0, 0],
    ],
    dtype=float,
)  # relative assay mix per model
_RUN_STATUSES = ("passed", "failed", "aborted")
_ERRORS = ("E012", "E042", "E101", "E217", "E305", "E900", "E901", "E950")  # E9xx: aborted runs


@dataclass(frozen=True)
class _Anchor:
    """The day the extracts are taken (at midnight) and the history before it."""

    as_of: date

    @property
    def end(self) -> int:
        """Epoch seconds of the as-of midnight: nothing happens at or after it."""
        return (self.as_of - date(1970, 1, 1)).days * _DAY

    @property
    def start_day(self) -> int:
        """Epoch day of the first day of history."""
        return (self.as_of - date(1970, 1, 1)).days - HISTORY_DAYS


@dataclass(frozen=True)
class ExtractReport:
    """One written extract: ``source`` is ``"<system>.<extract>"``, ``rows`` excludes the header."""

    source: str
    path: Path
    rows: int
    sha256: str


@dataclass(frozen=True)
class GenerationReport:
    """The result of one `generate_sources` run, extracts in the order they were written."""

    scale: int
    seed: int
    extracts: list[ExtractReport]
    seconds: float


def _strings(matrix: np.ndarray) -> pa.StringArray:
    """A string array over the rows of a fixed-width byte matrix, without a per-value Python call."""
    n, width = matrix.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(matrix)))


def _digits(values: np.ndarray, width: int, prefix: str = "") -> pa.StringArray:
    """``prefix`` + zero-padded ``values``, widened if a value needs more digits than ``width``."""
    values = np.asarray(values, dtype=np.int64)
    width = max(width, len(str(int(values.max()))) if values.size else width)
    head = np.frombuffer(prefix.encode(), np.uint8)
    matrix = np.empty((values.size, head.size + width), np.uint8)
    matrix[:, : head.size] = head
    for k in range(width):
        matrix[:, -1 - k] = 48 + values // 10**k % 10
    return _strings(matrix)


def _timestamps(seconds: np.ndarray) -> pa.StringArray:
    """``YYYY-MM-DD HH:MM:SS`` for epoch seconds, formatted here so no library version can change the bytes
    (and ~20x faster than ``datetime64.astype(str)``)."""
    seconds = np.asarray(seconds, dtype=np.int64)
    day = (seconds // _DAY).astype("datetime64[D]")
    month = day.astype("datetime64[M]")
    year = month.astype("datetime64[Y]").astype(np.int64) + 1970
    fields = (
        (year, 4),
        (month.astype(np.int64) % 12 + 1, 2),
        ((day - month).astype(np.int64) + 1, 2),
        (seconds % _DAY // 3600, 2),
        (seconds % 3600 // 60, 2),
        (seconds % 60, 2),
    )
    matrix = np.empty((seconds.size, 19), np.uint8)
    matrix[:, [4, 7]], matrix[:, 10], matrix[:, [13, 16]] = ord("-"), ord(" "), ord(":")
    start = 0
    for value, width in fields:
        for k in range(width):
            matrix[:, start + width - 1 - k] = 48 + value // 10**k % 10
        start += width + 1
    return _strings(matrix)


def _take(vocab: Sequence[str] | pa.Array, idx: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """``vocab[idx]`` as a string array, null where ``null`` is set (written as an empty field)."""
    return pc.take(pa.array(vocab, pa.string()), pa.array(idx, pa.int64(), mask=null))


def _pick(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    """A mask of exactly ``round(n * rate)`` rows, at least one, so every kind of dirt exists at any scale."""
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=min(n, max(1, round(n * rate))), replace=False)] = True
    return mask


def _within(rng: np.random.Generator, group: np.ndarray, groups: Sequence[Sequence[str]]) -> pa.Array:
    """A uniform draw from each row's own group, e.g. a city of the customer's country."""
    sizes = np.array([len(g) for g in groups])
    first = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    idx = first[group] + (rng.random(group.size) * sizes[group]).astype(np.int64)
    return _take([v for g in groups for v in g], idx)


def _cat(*parts: pa.Array | str) -> pa.Array:
    """Row-wise concatenation of string arrays and literals."""
    return pc.binary_join_element_wise(*parts, "")


def _event_days(
    rng: np.random.Generator, n: int, weekday_weight: Sequence[float], anchor: _Anchor
) -> np.ndarray:
    """Sorted day offsets into the history for ``n`` events: yearly growth, weekday and year-end seasonality.

    One multinomial count per day keeps this O(n) and already sorted, so ids can follow time."""
    days = np.arange(HISTORY_DAYS)
    weekday = (anchor.start_day + days + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    month = (np.datetime64(anchor.as_of) - HISTORY_DAYS + days).astype("datetime64[M]").astype(np.int64) % 12
    weight = 1.35 ** (days / 365) * np.asarray(weekday_weight)[weekday] * _MONTH_WEIGHT[month]
    return np.repeat(days, rng.multinomial(n, weight / weight.sum()))


def _moments(
    rng: np.random.Generator, days: np.ndarray, hour_weight: np.ndarray, anchor: _Anchor
) -> np.ndarray:
    """Sorted epoch seconds on the given history days, with a time of day drawn from ``hour_weight``."""
    hours = rng.choice(24, days.size, p=hour_weight / hour_weight.sum())
    return np.sort((anchor.start_day + days) * _DAY + hours * 3600 + rng.integers(0, 3600, days.size))


def _customer_ids(n_customers: int) -> pa.StringArray:
    """Ids of the CRM customers, then ids only the ERP knows (the dangling references)."""
    return _digits(np.arange(1, n_customers + max(5, n_customers // 50) + 1), 6, "C")


def _customers(rng: np.random.Generator, scale: int, anchor: _Anchor) -> tuple[pa.Table, np.ndarray]:
    """The CRM extract (one row per customer version) and each customer's country index."""
    end = anchor.end
    n = max(50, scale // 20)
    kind, country = rng.choice(4, n, p=_TYPE_P), rng.choice(len(_COUNTRIES), n, p=_COUNTRY_P)
    city = _within(rng, country, _CITIES)
    head = pc.if_else(rng.random(n) < 0.3, city, _within(rng, kind, _HEADS))
    name = pc.binary_join_element_wise(head, _within(rng, kind, _KINDS), " ")
    name = pc.if_else(rng.random(n) < 0.4, pc.binary_join_element_wise(name, city, " "), name)
    slug = pc.replace_substring_regex(pc.utf8_lower(pc.utf8_normalize(name, "NFKD")), "[^a-z0-9]+", "")
    created = end - HISTORY_DAYS * _DAY - rng.integers(_DAY, 6 * 365 * _DAY, n)  # all predate the orders

    # ~20% of customers change once or twice more; a version keeps what did not change.
    e1 = np.flatnonzero(_pick(rng, n, 0.20))
    e2 = e1[_pick(rng, e1.size, 0.30)]
    people = len(_FIRST) * len(_LAST)
    person, phone = rng.integers(0, people, n), rng.integers(10**8, 10**9, n)  # phone: 2-digit area + 7
    updated = created + (rng.random(n) * 0.5 * (end - created)).astype(np.int64)
    persons, phones, updates, previous = [person.copy()], [phone.copy()], [updated.copy()], [updated.copy()]
    for ids in (e1, e2):
        previous.append(updated[ids])
        new_person, new_phone = rng.random(ids.size) < 0.5, rng.random(ids.size) < 0.4
        person[ids[new_person]] = rng.integers(0, people, new_person.sum())
        phone[ids[new_phone]] = rng.integers(10**8, 10**9, new_phone.sum())
        updated[ids] += (rng.uniform(0.1, 0.5, ids.size) * (end - updated[ids])).astype(np.int64)
        for history, current in ((persons, person), (phones, phone), (updates, updated)):
            history.append(current[ids])
    cust, upd = np.concatenate([np.arange(n), e1, e2]), np.concatenate(updates)
    rows = cust.size
    # The extract is in change order, except that some later versions arrive before an older one.
    late = np.concatenate([np.zeros(n, dtype=bool), _pick(rng, rows - n, 0.3)])
    order = np.argsort(np.where(late, np.concatenate(previous) - rng.integers(_DAY, 30 * _DAY, rows), upd))
    cust, upd = cust[order], upd[order]
    person, phone = np.concatenate(persons)[order], np.concatenate(phones)[order]

    # Hand-typed dirt: casing and stray whitespace in emails and countries, phones in four formats.
    at = pc.take(slug, pa.array(cust))
    first, last = _take(_FIRST, person // len(_LAST)), _take(_LAST, person % len(_LAST))
    email = _cat(first, ".", last, "@", at, ".example")
    dirty = pa.array(_pick(rng, rows, 0.03) * rng.integers(1, 5, rows), pa.int8())
    email = pc.choose(
        dirty, email, pc.utf8_upper(email), pc.utf8_capitalize(email), _cat(" ", email), _cat(email, "  ")
    )
    variants = [v for c in _COUNTRIES for v in (c, c.lower(), " " + c.lower(), c + " ")]
    country_code = _take(variants, country[cust] * 4 + _pick(rng, rows, 0.03) * rng.integers(1, 4, rows))
    cc, area, sub = _take(_CALLING, country[cust]), _digits(phone // 10**7, 2), phone % 10**7
    s3, s2, s1 = _digits(sub // 10**4, 3), _digits(sub // 100 % 100, 2), _digits(sub % 100, 2)
    phone_text = pc.choose(
        pa.array(rng.integers(0, 4, rows), pa.int8()),
        _cat("+", cc, " ", area, " ", s3, " ", s2, " ", s1),
        _cat("00", cc, area, s3, s2, s1),
        _cat("0", area, " ", s3, " ", s2, " ", s1),
        _cat("+", cc, area, s3, s2, s1),
    )
    phone_text = pc.if_else(_pick(rng, rows, 0.01), pa.scalar(None, pa.string()), phone_text)
    idx = pa.array(cust)
    columns = [
        pc.take(_customer_ids(n), idx),
        pc.take(name, idx),
        _take(_TYPES, kind[cust]),
        email,
        phone_text,
        country_code,
        pc.take(city, idx),
        _timestamps(created[cust]),
        _timestamps(upd),
    ]
    return pa.Table.from_arrays(columns, names=list(COLUMNS["crm.customers"])), country


def _block_order(rng: np.random.Generator, n: int, block: int = 1_000) -> np.ndarray:
    """File order of an export sent in batches: batches out of order, rows unsorted within a batch."""
    return np.argsort(rng.permutation(-(-n // block))[np.arange(n) // block] + rng.random(n))


def _orders(
    rng: np.random.Generator, scale: int, country_of: np.ndarray, anchor: _Anchor
) -> Iterator[pa.Table]:
    """ERP order rows, ``CHUNK_ROWS`` orders at a time; ids follow order time, the file order does not."""
    end = anchor.end
    n_cust, customer_ids = country_of.size, _customer_ids(country_of.size)
    heavy = rng.permutation(n_cust)  # rank -> customer, so the big buyers are not simply the oldest ids
    skus = [f"{p}-{i + 1:04d}" for p, size, _, _ in _LINE_SKUS for i in range(size)]
    first_sku = np.cumsum([0] + [size for _, size, _, _ in _LINE_SKUS])
    list_price = np.concatenate([lo * (hi / lo) ** rng.random(size) for _, size, lo, hi in _LINE_SKUS])
    prices = [f"{p * d * fx:.2f}" for p in list_price for d in _DISCOUNTS for fx in _FX]
    currencies = _CURRENCIES + tuple(c.lower() for c in _CURRENCIES)
    days = _event_days(rng, scale, (1, 1, 1, 1, 0.95, 0.2, 0.08), anchor)
    for lo in range(0, scale, CHUNK_ROWS):
        ts = _moments(rng, days[lo : lo + CHUNK_ROWS], _ORDER_HOURS, anchor)
        n = ts.size
        cust = heavy[(n_cust * rng.random(n) ** 2).astype(np.int64)]  # power law: a few customers order a lot
        unknown, missing = _pick(rng, n, 0.005), _pick(rng, n, 0.002)
        cust[unknown] = n_cust + rng.integers(0, len(customer_ids) - n_cust, unknown.sum())
        currency = _CURRENCY_OF[country_of[np.minimum(cust, n_cust - 1)]]
        line = rng.choice(4, n, p=_LINE_P)
        sku = first_sku[line] + (np.diff(first_sku)[line] * rng.random(n) ** 2).astype(np.int64)
        price = (sku * len(_DISCOUNTS) + rng.choice(5, n, p=(0.5, 0.2, 0.15, 0.1, 0.05))) * 3 + currency
        qty = np.where(line == 1, 1 + (rng.random(n) < 0.1), np.minimum(rng.geometric(0.15, n), 50))
        qty = np.where(line == 3, rng.integers(1, 4, n), qty)
        bad_qty = _pick(rng, n, 0.003)
        qty[bad_qty] = -rng.integers(0, 6, bad_qty.sum())
        currency += 3 * _pick(rng, n, 0.02)  # 3.. are the lowercase spellings

        # Status follows age: recent orders are open, old ones delivered, a few cancelled or returned.
        age, u = (end - ts) / _DAY, rng.random(n)
        fresh, recent = np.where(u < 0.8, 0, 1), np.where(u < 0.1, 0, 1 + (u > 0.6))
        status = np.select([age <= 2, age <= 10], [fresh, recent], np.where((age > 30) & (u < 0.04), 4, 2))
        status[rng.random(n) < 0.03] = 3
        lag = np.array([0.08, 4, 14, 2, 40])[status] * rng.random(n) + np.array([0, 1, 3, 0, 20])[status]
        late = _pick(rng, n, 0.01)  # back-office corrections, months after the order
        lag[late] += rng.uniform(60, 240, late.sum())
        upd = np.minimum(ts + (lag * _DAY).astype(np.int64), end - 1)

        # ~2% are sent twice: half verbatim, half as a change whose first row is the stale, earlier
        # snapshot (e.g. placed, then shipped with a later updated_at).
        dup = np.flatnonzero(_pick(rng, n, 0.02))
        rows, stale = np.concatenate([np.arange(n), dup]), dup[rng.random(dup.size) < 0.5]
        status, upd = status[rows], upd[rows]
        status[stale] = _PRIOR[status[stale]]
        upd[stale] = ts[stale] + (rng.random(stale.size) * (upd[stale] - ts[stale])).astype(np.int64)
        order = _block_order(rng, rows.size)  # the re-sent rows form the last batches, shuffled in
        src = rows[order]
        columns = [
            pa.array(lo + 1 + src),
            pc.take(customer_ids, pa.array(cust[src], mask=missing[src])),
            _timestamps(ts[src]),
            _take(skus, sku[src]),
            _take(_LINES, line[src]),
            pa.array(qty[src]),
            _take(prices, price[src]),
            _take(currencies, currency[src]),
            _take(_STATUSES, status[order]),
            _timestamps(upd[order]),
        ]
        yield pa.Table.from_arrays(columns, names=list(COLUMNS["erp.orders"]))


def _runs(rng: np.random.Generator, scale: int, n_customers: int, anchor: _Anchor) -> Iterator[pa.Table]:
    """LIMS instrument runs, ``CHUNK_ROWS`` at a time; every instrument stays at one customer site."""
    customer_ids, n_instruments = _customer_ids(n_customers), max(10, n_customers // 5)
    site, model = rng.integers(0, n_customers, n_instruments), rng.choice(5, n_instruments, p=_MODEL_P)
    panel = np.cumsum(_PANELS / _PANELS.sum(axis=1, keepdims=True), axis=1)
    days = _event_days(rng, scale // 2, (1, 1, 1, 1, 1, 0.55, 0.4), anchor)
    for lo in range(0, days.size, CHUNK_ROWS):
        started = _moments(rng, days[lo : lo + CHUNK_ROWS], _RUN_HOURS, anchor)
        n = started.size
        instrument = (n_instruments * rng.random(n) ** 1.5).astype(np.int64)  # some instruments are busier
        assay = np.minimum((rng.random(n)[:, None] > panel[model[instrument]]).sum(axis=1), len(_ASSAYS) - 1)
        status = rng.choice(3, n, p=(0.93, 0.05, 0.02))
        duration = _ASSAY_SECONDS[assay] * rng.lognormal(0, 0.15, n) * np.where(status == 2, rng.random(n), 1)
        duration = np.maximum(duration.astype(np.int64), 1)
        negative, null = _pick(rng, n, 0.001), _pick(rng, n, 0.001)  # instrument clock and interface glitches
        duration[negative] *= -1
        error = np.where(status == 1, rng.integers(0, 5, n), rng.integers(5, 8, n))

        # ~1% are re-sent verbatim a little later in the stream.
        dup = np.flatnonzero(_pick(rng, n, 0.01))
        resent_at = dup + rng.integers(1, 2_000, dup.size) + 0.5
        src = np.concatenate([np.arange(n), dup])[np.argsort(np.concatenate([np.arange(n), resent_at]))]
        ins = instrument[src]
        columns = [
            _digits(lo + 1 + src, 8, "R"),
            _digits(ins + 1, 4, "INS-"),
            _take(_MODELS, model[ins]),
            pc.take(customer_ids, pa.array(site[ins])),
            _take(_ASSAYS, assay[src]),
            _timestamps(started[src]),
            pa.array(duration[src], mask=null[src]),
            _take(_RUN_STATUSES, status[src]),
            _take(_ERRORS, error[src], null=status[src] == 0),
        ]
        yield pa.Table.from_arrays(columns, names=list(COLUMNS["lims.instrument_runs"]))


def _write(path: Path, source: str, tables: Iterable[pa.Table]) -> tuple[int, str]:
    """Write ``tables`` as one CSV, hashing the bytes on the way so a GB-sized file is never read back."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digest, rows = hashlib.sha256(), 0
    # Arrow quotes header names under any quoting style, so the header is written here. Style "none"
    # makes Arrow refuse values with commas or quotes: a guard that the word lists stay CSV-safe.
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    with path.open("wb") as fh:
        header = (",".join(COLUMNS[source]) + "\n").encode()
        digest.update(header)
        fh.write(header)
        for table in tables:
            sink = pa.BufferOutputStream()
            pacsv.write_csv(table, sink, options)
            chunk = sink.getvalue()
            digest.update(chunk)
            fh.write(chunk)
            rows += table.num_rows
    return rows, digest.hexdigest()


def generate_sources(
    out_dir: Path,
    scale: int = 10_000,
    seed: int = 42,
    progress: Callable[[str], None] | None = None,
    as_of: date | None = None,
) -> GenerationReport:
    """Write the CRM, ERP and LIMS extracts and ``_manifest.json`` under ``out_dir``.

    ``scale`` is the number of distinct orders; customers are ``max(50, scale // 20)`` and instrument runs
    about ``scale // 2``. The extracts are taken at midnight starting ``as_of`` (default: today), with two
    years of history before it. The same ``seed``, ``scale`` and ``as_of`` give byte-identical files.
    ``progress`` is called with a short message after each extract. Raises ``ValueError`` if
    ``scale < MIN_SCALE`` or ``seed < 0``.
    """
    scale, seed = operator.index(scale), operator.index(seed)  # scale=1e6 fails here, not deep in numpy
    if scale < MIN_SCALE:
        raise ValueError(f"scale must be at least {MIN_SCALE} orders, got {scale}")
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    started, out_dir = time.perf_counter(), Path(out_dir)
    anchor = _Anchor(as_of or date.today())
    # Children are keyed by position, so appending an extract never changes the existing ones.
    crm, erp, lims = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    customers, country_of = _customers(crm, scale, anchor)
    plan: dict[str, Iterable[pa.Table]] = {
        "crm.customers": [customers],
        "erp.orders": _orders(erp, scale, country_of, anchor),
        "lims.instrument_runs": _runs(lims, scale, country_of.size, anchor),
    }
    extracts: list[ExtractReport] = []
    for source, tables in plan.items():
        system, name = source.split(".")
        path = out_dir / system / f"{name}.csv"
        rows, sha256 = _write(path, source, tables)
        extracts.append(ExtractReport(source, path, rows, sha256))
        if progress is not None:
            progress(f"{source}: {rows:,} rows -> {path}")
    # Relative paths and no wall-clock time, so the manifest is as byte-stable as the extracts.
    manifest = {
        "as_of": anchor.as_of.isoformat(),
        "scale": scale,
        "seed": seed,
        "extracts": {
            e.source: {"path": f"{e.path.parent.name}/{e.path.name}", "rows": e.rows, "sha256": e.sha256}
            for e in extracts
        },
    }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    (out_dir / "_manifest.json").write_text(text, encoding="utf-8")
    return GenerationReport(scale, seed, extracts, time.perf_counter() - started)
