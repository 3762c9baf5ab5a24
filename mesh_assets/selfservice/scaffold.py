"""`mesh new`: scaffold a domain's code location, or a data product that validates and builds at once.

A scaffolded product is complete from the first minute: every metamodel attribute is filled with a
sensible default (or a flag, or an answer when a person runs the command), the transformation really
runs, and a test checks it against the contract. Without input ports, a product starts from a small
self-contained `values` query (or, with `--source <system>.<extract>`, from a source extract); with
`--input`, from a query selecting the input ports' declared columns, joining further inputs by their key
where the first input carries it.

Everything written is recorded, so a refusal half-way (a dbt project that does not parse, say) leaves
the repository as it was. Nothing here reads the environment or imports heavy libraries at import time.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import keyword
import re
import shutil
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import yaml

from mesh_assets.product.registry import GOVERNANCE_DOMAIN, Product, Registry, effective_status, load_registry
from mesh_assets.product.spec import (
    IDENTIFIER,
    Classification,
    DataProductSpec,
    LogicalType,
    OutputPort,
    ProductType,
    Status,
    parse_duration,
)

if TYPE_CHECKING:
    from mesh_assets.infra.warehouse.duckdb import DuckDBSession

KINDS = ("sql", "python", "dbt")
SCHEMA_HEADER = "# yaml-language-server: $schema=../../../../mesh_assets/schemas/dataproduct.schema.json\n"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CLASS_ORDER = [c.value for c in Classification]
# Rules that keep holding for a column passed through unchanged; the rest name other columns or ports.
_INHERITED_RULES = {"accepted_values", "range", "pattern", "length"}
_RULE_TAIL = ("severity", "description")


class ScaffoldError(Exception):
    """A refusal: bad input or a failed step. The message says what is wrong and how to fix it."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Asker(Protocol):
    """How a command talks to the person running it (only when stdin is a terminal)."""

    def ask(self, label: str, default: str | None) -> str:
        """Ask for a value, offering `default`."""

    def tell(self, message: str) -> None:
        """Say something (e.g. why an answer was refused)."""


# --------------------------------------------------------------------------------------------------
# Recording changes so a refusal can undo them
# --------------------------------------------------------------------------------------------------


class Changes:
    """Files and folders a command created or modified, so it can report them or undo them all."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.created: list[Path] = []
        self.adopted: list[Path] = []
        self.originals: dict[Path, str] = {}

    def _mkdir(self, folder: Path) -> None:
        missing = [p for p in [folder, *folder.parents] if not p.exists()]
        for path in reversed(missing):
            path.mkdir()
            self.created.append(path)

    def mkdir(self, folder: Path) -> None:
        """Create a folder (and its parents), recording each one created."""
        self._mkdir(folder)

    def write(self, path: Path, text: str) -> None:
        """Write a file, recording whether it is new or what it held before."""
        if path not in self.originals and path not in self.created:
            if path.exists():
                self.originals[path] = path.read_text()
            else:
                self._mkdir(path.parent)
                self.created.append(path)
        path.write_text(text)

    def record(self, path: Path) -> None:
        """Record a file or folder another tool is about to write (dbt, `mesh prepare`), to undo it."""
        if path in self.originals or path in self.created:
            return
        if path.is_file():
            self.originals[path] = path.read_text()
        elif not path.exists():
            self.created.append(path)

    def adopt(self, path: Path) -> None:
        """Record a file, folder tree or link created by someone else (a copy, a symlink)."""
        self.created.append(path)
        self.adopted.append(path)

    def rollback(self) -> None:
        """Undo every change, newest first."""
        for path, text in self.originals.items():
            path.write_text(text)
        for path in reversed(self.created):
            if path.is_symlink() or path.is_file():
                path.unlink(missing_ok=True)
            elif path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
        self.created.clear()
        self.adopted.clear()
        self.originals.clear()

    def report(self) -> tuple[list[str], list[str]]:
        """Created files (not folders) and modified files, relative to the root."""

        def rel(path: Path) -> str:
            try:
                return str(path.relative_to(self.root))
            except ValueError:
                return str(path)

        created = [rel(p) + ("/" if p.is_dir() else "") for p in self.adopted]
        created += [rel(p) for p in self.created if p not in self.adopted and p.is_file()]
        return created, [rel(p) for p in self.originals]


@dataclass
class Scaffolded:
    """What a command did: files written, things worth knowing, and what to run next."""

    created: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# Names, answers and defaults
# --------------------------------------------------------------------------------------------------


def suggest_identifier(text: str) -> str:
    """The nearest valid identifier to `text` (lowercase, `_` for anything else, starting with a letter)."""
    slug = re.sub(r"[^a-z0-9]+", "_", text.strip().lower()).strip("_")
    slug = re.sub(r"^[^a-z]+", "", slug)
    return (slug or "my_name")[:63]


def check_identifier(what: str, name: str) -> None:
    """Refuse a domain or product name that is not a lowercase identifier (or is a Python keyword)."""
    if not re.fullmatch(IDENTIFIER, name) or len(name) > 63:
        raise ScaffoldError(
            f"'{name}' is not a valid {what} name: use lowercase letters, digits and '_', starting with a "
            f"letter, at most 63 characters, e.g. '{suggest_identifier(name)}'"
        )
    if keyword.iskeyword(name):
        # Domains are Python packages (`domains.<name>.definitions`); a keyword cannot be imported.
        raise ScaffoldError(f"'{name}' is a Python keyword and cannot name a {what}; e.g. '{name}_data'")


def _check_email(value: str) -> None:
    if not _EMAIL.match(value):
        raise ScaffoldError(
            f"'{value}' is not an email address; the steward is a person, e.g. ana@example.com"
        )


def _check_team(value: str) -> None:
    if not re.fullmatch(IDENTIFIER, value) or len(value) > 63:
        raise ScaffoldError(
            f"'{value}' is not a valid team name: lowercase letters, digits and '_', e.g. "
            f"'{suggest_identifier(value)}'"
        )


def _check_choice(allowed: list[str]) -> Callable[[str], None]:
    def check(value: str) -> None:
        if value not in allowed:
            close = difflib.get_close_matches(value, allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ScaffoldError(f"'{value}' is not one of {', '.join(allowed)}{hint}")

    return check


def _check_duration(value: str) -> None:
    try:
        parse_duration(value)
    except ValueError as exc:
        raise ScaffoldError(str(exc)) from exc


def _check_text(minimum: int) -> Callable[[str], None]:
    def check(value: str) -> None:
        if len(value.strip()) < minimum:
            raise ScaffoldError(f"'{value}' is too short: write at least {minimum} characters")

    return check


def answer(
    value: str | None,
    *,
    label: str,
    flag: str,
    default: str | None,
    asker: Asker | None,
    check: Callable[[str], None] | None = None,
) -> str:
    """A flag's value, else the person's answer (only with a terminal), else the default.

    A bad flag value is refused; a bad answer is asked again. Without a default and without a terminal
    the flag is required, and the refusal names it so CI logs say exactly what to add.
    """
    if value is not None:
        if check is not None:
            try:
                check(value)
            except ScaffoldError as exc:
                raise ScaffoldError(f"{flag}: {exc}") from exc
        return value
    if asker is not None:
        while True:
            got = asker.ask(label, default).strip()
            try:
                if check is not None:
                    check(got)
                return got
            except ScaffoldError as exc:
                asker.tell(str(exc))
    if default is None:
        raise ScaffoldError(f"{label} is required: pass {flag}")
    return default


def git_email(root: Path) -> str | None:
    """The person's `git config user.email`, if git knows it."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        result = subprocess.run(
            [git, "config", "--get", "user.email"], cwd=root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    email = result.stdout.strip()
    return email if result.returncode == 0 and _EMAIL.match(email) else None


