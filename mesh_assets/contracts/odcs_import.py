"""An ODCS v3 contract written elsewhere as a `dataproduct.yaml` draft (one output port), or one draft per
table of a contract that has several (`import_tables`).

What the contract does not say is left out, never invented, so `mesh validate` names it; the import
reports those fields as the ones to fill (`odcs_draft`). Mesh attributes the export keeps in
`customProperties` are read back, so a contract exported by the platform imports to the same spec.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mesh_assets.contracts.odcs_draft import ImportResult, check_draft
from mesh_assets.contracts.odcs_import_schema import columns_in, quality_in
from mesh_assets.contracts.odcs_standard import ContractError, schema_errors
from mesh_assets.contracts.odcs_vocabulary import API_VERSION, custom_values, identifier_of
from mesh_assets.product.spec import DataProductSpec, OutputPort
from mesh_assets.product.versions import coerce

_UNIT_IN = {
    "m": "m",
    "min": "m",
    "mins": "m",
    "minute": "m",
    "minutes": "m",
    "h": "h",
    "hr": "h",
    "hrs": "h",
    "hour": "h",
    "hours": "h",
    "d": "d",
    "day": "d",
    "days": "d",
}
_UNIT_DAYS = {"w": 7, "wk": 7, "week": 7, "weeks": 7, "y": 365, "yr": 365, "year": 365, "years": 365}


def _semver(text: Any, notes: list[str]) -> str | None:
    if text is None:
        return None
    raw = str(text).strip()
    version = coerce(raw)
    if version is None:
        return raw  # not a version the spec accepts: kept, so validation shows it
    if str(version) != raw.lstrip("vV"):  # `2` or `2.1`, padded to the spec's MAJOR.MINOR.PATCH
        notes.append(f"version '{raw}' read as {version}")
    return str(version)


def _parse_sla_duration(entry: Mapping[str, Any], notes: list[str]) -> str | None:
    """`value` + `unit` of an SLA property as a spec duration (`24h`), if it is one."""
    value, unit = entry.get("value"), str(entry.get("unit") or "").strip().lower()
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    if unit in _UNIT_IN:
        if value != int(value):
            minutes = value * {"m": 1, "h": 60, "d": 1440}[_UNIT_IN[unit]]
            return f"{round(minutes)}m"
        return f"{int(value)}{_UNIT_IN[unit]}"
    if unit in _UNIT_DAYS:
        days = round(value * _UNIT_DAYS[unit])
        notes.append(f"SLA {entry.get('property')} of {value} {unit} read as {days}d")
        return f"{days}d"
    return None


def _slos(document: Mapping[str, Any], notes: list[str]) -> tuple[dict[str, Any] | None, str | None]:
    """The spec's SLOs from the SLA properties, and the event-time column named as an SLA element."""
    entries = [e for e in document.get("slaProperties") or [] if isinstance(e, Mapping)]
    by_property: dict[str, Mapping[str, Any]] = {}
    for entry in entries:
        by_property.setdefault(str(entry.get("property", "")).lower(), entry)
    slos: dict[str, Any] = {}
    timing = by_property.get("latency") or by_property.get("ly") or by_property.get("freshness")
    element = None
    for entry in entries:
        if str(entry.get("property", "")).lower() in ("freshness", "latency") and entry.get("element"):
            element = str(entry["element"]).split(",")[0].strip().split(".")[-1]
            break
    if timing is not None:
        duration = _parse_sla_duration(timing, notes)
        custom = custom_values(timing.get("customProperties"))
        if str(timing.get("scheduler", "")).lower() == "cron" and timing.get("schedule"):
            freshness: dict[str, Any] = {"cron": str(timing["schedule"])}
            if duration:
                freshness["lower_bound"] = duration
            if custom.get("cronTimezone"):
                freshness["cron_timezone"] = custom["cronTimezone"]
        else:
            freshness = {"max_age": duration} if duration else {}
            if duration and isinstance(custom.get("warnAfter"), str):
                freshness["warn_after"] = custom["warnAfter"]
        if freshness:
            slos["freshness"] = freshness
        else:
            notes.append(f"SLA {timing.get('property')} {timing.get('value')} {timing.get('unit')} not read")
    availability = by_property.get("availability") or by_property.get("av")
    if availability is not None and isinstance(availability.get("value"), int | float):
        value = float(availability["value"])
        slos["availability"] = round(
            value / 100 if value > 1 or availability.get("unit") == "percent" else value, 6
        )
        window = custom_values(availability.get("customProperties")).get("window")
        if isinstance(window, str):
            slos["window"] = window
    known = {"latency", "ly", "freshness", "availability", "av", "errorrate", "er", "endoflife", "el"}
    skipped = sorted(
        {str(e.get("property")) for e in entries if str(e.get("property", "")).lower() not in known}
    )
    if skipped:
        notes.append(f"SLA properties without a mesh SLO, not imported: {', '.join(skipped)}")
    error_rate = by_property.get("errorrate") or by_property.get("er")
    if error_rate is not None:
        custom = custom_values(error_rate.get("customProperties"))
        if isinstance(custom.get("qualityPassRate"), int | float):
            slos["quality_pass_rate"] = custom["qualityPassRate"]
        elif isinstance(error_rate.get("value"), int | float):
            slos["quality_pass_rate"] = round(1 - float(error_rate["value"]) / 100, 6)
    return (slos or None), element