def half_duration(text: str) -> str:
    """Half of a duration, in the largest whole unit (`24h` -> `12h`, `1h` -> `30m`)."""
    minutes = max(1, int(parse_duration(text).total_seconds() // 120))
    if minutes % (24 * 60) == 0 and minutes >= 2 * 24 * 60:
        return f"{minutes // (24 * 60)}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def humanize(name: str) -> str:
    """`run_sites` -> `Run sites`."""
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def domain_defaults(registry: Registry, domain: str) -> dict[str, str]:
    """Team, steward, support channel and capability most used by the domain's products, if any."""
    found: dict[str, str] = {}
    products = registry.domain_products(domain)
    for attribute, read in {
        "team": lambda p: p.spec.owner.team,
        "steward": lambda p: p.spec.owner.steward,
        "channel": lambda p: p.spec.support.channel,
        "capability": lambda p: p.spec.business_capability,
    }.items():
        values = [read(p) for p in products]
        if values:
            found[attribute] = max(set(values), key=values.count)
    return found


@dataclass
class Governance:
    """The metamodel attributes a tool cannot know, resolved from flags, answers and defaults."""

    team: str
    steward: str
    classification: str
    status: str
    freshness: str
    support_channel: str
    business_capability: str
    allowed_roles: list[str]


def resolve_governance(
    root: Path,
    registry: Registry,
    domain: str,
    *,
    owner_team: str | None,
    steward: str | None,
    classification: str | None,
    status: str | None,
    freshness: str | None,
    support_channel: str | None,
    business_capability: str | None,
    allowed_roles: list[str] | None,
    default_classification: str,
    default_status: str,
    asker: Asker | None,
    defaults: dict[str, str] | None = None,
) -> Governance:
    """Ask for (or take from flags) the owner, classification and SLO; default the rest sensibly.

    Defaults, most specific first: `defaults` (e.g. a dbt group's owner), what the domain's products
    already say, then git's `user.email` for the steward and `<domain>_data` for the team.
    """
    known = {**domain_defaults(registry, domain), **(defaults or {})}
    steward_default = known.get("steward") or git_email(root)
    resolved_steward = answer(
        steward,
        label="Data steward (email of the accountable person)",
        flag="--steward",
        default=steward_default,
        asker=asker,
        check=_check_email,
    )
    team = answer(
        owner_team,
        label="Owner team",
        flag="--owner-team",
        default=known.get("team") or f"{domain}_data",
        asker=asker,
        check=_check_team,
    )
    resolved_class = answer(
        classification,
        label="Classification (public, internal, confidential, restricted)",
        flag="--classification",
        default=default_classification,
        asker=asker,
        check=_check_choice(_CLASS_ORDER),
    )
    resolved_freshness = answer(
        freshness,
        label="Freshness SLO: maximum age of the published data (e.g. 24h, 6h, 30m)",
        flag="--freshness",
        default="24h",
        asker=asker,
        check=_check_duration,
    )
    resolved_status = answer(
        status,
        label="Status",
        flag="--status",
        default=default_status,
        asker=None,
        check=_check_choice([s.value for s in Status if s != Status.DEPRECATED]),
    )
    channel = support_channel or known.get("channel") or f"#{domain.replace('_', '-')}-data"
    capability = business_capability or known.get("capability") or humanize(domain)
    _check_text(3)(capability)
    # Secure by default for sensitive data: nobody reads confidential or restricted data until the
    # owner names a role; public and internal data start readable by analysts, as in the example mesh.
    roles = (
        allowed_roles
        if allowed_roles is not None
        else (["analyst"] if resolved_class in {"public", "internal"} else [])
    )
    return Governance(
        team=team,
        steward=resolved_steward,
        classification=resolved_class,
        status=resolved_status,
        freshness=resolved_freshness,
        support_channel=channel,
        business_capability=capability,
        allowed_roles=roles,
    )


_TERMS = {
    "public": "Free to use and to share, also outside the company, with attribution to the owner team.",
    "internal": "Internal use only; ask the owner team before sharing it outside the company.",
    "confidential": "Internal use on a need-to-know basis; never shared outside the company.",
    "restricted": "Approved consumers only, for their stated purpose; never copied or shared further.",
}


def spec_document(
    *,
    name: str,
    domain: str,
    title: str,
    purpose: str,
    usage: str,
    limitations: str,
    governance: Governance,
    product_type: str,
    tags: list[str],
    input_ports: list[dict[str, Any]],
    transformation: dict[str, Any],
    output_ports: list[dict[str, Any]],
) -> dict[str, Any]:
    """A complete `dataproduct.yaml` document: every metamodel attribute present."""
    return {
        "name": name,
        "domain": domain,
        "title": title,
        "description": {"purpose": purpose, "usage": usage, "limitations": limitations},
        "owner": {"team": governance.team, "steward": governance.steward},
        "product_type": product_type,
        "status": governance.status,
        "business_capability": governance.business_capability,
        "classification": governance.classification,
        "access": {"mode": "open"},
        "access_policy": {
            "allowed_roles": Flow(governance.allowed_roles),
            "denied_roles": Flow([]),
            "pii_handling": "mask",
        },
        "distribution_rights": {
            "redistribute_unmodified": governance.classification == "public",
            "redistribute_modified": governance.classification in {"public", "internal"},
        },
        "data_sharing_agreement": {
            "reference": f"{governance.classification}-data-terms",
            "terms": _TERMS[governance.classification],
        },
        "support": {"channel": governance.support_channel, "kind": "slack"},
        "slos": {
            "freshness": {"max_age": governance.freshness, "warn_after": half_duration(governance.freshness)},
            "availability": 0.99,
            "quality_pass_rate": 0.99,
            "window": "30d",
        },
        "tags": Flow(tags),
        "input_ports": input_ports,
        "transformation": transformation,
        "output_ports": output_ports,
    }


# --------------------------------------------------------------------------------------------------
# YAML in the style of the example specs (one flow mapping per column)
# --------------------------------------------------------------------------------------------------


class Flow(list):
    """A list written in flow style: `[a, b]`."""


class FlowMap(dict):
    """A mapping written in flow style on one line: `{name: x, type: string}`."""


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


_Dumper.add_representer(Flow, lambda d, data: d.represent_sequence("tag:yaml.org,2002:seq", data, True))
_Dumper.add_representer(FlowMap, lambda d, data: d.represent_mapping("tag:yaml.org,2002:map", data, True))


def dump_yaml(document: dict[str, Any]) -> str:
    """YAML text of a document, keys in the given order."""
    # No wrapping: one column per line, as in the example specs, however long its description.
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=4096, allow_unicode=True)


def render_spec(document: dict[str, Any], folder: Path) -> str:
    """The spec file's text, validated against the spec models first (a refusal names the field)."""
    from pydantic import ValidationError

    try:
        DataProductSpec.model_validate(document)
    except ValidationError as exc:
        from mesh_assets.product.registry import _issue_from_pydantic

        problems = [_issue_from_pydantic(folder / "dataproduct.yaml", e) for e in exc.errors()]
        raise ScaffoldError(
            "the product would not be valid:\n"
            + "\n".join(f"  - {p.field}: {p.message}. Fix: {p.fix}" for p in problems)
        ) from exc
    return SCHEMA_HEADER + dump_yaml(document)


# --------------------------------------------------------------------------------------------------
# Domains
# --------------------------------------------------------------------------------------------------

DEFINITIONS = '''"""{docstring}"""

import dagster as dg

from mesh_assets.build.location import build_domain


@dg.definitions
def defs() -> dg.Definitions:
    """Every product of the domain, built from its `dataproduct.yaml` files."""
    return build_domain("{name}")
'''


def existing_domains(root: Path) -> list[str]:
    """Domains with a code location (a `definitions.py`)."""
    folder = root / "domains"
    if not folder.is_dir():
        return []
    return sorted(d.name for d in folder.iterdir() if (d / "definitions.py").is_file())


def _workspace_location_line(existing: str | None, name: str) -> str:
    line = f"- python_module: {{module_name: domains.{name}.definitions, location_name: {name}, "
    line += "working_directory: .}"
    indent = "  "
    if existing is not None:
        indent = existing[: len(existing) - len(existing.lstrip())]
    return indent + line


def register_location(root: Path, name: str, changes: Changes) -> None:
    """Add the domain's code location to `workspace.yaml`, keeping its comments and layout.

    The entry goes before the governance location (`mesh`), which stays last, in the one-line style of
    the existing entries.
    """
    path = root / "workspace.yaml"
    text = path.read_text() if path.exists() else "load_from:\n"
    data = yaml.safe_load(text) or {}
    entries = data.get("load_from") or []
    for entry in entries:
        module = (entry or {}).get("python_module") or {}
        module = {"module_name": module} if isinstance(module, str) else module
        if module.get("location_name") == name or module.get("module_name") == f"domains.{name}.definitions":
            raise ScaffoldError(f"workspace.yaml already has a code location '{name}'; pick another name")
    lines = text.splitlines()
    items = [i for i, line in enumerate(lines) if line.lstrip().startswith("- python_module")]
    governance = next((i for i in items if f"domains.{GOVERNANCE_DOMAIN}.definitions" in lines[i]), None)
    new_line = _workspace_location_line(lines[items[0]] if items else None, name)
    if governance is not None:
        lines.insert(governance, new_line)
    else:
        lines.append(new_line)
    updated = "\n".join(lines) + "\n"
    parsed = yaml.safe_load(updated) or {}
    modules = [(e or {}).get("python_module") or {} for e in parsed.get("load_from") or []]
    if not any(isinstance(m, dict) and m.get("location_name") == name for m in modules):
        # An unusual layout (e.g. load_from not last): rewrite it structurally rather than guess.
        data.setdefault("load_from", []).append(
            {
                "python_module": {
                    "module_name": f"domains.{name}.definitions",
                    "location_name": name,
                    "working_directory": ".",
                }
            }
        )
        updated = yaml.safe_dump(data, sort_keys=False)
    changes.write(path, updated)


def create_domain(root: Path, name: str, description: str | None, changes: Changes) -> None:
    """Write the domain's folder, thin `definitions.py`, `products/` and `tests/`, and register it."""
    check_identifier("domain", name)
    if name == GOVERNANCE_DOMAIN:
        raise ScaffoldError(f"'{name}' is the governance code location; pick another domain name")
    folder = root / "domains" / name
    if folder.exists():
        raise ScaffoldError(
            f"domain '{name}' already exists ({folder.relative_to(root)}); add a product to it with "
            f"`mesh new product {name} <product>`"
        )
    text = " ".join((description or "the domain's data products.").split())
    if not text.endswith("."):
        text += "."
    # A docstring: no quotes or backslashes that would end or escape it, wrapped to the line length.
    text = text.replace("\\", "/").replace('"', "'")
    docstring = "\n".join(textwrap.wrap(f"Code location of the `{name}` domain: {text}", width=104))
    changes.write(folder / "__init__.py", "")
    changes.write(folder / "definitions.py", DEFINITIONS.format(name=name, docstring=docstring))
    changes.write(folder / "products" / ".gitkeep", "")
    changes.write(folder / "tests" / "__init__.py", "")
    register_location(root, name, changes)


def new_domain(root: Path, name: str, description: str | None = None) -> Scaffolded:
    """`mesh new domain <name>`: a code location ready for its first product."""
    root = root.resolve()
    changes = Changes(root)
    try:
        create_domain(root, name, description, changes)
    except BaseException:
        changes.rollback()
        raise
    created, modified = changes.report()
    return Scaffolded(
        created=created,
        modified=modified,
        notes=[
            f"The code location '{name}' loads once it holds a product (a domain without products is "
            "refused at load)."
        ],
        next_steps=[
            f"mesh new product {name} <product> [--kind sql|python|dbt] [--input <domain>.<product>]"
        ],
    )


# --------------------------------------------------------------------------------------------------
# Products: inputs and the contract they start from
# --------------------------------------------------------------------------------------------------


@dataclass
class ProductRequest:
    """Everything `mesh new product` can be told; `None` means: ask, or use the default."""

    domain: str
    name: str
    kind: str = "sql"
    inputs: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    primary_key: list[str] = field(default_factory=list)
    title: str | None = None
    description: str | None = None
    usage: str | None = None
    limitations: str | None = None
    owner_team: str | None = None
    steward: str | None = None
    classification: str | None = None
    product_type: str | None = None
    status: str | None = None
    freshness: str | None = None
    support_channel: str | None = None
    business_capability: str | None = None
    allowed_roles: list[str] | None = None
    tags: list[str] = field(default_factory=list)
    project: str | None = None


@dataclass
class InputChoice:
    """A declared `--input`: the producer, the port it resolves to, and the input port entry."""

    reference: str
    producer: Product
    port: OutputPort
    entry: dict[str, Any]

    @property
    def alias(self) -> str:
        """The name it goes by in the starting query."""
        return self.producer.spec.name


@dataclass
class SourceChoice:
    """A declared `--source`: the extract's file and its columns (as landed: text)."""

    source: str
    path: Path
    file_format: str
    columns: list[str]

    @property
    def alias(self) -> str:
        """The name it goes by in the starting query."""
        return self.source.split(".")[1]


def resolve_input(registry: Registry, reference: str, consumer: str) -> InputChoice:
    """An `--input <domain>.<product>[@<major>]` of the product `consumer` (`<domain>.<product>`),
    resolved to the port it would read; a refusal naming the fix otherwise."""
    from mesh_assets.product import access

    consumer_domain = consumer.split(".")[0]
    text = reference.strip().replace("/", ".")
    major: int | None = None
    if "@" in text:
        text, _, wanted = text.partition("@")
        if not wanted.lstrip("v").isdigit():
            raise ScaffoldError(f"--input {reference}: write the major version as a number, e.g. {text}@2")
        major = int(wanted.lstrip("v"))
    producer = registry.products.get(text)
    if producer is None:
        close = difflib.get_close_matches(text, registry.products, n=3)
        hint = (
            f"did you mean {', '.join(repr(c) for c in close)}?"
            if close
            else "known products: " + ", ".join(sorted(registry.products))
        )
        if text in registry.unreadable:
            hint = f"its spec is invalid: run `mesh validate` and fix {text} first"
        raise ScaffoldError(f"--input {reference}: no product '{text}' in the mesh; {hint}")
    spec = producer.spec
    live = [
        p
        for p in spec.output_ports
        if effective_status(spec, p, registry.today) not in {Status.RETIRED}
        and (major is None or p.major == major)
    ]
    if not live:
        served = ", ".join(
            f"v{p.major} ({effective_status(spec, p, registry.today)})" for p in spec.output_ports
        )
        raise ScaffoldError(f"--input {reference}: {spec.key} serves no such port; it has {served}")
    current = [p for p in live if effective_status(spec, p, registry.today) != Status.DEPRECATED]
    port = max(current or live, key=lambda p: p.major)
    status = effective_status(spec, port, registry.today)
    entry: dict[str, Any] = {
        "product": spec.key,
        "version": f"^{port.major}",
        "purpose": f"Read {spec.title} (v{port.major}).",
    }
    same_domain = spec.domain == consumer_domain
    if status == Status.DRAFT and not same_domain:
        raise ScaffoldError(
            f"--input {reference}: {spec.key} v{port.major} is a draft, readable only inside domain "
            f"'{spec.domain}'; wait until it is beta or active, or ask {spec.owner.steward}"
        )
    if status == Status.BETA and not same_domain:
        entry["preview"] = True  # reading a beta port is an explicit opt-in; the flag says so
    decision = access.consumer_may_read(spec, consumer)
    if not decision.allowed:
        raise ScaffoldError(
            f"--input {reference}: {decision.reason}; ask {access.ask_owner(spec)} to add "
            f"'- product: {consumer}' with its purpose to access.approved_consumers of {spec.key}"
        )
    return InputChoice(reference=spec.key, producer=producer, port=port, entry=entry)


def resolve_source(source: str, sources_dir: Path) -> SourceChoice:
    """A `--source <system>.<extract>`: its extract file under the sources folder, and its columns."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*", source):
        raise ScaffoldError(f"--source {source}: write <system>.<extract> in lowercase, e.g. crm.customers")
    system, extract = source.split(".")
    for file_format in ("csv", "parquet"):
        path = sources_dir / system / f"{extract}.{file_format}"
        if path.exists():
            import duckdb

            quoted = str(path).replace("'", "''")
            reader = (
                f"read_csv('{quoted}', header = true, all_varchar = true)"
                if file_format == "csv"
                else f"read_parquet('{quoted}')"
            )
            columns = [row[0] for row in duckdb.sql(f"DESCRIBE SELECT * FROM {reader}").fetchall()]
            bad = [c for c in columns if not re.fullmatch(IDENTIFIER, c)]
            if bad:
                raise ScaffoldError(
                    f"--source {source}: columns {', '.join(bad)} of {path} are not lowercase identifiers; "
                    "rename them in the export"
                )
            return SourceChoice(source, path, file_format, columns)
    known = sorted(
        f"{s.name}.{f.stem}"
        for s in (sources_dir.iterdir() if sources_dir.is_dir() else [])
        if s.is_dir()
        for f in s.iterdir()
        if f.suffix in {".csv", ".parquet"}
    )
    close = difflib.get_close_matches(source, known, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise ScaffoldError(
        f"--source {source}: no extract at {sources_dir / system / extract}.csv (or .parquet); {hint}"
        "generate the example extracts with `mesh generate`, or point MESH_SOURCES_DIR at the export"
    )


@dataclass
class Contract:
    """The output port a product starts with, and how the starting query builds it."""

    columns: list[dict[str, Any]]
    primary_key: list[str]
    event_time: str | None = None
    rules: list[dict[str, Any]] = field(default_factory=list)
    joins: list[tuple[InputChoice, list[str], list[str]]] = field(default_factory=list)
    """Further inputs joined to the first: (input, join key, columns it adds)."""
    unjoined: list[InputChoice | SourceChoice] = field(default_factory=list)
    base: InputChoice | SourceChoice | None = None
    base_columns: list[str] = field(default_factory=list)
    dropped_pii: list[str] = field(default_factory=list)
    """`<input>.<column>` of PII columns the start leaves out."""

    @property
    def pii(self) -> bool:
        """Whether any column holds personal data."""
        return any(c.get("pii") for c in self.columns)


EXAMPLE_COLUMNS = [
    {
        "name": "id",
        "type": "bigint",
        "nullable": False,
        "unique": True,
        "description": "Identifier of the row (the starting query's sample rows).",
    },
    {"name": "name", "type": "string", "nullable": False, "description": "Display name of the row."},
    {
        "name": "updated_at",
        "type": "timestamp",
        "nullable": False,
        "description": "When the row was last updated.",
    },
]


def _column_entry(column: Any, *, kind: str, nullable: bool | None = None, unique: bool = False) -> dict:
    entry: dict[str, Any] = {"name": column.name, "type": column.type.value}
    if column.type == LogicalType.DECIMAL:
        if kind == "python":
            # pandas reads decimals as floats: a Python product publishes them as doubles.
            entry["type"] = "double"
        else:
            entry["precision"], entry["scale"] = column.precision, column.scale
    if not (column.nullable if nullable is None else nullable):
        entry["nullable"] = False  # nullable is the default; the example specs state only `false`
    if unique:
        entry["unique"] = True
    if column.pii:
        entry["pii"] = True
    entry["description"] = column.description
    if column.examples:
        entry["examples"] = Flow(column.examples)
    return entry


def plan_contract(
    kind: str, inputs: list[InputChoice], sources: list[SourceChoice], primary_key: list[str]
) -> Contract:
    """The starting contract: the first input's columns (and rules), plus those of joinable inputs."""
    if not inputs and not sources:
        contract = Contract(
            columns=[dict(c) for c in EXAMPLE_COLUMNS], primary_key=["id"], event_time="updated_at"
        )
    elif inputs:
        base = inputs[0]
        port = base.port
        single_key = port.primary_key if len(port.primary_key) == 1 else []
        # Data minimisation: a consumer reads another product's PII masked unless that product's owner
        # approves it by name, so PII columns are left out of the start (the key excepted).
        kept = [c for c in port.columns if not c.pii or c.name in port.primary_key]
        columns = [_column_entry(c, kind=kind, unique=c.unique or c.name in single_key) for c in kept]
        contract = Contract(
            columns=columns,
            primary_key=list(port.primary_key),
            event_time=port.event_time if port.event_time in {c.name for c in kept} else None,
            base=base,
            base_columns=[c.name for c in kept],
            dropped_pii=[f"{base.reference}.{c.name}" for c in port.columns if c not in kept],
        )
        taken = {c.name for c in port.columns}
        for other in [*inputs[1:]]:
            key = list(other.port.primary_key)
            if other.producer.key != base.producer.key and all(k in taken for k in key):
                # Its key is a column of the first input: a left join adds its attributes, one row each.
                added = [c for c in other.port.columns if c.name not in taken and not c.pii]
                contract.dropped_pii += [
                    f"{other.reference}.{c.name}" for c in other.port.columns if c.name not in taken and c.pii
                ]
                contract.columns += [_column_entry(c, kind=kind, nullable=True) for c in added]
                contract.joins.append((other, key, [c.name for c in added]))
                taken |= {c.name for c in added}
            else:
                contract.unjoined.append(other)
        contract.unjoined += sources
        included = {c["name"] for c in contract.columns}
        declared = {i.reference for i in inputs}
        for choice in [base, *(j[0] for j in contract.joins)]:
            for rule in choice.port.quality.rules:
                dumped = rule.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
                data = {"type": rule.type, **{k: v for k, v in dumped.items() if k not in _RULE_TAIL}}
                data |= {k: dumped[k] for k in _RULE_TAIL if k in dumped}
                column = data.get("column")
                keep = rule.type in _INHERITED_RULES or (
                    rule.type == "references" and data["port"] in declared
                )
                if (
                    keep
                    and column in included
                    and rule.check_name not in {r.get("name") for r in contract.rules}
                ):
                    contract.rules.append(FlowMap(data))
    else:
        base_source = sources[0]
        key = primary_key or base_source.columns[:1]
        columns = [
            {
                "name": name,
                "type": "string",
                **({"nullable": False} if name in key else {}),
                **({"unique": True} if key == [name] else {}),
                "description": f"`{name}` of the {base_source.source} extract, as text.",
            }
            for name in base_source.columns
        ]
        contract = Contract(
            columns=columns, primary_key=key, base=base_source, base_columns=list(base_source.columns)
        )
        contract.unjoined += sources[1:]
    if primary_key:
        names = [c["name"] for c in contract.columns]
        unknown = [k for k in primary_key if k not in names]
        if unknown:
            raise ScaffoldError(
                f"--primary-key {','.join(unknown)}: not a column of the product; its columns are "
                + ", ".join(names)
            )
        contract.primary_key = list(primary_key)
        for column in contract.columns:
            if column["name"] in primary_key:
                column["nullable"] = False
    return contract


# --------------------------------------------------------------------------------------------------
# Transformations
# --------------------------------------------------------------------------------------------------


def _reserved_words() -> set[str]:
    import duckdb

    rows = duckdb.sql("SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category = 'reserved'")
    return {row[0] for row in rows.fetchall()}


def _quoter() -> Callable[[str], str]:
    reserved = _reserved_words()
    return lambda name: f'"{name}"' if name in reserved else name


def _aliases(contract: Contract) -> dict[int, str]:
    """A unique query alias per input (by object identity)."""
    names: dict[int, str] = {}
    used: set[str] = set()
    reserved = _reserved_words()
    for choice in [contract.base, *(j[0] for j in contract.joins), *contract.unjoined]:
        if choice is None:
            continue
        alias = choice.alias
        if alias in used and isinstance(choice, InputChoice):
            alias = f"{choice.producer.spec.domain}_{alias}"
        if alias in reserved or keyword.iskeyword(alias):
            alias += "_input"  # the alias is a SQL alias and a Python variable: neither may be a keyword
        while alias in used:
            alias += "_2"
        used.add(alias)
        names[id(choice)] = alias
    return names


def _relation_sql(choice: InputChoice | SourceChoice, kind: str) -> str:
    if isinstance(choice, InputChoice):
        if kind == "dbt":
            from mesh_assets.build.dbt_contracts import port_source_name
            from mesh_assets.product.addressing import port_relation

            spec = choice.producer.spec
            table = port_relation(spec.domain, spec.name, choice.port.major).name
            return f"{{{{ source('{port_source_name(spec.domain)}', '{table}') }}}}"
        return f"{{{{ input('{choice.reference}') }}}}"
    if kind == "dbt":
        system, extract = choice.source.split(".")
        return f"{{{{ source('{system}', '{extract}') }}}}"
    return f"{{{{ source('{choice.source}') }}}}"


def sql_model(spec_key: str, major: int, title: str, contract: Contract, kind: str) -> str:
    """The port's starting SQL (DuckDB dialect; for dbt, with dbt's `source()`)."""
    q = _quoter()
    header = f"-- {spec_key} v{major}: {title}.\n"
    guide = (
        "-- A starting query: shape it into the product, then keep the contract in dataproduct.yaml\n"
        "-- (output_ports[0].columns) in step with what it returns. `mesh validate` and the\n"
        "-- contract_schema check say when they differ.\n"
    )
    if contract.base is None:
        return (
            header + "-- Sample rows so the product builds at once: replace them with a query over the\n"
            "-- product's inputs (declare them in dataproduct.yaml: input_ports).\n"
            "select\n"
            "    cast(id as bigint) as id,\n"
            "    cast(name as varchar) as name,\n"
            "    cast(current_timestamp as timestamp) as updated_at\n"
            "from (values\n"
            "    (1, 'first example'),\n"
            "    (2, 'second example'),\n"
            "    (3, 'third example')\n"
            ") as examples (id, name)\n"
        )
    aliases = _aliases(contract)
    base_alias = aliases[id(contract.base)]
    ctes = []
    for choice in contract.unjoined:
        what = "input port" if isinstance(choice, InputChoice) else "source extract"
        ctes.append(
            f"{aliases[id(choice)]} as (\n"
            f"    -- A declared {what}, not joined yet: join it below on the right key.\n"
            f"    select * from {_relation_sql(choice, kind)}\n)"
        )
    lines = [f"    {base_alias}.{q(c)}" for c in contract.base_columns]
    for choice, _, added in contract.joins:
        lines += [f"    {aliases[id(choice)]}.{q(c)}" for c in added]
    body = "select\n" + ",\n".join(lines) + "\n"
    body += f"from {_relation_sql(contract.base, kind)} as {base_alias}\n"
    for choice, key, _ in contract.joins:
        alias = aliases[id(choice)]
        on = " and ".join(f"{alias}.{q(k)} = {base_alias}.{q(k)}" for k in key)
        body += f"left join {_relation_sql(choice, kind)} as {alias}\n    on {on}\n"
    if isinstance(contract.base, SourceChoice):
        key = contract.primary_key
        keys = ", ".join(f"{base_alias}.{q(k)}" for k in key)
        body = (
            "-- The extract lands as text: cast columns here (e.g. cast(x as date)), then update the\n"
            "-- contract to match.\n"
            + body
            + "where "
            + " and ".join(f"{base_alias}.{q(k)} is not null" for k in key)
            + "\n-- One row per key: order the window (e.g. by an update time) to keep the latest version.\n"
            + f"qualify row_number() over (partition by {keys} order by {keys}) = 1\n"
        )
    text = header + guide
    if ctes:
        text += "with " + ",\n".join(ctes) + "\n\n"
    return text + body


def _py_list(values: list[str], indent: int) -> str:
    """A list of strings, one per line with a trailing comma (a layout `ruff format` keeps)."""
    pad = " " * (indent + 4)
    return "[\n" + "".join(f"{pad}{json.dumps(v)},\n" for v in values) + " " * indent + "]"


def _docstring(text: str, indent: int) -> str:
    """A docstring of `text`, wrapped to the repository's line length."""
    pad = " " * indent
    lines = textwrap.wrap(text.strip().replace("\\", "/").replace('"', "'"), width=100 - indent)
    if len(lines) == 1:
        return f'{pad}"""{lines[0]}"""\n'
    return f'{pad}"""' + f"\n{pad}".join(lines) + f'\n{pad}"""\n'


def _statement(head: str, args: list[str], indent: int = 4) -> str:
    """`head(args)` on one line if it fits the line length, else the arguments on their own line."""
    pad = " " * indent
    one = f"{pad}{head}({', '.join(args)})"
    if len(one) <= 110:
        return one
    return f"{pad}{head}(\n{pad}    {', '.join(args)}\n{pad})"


def python_module(spec_key: str, function: str, title: str, purpose: str, contract: Contract) -> str:
    """The product's starting `transform.py`: a function from the input DataFrames to the port.

    Laid out the way `ruff format` would, so the repository's lint stays clean.
    """
    doc = '"""' + "\n".join(textwrap.wrap(f"{spec_key}: {title}.".replace('"', "'"), width=104)) + "\n\n"
    doc += (
        f"The platform calls `{function}(inputs)` with one DataFrame per declared input port and\n"
        "publishes what it returns once the contract checks pass: return exactly the contract's\n"
        'columns (output_ports[0].columns in dataproduct.yaml).\n"""\n\n'
        "from __future__ import annotations\n\n"
    )
    signature = f"def {function}(inputs: dict[str, pd.DataFrame]) -> pd.DataFrame:\n" + _docstring(purpose, 4)
    if contract.base is None:
        return (
            doc
            + "from datetime import UTC, datetime\n\nimport pandas as pd\n\n\n"
            + signature
            + "    # Sample rows so the product builds at once: replace them with your data (declare the\n"
            + "    # inputs in dataproduct.yaml: input_ports; they arrive in `inputs`).\n"
            + "    now = datetime.now(UTC).replace(tzinfo=None)\n"
            + "    return pd.DataFrame(\n"
            + "        {\n"
            + '            "id": pd.Series([1, 2, 3], dtype="int64"),\n'
            + '            "name": ["first example", "second example", "third example"],\n'
            + '            "updated_at": [now, now, now],\n'
            + "        }\n"
            + "    )\n"
        )
    aliases = _aliases(contract)
    base_alias = aliases[id(contract.base)]
    key_of = contract.base.reference if isinstance(contract.base, InputChoice) else contract.base.source
    constants = [f"COLUMNS = {_py_list(contract.base_columns, 0)}"]
    constants[0] = "# The columns the port keeps from " + key_of + ".\n" + constants[0]
    body = [f"    {base_alias} = inputs[{json.dumps(key_of)}]"]
    for choice, key, added in contract.joins:
        alias = aliases[id(choice)]
        body.append(f"    {alias} = inputs[{json.dumps(choice.reference)}]")
        constants.append(
            f"# Joined from {choice.reference} by its key.\n{alias.upper()}_KEY = {_py_list(key, 0)}\n"
            f"{alias.upper()}_COLUMNS = {_py_list(added, 0)}"
        )
    for choice in contract.unjoined:
        name = choice.reference if isinstance(choice, InputChoice) else choice.source
        body.append(f"    # {name} is declared but not joined yet: join it on the right key.")
        body.append(f"    {aliases[id(choice)]} = inputs[{json.dumps(name)}]")
    body.append(f"    result = {base_alias}[COLUMNS]")
    if isinstance(contract.base, SourceChoice):
        constants.append(f"KEY = {_py_list(contract.primary_key, 0)}")
        body.append("    # One row per key: sort first (e.g. by an update time) so `last` is the latest.")
        body.append('    result = result.dropna(subset=KEY).drop_duplicates(subset=KEY, keep="last")')
    for choice, _, _ in contract.joins:
        alias = aliases[id(choice)]
        body.append(f"    joined = {alias}[[*{alias.upper()}_KEY, *{alias.upper()}_COLUMNS]]")
        body.append(_statement("result = result.merge", ["joined", f"on={alias.upper()}_KEY", 'how="left"']))
    integers = [c["name"] for c in contract.columns if c["type"] in {"integer", "bigint"}]
    dates = [c["name"] for c in contract.columns if c["type"] == "date"]
    if integers or dates:
        body.append(
            "    # The warehouse hands dates over as timestamps, and a left join turns integers with gaps\n"
            "    # into floats: give them back the contract's types."
        )
    if integers:
        constants.append(f"INTEGER_COLUMNS = {_py_list(integers, 0)}")
        body.append('    result = result.astype(dict.fromkeys(INTEGER_COLUMNS, "Int64"))')
    if dates:
        constants.append(f"DATE_COLUMNS = {_py_list(dates, 0)}")
        body.append("    for column in DATE_COLUMNS:")
        body.append("        result[column] = pd.to_datetime(result[column]).dt.date")
    body.append("    return result.reset_index(drop=True)")
    return (
        doc + "import pandas as pd\n\n" + "\n".join(constants) + "\n\n\n" + signature + "\n".join(body) + "\n"
    )


TEST_TEMPLATE = '''"""Tests of the `{key}` data product.

Run them with `pytest {test_path}`.
"""

from pathlib import Path

from mesh_assets.selfservice.scaffold import check_product

ROOT = Path(__file__).resolve().parents[3]


def test_{name}_meets_its_contract() -> None:
    """The spec is valid and the transformation returns exactly the contract's columns and types.

    For SQL and Python products the transformation runs in a scratch in-memory DuckDB on one
    synthetic row per input; `mesh run --domain {domain}` builds it on real data.
    """
    assert check_product(ROOT, "{key}") == []
'''

PYTHON_TEST_EXTRA = '''

def _transform() -> ModuleType:
    """The product's transform module, loaded by path (product folders are not packages)."""
    path = ROOT / "domains" / "{domain}" / "products" / "{name}" / "transform.py"
    spec = importlib.util.spec_from_file_location("{name}_transform", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_{function}_returns_the_contract_columns() -> None:
    """A unit test to grow: hand-made inputs in, the contract's columns out."""
    inputs = {inputs}
    result = _transform().{function}(inputs)
    port = load_registry(ROOT).products["{key}"].spec.output_ports[0]
    assert list(result.columns) == [column.name for column in port.columns]
'''

PYTHON_TEST_IMPORTS = """from pathlib import Path

from mesh_assets.selfservice.scaffold import check_product
"""

PYTHON_TEST_IMPORTS_FULL = """import importlib.util
from pathlib import Path
from types import ModuleType

import pandas as pd

from mesh_assets.product.registry import load_registry
from mesh_assets.selfservice.scaffold import check_product
"""


def _sample_frame_code(contract: Contract) -> str:
    """Python source of hand-made input DataFrames (one row each) for the generated unit test."""
    samples = {
        "string": '["x"]',
        "integer": "[1]",
        "bigint": "[1]",
        "double": "[1.0]",
        "decimal": "[1.0]",
        "boolean": "[True]",
        "date": '[pd.Timestamp("2024-01-01")]',
        "timestamp": '[pd.Timestamp("2024-01-01 08:00")]',
    }
    frames: list[tuple[str, list[tuple[str, str]]]] = []
    for choice in [contract.base, *(j[0] for j in contract.joins), *contract.unjoined]:
        if isinstance(choice, InputChoice):
            frames.append((choice.reference, [(c.name, samples[c.type.value]) for c in choice.port.columns]))
        elif isinstance(choice, SourceChoice):
            frames.append((choice.source, [(c, '["x"]') for c in choice.columns]))
    if not frames:
        return "{}"
    text = "{\n"
    for name, columns in frames:
        text += f"        {json.dumps(name)}: pd.DataFrame(\n            {{\n"
        text += "".join(f"                {json.dumps(c)}: {v},\n" for c, v in columns)
        text += "            }\n        ),\n"
    return text + "    }"


# --------------------------------------------------------------------------------------------------
# dbt projects for dbt products
# --------------------------------------------------------------------------------------------------

DBT_PROJECT = """# The {domain} domain's dbt project. Models belong to products declared in
# domains/{domain}/products/*; contracts, tests and sources come from those specs via
# models/_mesh_generated.yml (`mesh prepare`).
name: {project}
version: "1.0.0"
config-version: 2
profile: {project}
model-paths: ["models"]
# Quote identifiers so Snowflake keeps the same lowercase names the platform and DuckDB use.
quoting:
  database: false
  schema: true
  identifier: true
models:
  {project}:
    # Everything dbt builds is internal (`{domain}_internal`); the platform publishes ports after audit.
    +schema: internal
    +materialized: table
"""

DBT_PROFILES = """# Targets share the platform's vocabulary: `local` = embedded DuckDB (MESH_TARGET=duckdb),
# `prod` = Snowflake (MESH_TARGET=snowflake). The platform passes MESH_DUCKDB_PATH when it runs dbt.
{profile}:
  target: local
  outputs:
    local:
      type: duckdb
      path: "{{{{ env_var('MESH_DUCKDB_PATH', '../../data/mesh.duckdb') }}}}"
      schema: {schema}
      threads: 1
    prod:
      type: snowflake
      account: "{{{{ env_var('SNOWFLAKE_ACCOUNT', '') }}}}"
      user: "{{{{ env_var('SNOWFLAKE_USER', '') }}}}"
      password: "{{{{ env_var('SNOWFLAKE_PASSWORD', '') }}}}"
      role: "{{{{ env_var('SNOWFLAKE_ROLE', '') }}}}"
      warehouse: "{{{{ env_var('SNOWFLAKE_WAREHOUSE', '') }}}}"
      database: "{{{{ env_var('SNOWFLAKE_DATABASE', 'MESH') }}}}"
      schema: {schema}
      threads: 4
      query_tag: mesh
"""


def dbt_profiles(profile: str, schema: str) -> str:
    """A `profiles.yml` with the platform's `local` (DuckDB) and `prod` (Snowflake) targets."""
    return DBT_PROFILES.format(profile=profile, schema=schema)


def _model_dirs(project_dir: Path) -> list[Path]:
    config = yaml.safe_load((project_dir / "dbt_project.yml").read_text()) or {}
    return [project_dir / p for p in config.get("model-paths") or ["models"]]


def _choose_project(root: Path, registry: Registry, request: ProductRequest) -> str:
    from mesh_assets.build.dbt_contracts import products_of_project

    if request.project is not None:
        check_identifier("dbt project", request.project)
        project = request.project
    else:
        used = sorted(
            {
                p.spec.transformation.project
                for p in registry.domain_products(request.domain)
                if p.spec.transformation.kind == "dbt"
            }
        )
        project = used[0] if used else request.domain
    others = sorted({p.spec.domain for p in products_of_project(registry, project)} - {request.domain})
    if others:
        # A project's profile writes to one domain's schemas: two domains cannot share it.
        raise ScaffoldError(
            f"dbt project '{project}' builds products of domain(s) {', '.join(others)}; a dbt project "
            f"serves one domain: pass --project {request.domain} (or another new name)"
        )
    folder = root / "dbt_projects" / project
    if folder.exists() and not (folder / "dbt_project.yml").exists():
        raise ScaffoldError(f"dbt_projects/{project} exists but is not a dbt project (no dbt_project.yml)")
    return project


# --------------------------------------------------------------------------------------------------
# new product
# --------------------------------------------------------------------------------------------------


def new_product(root: Path, request: ProductRequest, asker: Asker | None = None) -> Scaffolded:
    """`mesh new product`: a complete spec, a transformation that runs, and a test; or a refusal."""
    from mesh_assets.infra import environment

    root = root.resolve()
    domain, name = request.domain, request.name
    domains = existing_domains(root)
    if domain not in domains:
        close = difflib.get_close_matches(domain, domains, n=1)
        hint = f"did you mean '{close[0]}'? Or create it" if close else "create it"
        raise ScaffoldError(f"no domain '{domain}'; {hint} with `mesh new domain {domain}`")
    if domain == GOVERNANCE_DOMAIN:
        raise ScaffoldError(f"'{GOVERNANCE_DOMAIN}' is the governance location; it holds no products")
    check_identifier("product", name)
    if request.kind not in KINDS:
        raise ScaffoldError(f"--kind {request.kind}: use one of {', '.join(KINDS)}")
    folder = root / "domains" / domain / "products" / name
    registry = load_registry(root)
    if f"{domain}.{name}" in registry.products or folder.exists():
        raise ScaffoldError(
            f"product '{domain}.{name}' already exists ({folder.relative_to(root)}); pick another name, or "
            "add a major version to its spec (output_ports)"
        )
    for key in request.primary_key:
        check_identifier("column", key)
    inputs = [resolve_input(registry, reference, f"{domain}.{name}") for reference in request.inputs]
    seen = [i.reference for i in inputs]
    twice = sorted({r for r in seen if seen.count(r) > 1})
    if twice:
        raise ScaffoldError(f"--input {', '.join(twice)} given twice; declare each input once")
    sources_dir = environment.resolve().sources_dir if request.sources else Path()
    sources = [resolve_source(s, sources_dir) for s in dict.fromkeys(request.sources)]
    contract = plan_contract(request.kind, inputs, sources, request.primary_key)

    input_classes = [i.producer.spec.classification.value for i in inputs]
    floor = "confidential" if contract.pii else "internal"
    default_class = max([floor, *input_classes], key=_CLASS_ORDER.index)
    governance = resolve_governance(
        root,
        registry,
        domain,
        owner_team=request.owner_team,
        steward=request.steward,
        classification=request.classification,
        status=request.status,
        freshness=request.freshness,
        support_channel=request.support_channel,
        business_capability=request.business_capability,
        allowed_roles=request.allowed_roles,
        default_classification=default_class,
        default_status="draft",
        asker=asker,
    )
    title = request.title or humanize(name)
    read = [i.reference for i in inputs] + [s.source for s in sources]
    purpose_default = (
        f"{title}, built from {', '.join(read)} for the {domain} domain."
        if read
        else f"{title}: a data product of the {domain} domain, starting from sample rows."
    )
    purpose = answer(
        request.description,
        label="Purpose (what the product is for)",
        flag="--description",
        default=purpose_default,
        asker=asker,
        check=_check_text(10),
    )
    key_text = ", ".join(contract.primary_key)
    usage = request.usage or (
        f"Read the published port {domain}.{name}_v1 (asset {domain}/{name}/v1); one row per {key_text}."
    )
    limitations = request.limitations or (
        "A new product: its contract may still change while it is a draft."
        if governance.status == "draft"
        else "Holds what its inputs held at the last publish."
    )
    _check_text(10)(usage)
    _check_text(3)(limitations)
    product_type = request.product_type or (
        ProductType.AGGREGATE.value if inputs else ProductType.SOURCE_ALIGNED.value
    )
    _check_choice([t.value for t in ProductType])(product_type)
    for tag in request.tags:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", tag):
            raise ScaffoldError(f"--tag {tag}: tags are lowercase letters, digits, '-' or '_'")
    tags = list(dict.fromkeys([domain.replace("_", "-"), *request.tags]))

    input_ports: list[dict[str, Any]] = [dict(i.entry) for i in inputs]
    for source in sources:
        input_ports.append(
            {
                "source": source.source,
                "format": source.file_format,
                "description": f"The {source.source} extract.",
            }
        )
    model = f"{name}_v1"
    transformation: dict[str, Any] = {"kind": request.kind}
    project = ""
    if request.kind == "sql":
        transformation["internals"] = Flow([])
    elif request.kind == "python":
        transformation["module"] = "transform.py"
    else:
        project = _choose_project(root, registry, request)
        transformation["project"] = project
        transformation["internals"] = Flow([])
    quality: dict[str, Any] = {"row_count": FlowMap({"min": 1})}
    quality["rules"] = contract.rules
    port: dict[str, Any] = {
        "version": "1.0.0",
        "columns": [FlowMap(c) for c in contract.columns],
        "primary_key": Flow(contract.primary_key),
    }
    if contract.event_time:
        port["event_time"] = contract.event_time
    port["quality"] = quality
    document = spec_document(
        name=name,
        domain=domain,
        title=title,
        purpose=purpose,
        usage=usage,
        limitations=limitations,
        governance=governance,
        product_type=product_type,
        tags=tags,
        input_ports=input_ports,
        transformation=transformation,
        output_ports=[port],
    )
    spec_text = render_spec(document, folder)

    changes = Changes(root)
    notes: list[str] = []
    try:
        changes.write(folder / "dataproduct.yaml", spec_text)
        if request.kind == "sql":
            changes.write(folder / f"{model}.sql", sql_model(f"{domain}.{name}", 1, title, contract, "sql"))
        elif request.kind == "python":
            changes.write(
                folder / "transform.py", python_module(f"{domain}.{name}", model, title, purpose, contract)
            )
        else:
            notes += _write_dbt_model(root, project, domain, name, model, title, contract, changes)
        _write_test(root, domain, name, request.kind, model, contract, changes)
        if request.kind == "dbt":
            from mesh_assets.build.dbt_contracts import GENERATED_FILE, prepare

            for written in (GENERATED_FILE, "target", "logs"):
                changes.record(root / "dbt_projects" / project / written)
            try:
                prepare(load_registry(root), project)
            except RuntimeError as exc:
                raise ScaffoldError(str(exc), exit_code=1) from exc
        problems = product_problems(root, [f"{domain}.{name}"])[f"{domain}.{name}"]
        if problems:
            raise ScaffoldError(
                "the product would not validate, so nothing was written:\n"
                + "\n".join(f"  - {p}" for p in problems),
                exit_code=1,
            )
    except BaseException:
        changes.rollback()
        raise
    created, modified = changes.report()
    for choice, key, added in contract.joins:
        notes.append(f"joined {choice.reference} on {', '.join(key)} (adds {len(added)} column(s))")
    for choice in contract.unjoined:
        ref = choice.reference if isinstance(choice, InputChoice) else choice.source
        notes.append(f"{ref} is declared but not joined: its key is not a column of the first input")
    if contract.dropped_pii:
        notes.append(
            f"left out PII column(s) {', '.join(contract.dropped_pii)}: this product would read them masked "
            "unless their owner approves it by name (access.approved_consumers)"
        )
    where = f"domains/{domain}/tests/test_{name}.py"
    steps = ["mesh validate", f"mesh run --domain {domain}", f"pytest {where}"]
    upstream = sorted({i.producer.spec.domain for i in inputs} - {domain})
    if upstream:
        steps[1] = "mesh run " + " ".join(f"--domain {d}" for d in [*upstream, domain])
    return Scaffolded(created=created, modified=modified, notes=notes, next_steps=steps)


def _write_dbt_model(
    root: Path,
    project: str,
    domain: str,
    name: str,
    model: str,
    title: str,
    contract: Contract,
    changes: Changes,
) -> list[str]:
    project_dir = root / "dbt_projects" / project
    notes = []
    if not (project_dir / "dbt_project.yml").exists():
        changes.write(project_dir / "dbt_project.yml", DBT_PROJECT.format(domain=domain, project=project))
        changes.write(project_dir / "profiles.yml", dbt_profiles(project, domain))
        notes.append(f"created the dbt project dbt_projects/{project} (targets local and prod)")
    model_dirs = _model_dirs(project_dir)
    clash = [p for d in model_dirs if d.exists() for p in d.rglob(f"{model}.sql")]
    if clash:
        raise ScaffoldError(f"dbt model {model} already exists ({clash[0]}); pick another product name")
    changes.write(
        model_dirs[0] / name / f"{model}.sql", sql_model(f"{domain}.{name}", 1, title, contract, "dbt")
    )
    return notes


def _write_test(
    root: Path, domain: str, name: str, kind: str, model: str, contract: Contract, changes: Changes
) -> None:
    tests = root / "domains" / domain / "tests"
    if not (tests / "__init__.py").exists():
        # A package, so same-named test files of two domains never collide under pytest.
        changes.write(tests / "__init__.py", "")
    path = tests / f"test_{name}.py"
    text = TEST_TEMPLATE.format(
        key=f"{domain}.{name}", name=name, domain=domain, test_path=path.relative_to(root)
    )
    if kind == "python":
        imports = PYTHON_TEST_IMPORTS_FULL
        if contract.base is None:
            imports = imports.replace("import pandas as pd\n\n", "")  # no hand-made inputs to build
        text = text.replace(PYTHON_TEST_IMPORTS, imports)
        text += PYTHON_TEST_EXTRA.format(
            key=f"{domain}.{name}",
            domain=domain,
            name=name,
            function=model,
            inputs=_sample_frame_code(contract),
        )
    changes.write(path, text)


# --------------------------------------------------------------------------------------------------
# Checking a product (what the generated tests call)
# --------------------------------------------------------------------------------------------------


def _validation_errors(root: Path, keys: list[str]) -> tuple[Registry, list[Any]]:
    """`mesh validate`'s errors, without importing great-expectations unless `keys` use it.

    Importing great-expectations costs seconds; only a product with `expectation` rules needs it, and
    scaffolding never writes one. Everything else `mesh validate` checks is checked here the same way.
    """
    from mesh_assets.build.builders import sql as sql_builder
    from mesh_assets.build.dbt_contracts import GENERATED_FILE, generated_yaml
    from mesh_assets.govern import backdoors
    from mesh_assets.govern.validate import validate
    from mesh_assets.product import access
    from mesh_assets.product.errors import MeshSpecError, SpecIssue
    from mesh_assets.product.spec import ExpectationRule

    registry = load_registry(root)
    mine = [registry.products[k] for k in keys if k in registry.products]
    if any(
        isinstance(r, ExpectationRule)
        for p in mine
        for port in p.spec.output_ports
        for r in port.quality.rules
    ):
        report = validate(root)
        return report.registry, report.errors
    issues = list(registry.errors)
    for product in mine:
        transformation = product.spec.transformation
        if transformation.kind == "sql" and not registry.errors:
            models = [
                *transformation.internals,
                *(product.spec.port_model(p) for p in product.spec.output_ports),
            ]
            for model in dict.fromkeys(models):
                if (product.folder / f"{model}.sql").exists():
                    try:
                        sql_builder.render(product, registry, model)
                    except MeshSpecError as exc:
                        issues += exc.issues
        elif transformation.kind == "dbt":
            generated = root / "dbt_projects" / transformation.project / GENERATED_FILE
            if not generated.exists() or generated.read_text() != generated_yaml(
                registry, transformation.project
            ):
                issues.append(
                    SpecIssue(
                        generated,
                        "",
                        "the dbt contracts are out of date with the product specs",
                        "run `mesh prepare`",
                    )
                )
    issues += [i for i in access.policy_issues(registry) + backdoors.lint(registry) if i.severity == "error"]
    return registry, issues


def product_problems(root: Path, keys: list[str]) -> dict[str, list[str]]:
    """`mesh validate`'s errors about each of the products `keys`, rendered (an empty list: valid).

    An issue is a product's when it is about a file of the product: its folder, or for a dbt product
    its models in the dbt project and the project's generated contracts.
    """
    from mesh_assets.build.dbt_contracts import GENERATED_FILE

    registry, errors = _validation_errors(root, keys)
    found: dict[str, list[str]] = {}
    for key in keys:
        domain, _, name = key.partition(".")
        files = {(root / "domains" / domain / "products" / name).resolve()}
        product = registry.products.get(key)
        if product is not None and product.spec.transformation.kind == "dbt":
            project_dir = (root / "dbt_projects" / product.spec.transformation.project).resolve()
            models = {*product.spec.transformation.internals}
            models |= {product.spec.port_model(p) for p in product.spec.output_ports}
            files |= {(project_dir / GENERATED_FILE).resolve()}
            for folder in [project_dir, *project_dir.rglob("*")]:
                if folder.suffix == ".sql" and folder.stem in models:
                    files.add(folder.resolve())
        problems = []
        for issue in errors:
            where = issue.file.resolve()
            if where in files or any(parent in files for parent in where.parents):
                problems.append(issue.render(root))
        if product is None and not problems:
            problems.append(f"no product {key} under {root / 'domains'}")
        found[key] = problems
    return found


_SAMPLES = {
    LogicalType.STRING: "'x'",
    LogicalType.INTEGER: "1",
    LogicalType.BIGINT: "1",
    LogicalType.DOUBLE: "1.0",
    LogicalType.BOOLEAN: "true",
    LogicalType.DATE: "DATE '2024-01-01'",
    LogicalType.TIMESTAMP: "TIMESTAMP '2024-01-01 08:00:00'",
}


def _sample_value(column: Any) -> str:
    if column.type == LogicalType.DECIMAL:
        return f"CAST(1 AS DECIMAL({column.precision},{column.scale}))"
    physical = "VARCHAR" if column.type == LogicalType.STRING else column.type.value.upper()
    return f"CAST({_SAMPLES[column.type]} AS {physical})"


def _dry_run_inputs(session: DuckDBSession, product: Product, registry: Registry) -> list[str]:
    """Create each input of the product as one synthetic row in the scratch database."""
    from mesh_assets.infra import environment
    from mesh_assets.product import addressing

    notes = []
    spec = product.spec
    for declared in spec.product_inputs:
        resolved = registry.resolve(product, declared)
        if resolved is None:
            continue
        producer = resolved.producer.spec
        relation = addressing.port_relation(producer.domain, producer.name, resolved.port.major)
        select = ", ".join(f'{_sample_value(c)} AS "{c.name}"' for c in resolved.port.columns)
        session.create_table_as(relation, f"SELECT {select}")
    for source in spec.source_inputs:
        path = environment.resolve().sources_dir / source.system / f"{source.extract}.{source.format}"
        if not path.exists():
            notes.append(f"no extract at {path} to take {source.source}'s columns from")
            continue
        relation = addressing.source_relation(spec.domain, source.source)
        session.load_extract(relation, path, source.format)
        # Keep one row: the check is about the shape of the result, not the data.
        session.create_table_as(relation, f"SELECT * FROM {relation.sql} LIMIT 1")
    return notes


def check_product(root: Path, key: str) -> list[str]:
    """Problems that would keep a product from publishing; an empty list when there are none.

    The spec must be valid (with its SQL and generated dbt contracts). A SQL or Python transformation
    then runs in a scratch in-memory DuckDB on one synthetic row per input port (and the first row of
    each source extract), and its result is held against the contract's schema, the way the
    `contract_schema` check will judge the real batch. dbt models are built by dbt itself in
    `mesh run`. This is what the scaffolded tests call.
    """
    import duckdb

    from mesh_assets.build.builders import sql as sql_builder
    from mesh_assets.build.checks import SchemaRule
    from mesh_assets.build.publish import candidate_relation
    from mesh_assets.infra.warehouse.duckdb import DuckDBSession
    from mesh_assets.product import addressing

    root = Path(root).resolve()
    registry = load_registry(root)
    problems = product_problems(root, [key])[key]
    if problems:
        return problems
    product = registry.products[key]
    spec = product.spec
    transformation = spec.transformation
    if transformation.kind == "dbt":
        return []
    with duckdb.connect() as connection:
        session = DuckDBSession(connection)
        skipped = _dry_run_inputs(session, product, registry)
        if skipped:
            warnings.warn(f"{key}: dry run skipped: {'; '.join(skipped)}", stacklevel=2)
            return []
        if transformation.kind == "sql":
            for internal in transformation.internals:
                rendered = sql_builder.render(product, registry, internal)
                session.create_table_as(
                    addressing.internal_relation(spec.domain, spec.name, internal), rendered.sql
                )
        for port in spec.output_ports:
            candidate = candidate_relation(product, port)
            model = spec.port_model(port)
            try:
                if transformation.kind == "sql":
                    session.create_table_as(candidate, sql_builder.render(product, registry, model).sql)
                else:
                    from mesh_assets.build.builders.python import input_relations
                    from mesh_assets.product import access

                    # Read the inputs exactly as the builder does (PII protected per the producer).
                    protected = access.input_queries(product, registry, session.dialect)
                    frames = {
                        name: session.query_df(protected.get(name, f"SELECT * FROM {relation.sql}"))
                        for name, (relation, _) in input_relations(product, registry).items()
                    }
                    function = _load_function(product.folder / transformation.module, model)
                    session.write_dataframe(candidate, function(frames))
            except Exception as exc:  # the user's code: report whatever it raises, as a problem
                problems.append(f"{key} v{port.major}: {model} failed: {type(exc).__name__}: {exc}")
                continue
            outcome = SchemaRule(port).judge(session, candidate, {})
            if not outcome.passed:
                details = "; ".join(f"{k}: {', '.join(v)}" for k, v in outcome.details.items() if v)
                problems.append(f"{key} v{port.major}: the result does not match the contract ({details})")
    return problems


def _load_function(path: Path, name: str) -> Callable[[dict[str, Any]], Any]:
    module_name = f"mesh_scaffold_check_{path.parent.name}_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling inside the module need it registered
    spec.loader.exec_module(module)
    function = getattr(module, name, None)
    if not callable(function):
        raise AttributeError(f"{path.name} defines no function {name}")
    return function