def _owner(document: Mapping[str, Any], notes: list[str]) -> dict[str, Any] | None:
    team = document.get("team")
    members: list[Mapping[str, Any]] = []
    owner: dict[str, Any] = {}
    if isinstance(team, Mapping):
        name = identifier_of(team.get("name"))
        if name:
            owner["team"] = name
        members = [m for m in team.get("members") or [] if isinstance(m, Mapping)]
    elif isinstance(team, list):  # the deprecated v3.0 array of members
        members = [m for m in team if isinstance(m, Mapping)]
    ranked = sorted(
        (m for m in members if m.get("username") and not m.get("dateOut")),
        key=lambda m: (
            0
            if "steward" in str(m.get("role", "")).lower()
            else 1
            if "owner" in str(m.get("role", "")).lower()
            else 2
        ),
    )
    if ranked:
        owner["steward"] = str(ranked[0]["username"])
        if "@" not in owner["steward"]:
            notes.append(f"steward '{owner['steward']}' is not an email address")
    return owner or None


def _support_in(document: Mapping[str, Any]) -> dict[str, Any] | None:
    entries = [e for e in document.get("support") or [] if isinstance(e, Mapping) and e.get("channel")]
    chosen = next((e for e in entries if e.get("id") != "steward"), None)
    if chosen is None:
        return None
    custom = custom_values(chosen.get("customProperties"))
    tool = str(chosen.get("tool") or "").lower()
    kind = custom.get("kind") or {"slack": "slack", "email": "email"}.get(tool)
    channel = str(chosen["channel"])
    if kind is None and str(chosen.get("url", "")).startswith("http"):
        kind, channel = "webhook", str(chosen["url"])
    return {"channel": channel, **({"kind": kind} if kind else {})}


def _status_in(value: Any) -> str | None:
    status = str(value or "").strip().lower()
    if status == "proposed":
        return "draft"
    return status if status in {"draft", "beta", "active", "deprecated", "retired"} else None


def _classification_in(obj: Mapping[str, Any]) -> str | None:
    order = ["public", "internal", "confidential", "restricted"]
    found = [
        str(p.get("classification", "")).lower()
        for p in obj.get("properties") or []
        if isinstance(p, Mapping) and str(p.get("classification", "")).lower() in order
    ]
    return max(found, key=order.index) if found else None


SPEC_ORDER = tuple(info.alias or name for name, info in DataProductSpec.model_fields.items())
"""The fields of a draft in the spec model's own order (the order `mesh new product` writes)."""
PORT_ORDER = tuple(OutputPort.model_fields)
"""The fields of the draft's output port, likewise."""


def import_contract(
    document: Mapping[str, Any], domain: str | None = None, table: str | None = None
) -> ImportResult:
    """A `dataproduct.yaml` draft (one output port) from an ODCS v3 contract; see `ImportResult`.

    Mesh attributes the export keeps in `customProperties` are read back, so a contract exported by the
    platform imports to the same spec. A contract from elsewhere fills what ODCS says; mandatory fields
    it cannot say (product type, access, transformation, ...) are left out and reported as `missing`.
    A port is one table: `table` names the contract's table (schema object) to draft, by default its first.
    """
    objects = tables_of(document)
    notes = _validity_notes(document)
    obj = _chosen_table(objects, table)
    if table is None and len(objects) > 1:
        notes.append(_other_tables_note(objects))
    return _import_table(document, obj, domain, len(objects) > 1, notes)


def import_tables(document: Mapping[str, Any], domain: str | None = None) -> list[ImportResult]:
    """One `dataproduct.yaml` draft per table of an ODCS v3 contract (each named after its table)."""
    objects = tables_of(document)
    notes = _validity_notes(document)
    return [_import_table(document, obj, domain, len(objects) > 1, list(notes)) for obj in objects]


def tables_of(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The tables (schema objects) of an ODCS v3 contract; a v2 contract, or one without, is refused."""
    api = str(document.get("apiVersion", ""))
    if api.startswith("v2") or "dataset" in document:
        raise ContractError(
            f"ODCS {api or 'v2'} contracts are not supported; convert the contract to v3 first"
        )
    objects = [o for o in document.get("schema") or [] if isinstance(o, Mapping)]
    if not objects:
        raise ContractError("the contract has no 'schema': there is no table to build an output port from")
    return objects


def _validity_notes(document: Mapping[str, Any]) -> list[str]:
    invalid = schema_errors(document)
    if not invalid:
        return []
    return [f"the contract is not valid ODCS {API_VERSION} ({len(invalid)} problem(s), e.g. {invalid[0]})"]


def _table_name(obj: Mapping[str, Any]) -> str:
    return str(obj.get("name") or obj.get("physicalName") or "")


def _chosen_table(objects: list[Mapping[str, Any]], table: str | None) -> Mapping[str, Any]:
    """The table named `table` (its name, else its physical name; any case), by default the first."""
    if table is None:
        return objects[0]
    for same in (lambda a, b: a == b, lambda a, b: a.lower() == b.lower()):
        for obj in objects:
            if any(same(str(obj.get(key) or ""), table) for key in ("name", "physicalName")):
                return obj
    names = [_table_name(o) for o in objects]
    close = difflib.get_close_matches(table, names, n=len(names), cutoff=0.6)
    if not close:
        lowered = {name.lower(): name for name in names}
        close = [lowered[n] for n in difflib.get_close_matches(table.lower(), lowered, n=5, cutoff=0.6)]
    ordered = close + [name for name in names if name not in close]
    raise ContractError(
        f"the contract has no table '{table}'"
        + (f"; did you mean {' or '.join(repr(name) for name in close[:3])}?" if close else ";")
        + f" pass --table with one of its {len(names)} tables: {', '.join(ordered)}"
    )


def _other_tables_note(objects: list[Mapping[str, Any]]) -> str:
    others = [_table_name(o) for o in objects[1:]]
    shown = ", ".join(others[:10]) + (f" and {len(others) - 10} more" if len(others) > 10 else "")
    return (
        f"the contract has {len(objects)} tables and a port is one table: drafted '{_table_name(objects[0])}'"
        f", not {shown}; pass --table <name> for another, or --all-tables for one product per table"
    )


def _import_table(
    document: Mapping[str, Any],
    obj: Mapping[str, Any],
    domain: str | None,
    several: bool,
    notes: list[str],
) -> ImportResult:
    """The draft of one table of the contract, in the spec's field order, judged by the spec models."""
    custom = custom_values(document.get("customProperties"))
    draft: dict[str, Any] = {
        **_identity_in(document, obj, custom, domain, several),
        **_governance_in(document, obj, custom, notes),
    }
    slos, sla_element = _slos(document, notes)
    if slos:
        draft["slos"] = slos
    tags = _tags_in(document)
    if tags:
        draft["tags"] = tags
    if isinstance(custom.get("inputPorts"), list):
        draft["input_ports"] = list(custom["inputPorts"])
    if isinstance(custom.get("transformation"), Mapping):
        draft["transformation"] = dict(custom["transformation"])
    draft["output_ports"] = [_port_in(document, obj, custom, sla_element, notes)]
    ordered = {key: draft[key] for key in SPEC_ORDER if key in draft}
    missing, problems = check_draft(ordered)
    return ImportResult(draft=ordered, missing=missing, problems=problems, notes=notes)


def _identity_in(
    document: Mapping[str, Any],
    obj: Mapping[str, Any],
    custom: Mapping[str, Any],
    domain: str | None,
    several: bool,
) -> dict[str, Any]:
    """Name, domain, title and description of the product; one of several tables is named after itself."""
    draft: dict[str, Any] = {}
    table = obj.get("name") or obj.get("physicalName")
    by_table = identifier_of(re.sub(r"_v\d+$", "", str(table or "")))
    # The mesh export names the product; else the (deprecated) ODCS `dataProduct`, else the table.
    name = (
        (by_table if several else None)
        or identifier_of(custom.get("product"))
        or identifier_of(document.get("dataProduct"))
        or by_table
        or identifier_of(document.get("name"))
    )
    if name:
        draft["name"] = name
    chosen_domain = domain or identifier_of(document.get("domain"))
    if chosen_domain:
        draft["domain"] = chosen_domain
    whole = document.get("name") or document.get("dataProduct")
    if several:  # the contract's name is every table's: the table names this product
        title = obj.get("businessName") or (f"{whole}: {table}" if whole else table)
    else:
        title = custom.get("title") or whole or obj.get("businessName")
    if isinstance(title, str) and len(title.strip()) >= 3:
        draft["title"] = title.strip()
    description = _description_in(document, obj if several else None)
    if description:
        draft["description"] = description
    return draft


def _description_in(document: Mapping[str, Any], obj: Mapping[str, Any] | None) -> dict[str, str] | None:
    """Purpose, usage and limitations from the contract's description (a table's own is its purpose)."""
    found: dict[str, str] = {}
    description = document.get("description")
    if isinstance(description, Mapping):
        parts = {k: description[k] for k in ("purpose", "usage", "limitations") if description.get(k)}
        found = {k: str(v).strip() for k, v in parts.items()}
    elif isinstance(description, str) and description.strip():
        found = {"purpose": description.strip()}
    own = obj.get("description") if obj is not None else None
    if isinstance(own, str) and len(own.strip()) >= 3:
        found["purpose"] = own.strip()
    return found or None


def _governance_in(
    document: Mapping[str, Any], obj: Mapping[str, Any], custom: Mapping[str, Any], notes: list[str]
) -> dict[str, Any]:
    """Owner, type, status, classification, access, agreements and support, as far as the contract says."""
    draft: dict[str, Any] = {}
    owner = _owner(document, notes)
    if owner:
        draft["owner"] = owner
    for key, spec_key in (("productType", "product_type"), ("businessCapability", "business_capability")):
        if custom.get(key):
            draft[spec_key] = custom[key]
    status = _status_in(custom.get("productStatus") or document.get("status"))
    if status:
        draft["status"] = status
    elif document.get("status"):
        notes.append(f"status '{document['status']}' is not a mesh status; set one of draft, beta, active")
    classification = custom.get("classification") or _classification_in(obj)
    if classification:
        draft["classification"] = classification
    for key, spec_key in (
        ("access", "access"),
        ("accessPolicy", "access_policy"),
        ("distributionRights", "distribution_rights"),
        ("dataSharingAgreement", "data_sharing_agreement"),
    ):
        if isinstance(custom.get(key), Mapping):
            draft[spec_key] = dict(custom[key])
    if "access_policy" not in draft:
        roles = [
            str(r["role"]) for r in document.get("roles") or [] if isinstance(r, Mapping) and r.get("role")
        ]
        if roles:
            draft["access_policy"] = {"allowed_roles": roles}
            notes.append("access_policy.allowed_roles taken from the contract's roles; review them")
    support = _support_in(document)
    if support:
        draft["support"] = support
    return draft


def _tags_in(document: Mapping[str, Any]) -> list[str]:
    """The contract's tags as the spec's slugs (`Finance` -> `finance`), each once."""
    tags = []
    for tag in document.get("tags") or []:
        slug = re.sub(r"[^a-z0-9_-]+", "-", str(tag).strip().lower()).strip("-")
        if slug:
            tags.append(slug)
    return list(dict.fromkeys(tags))


def _port_in(
    document: Mapping[str, Any],
    obj: Mapping[str, Any],
    custom: Mapping[str, Any],
    sla_element: str | None,
    notes: list[str],
) -> dict[str, Any]:
    """The output port of the draft: version, status, schema, keys, quality, deprecation."""
    port: dict[str, Any] = {}
    version = _semver(document.get("version"), notes)
    if version:
        port["version"] = version
    if custom.get("portStatus"):
        port["status"] = custom["portStatus"]
    description = custom.get("portDescription")
    if isinstance(description, str):
        port["description"] = description
    if isinstance(custom.get("model"), str):
        port["model"] = custom["model"]
    columns, primary_key = columns_in(obj, notes)
    if columns:
        port["columns"] = columns
    if primary_key:
        port["primary_key"] = primary_key
    event_time = _event_time_in(obj, custom, sla_element, {c.get("name") for c in columns})
    if event_time:
        port["event_time"] = event_time
    quality = quality_in(obj, port, notes)
    if quality:
        port["quality"] = quality
    if isinstance(custom.get("monitors"), Mapping):  # the learned monitors' tuning, as the export kept it
        port["monitors"] = dict(custom["monitors"])
    if isinstance(custom.get("lineage"), Mapping):  # declared column lineage, as the export kept it
        port["lineage"] = dict(custom["lineage"])
    if isinstance(custom.get("bindings"), list):  # the formats it is served in besides the table
        port["bindings"] = [dict(b) for b in custom["bindings"] if isinstance(b, Mapping)]
    _deprecation_in(document, custom, port)
    return {key: port[key] for key in PORT_ORDER if key in port}


def _event_time_in(
    obj: Mapping[str, Any], custom: Mapping[str, Any], sla_element: str | None, names: set[Any]
) -> str | None:
    """The port's event-time column: as the export kept it, else a property marked so, else the SLA's."""
    event_time = custom.get("eventTime")
    if not event_time:
        event_time = next(
            (
                p.get("name")
                for p in obj.get("properties") or []
                if isinstance(p, Mapping)
                and custom_values(p.get("customProperties")).get("eventTime") is True
            ),
            None,
        ) or (sla_element if sla_element in names else None)
    return event_time if event_time in names else None


def _deprecation_in(document: Mapping[str, Any], custom: Mapping[str, Any], port: dict[str, Any]) -> None:
    """The port's deprecation as the export kept it; else a deprecated contract's end of life as sunset."""
    if isinstance(custom.get("deprecation"), Mapping):
        port["deprecation"] = dict(custom["deprecation"])
    elif _status_in(document.get("status")) == "deprecated":
        end = next(
            (
                e.get("value")
                for e in document.get("slaProperties") or []
                if isinstance(e, Mapping) and str(e.get("property", "")).lower() in ("endoflife", "el")
            ),
            None,
        )
        port["status"] = "deprecated"
        port["deprecation"] = {"sunset": str(end)[:10]} if end else {}


def read_contract(path: Path) -> dict[str, Any]:
    """An ODCS contract file (YAML or JSON) as a mapping."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ContractError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ContractError(f"{path} is not an ODCS contract: expected a mapping of fields")
    return data
