"""The mesh registry: every product spec of every domain, read from YAML alone.

A domain's code location resolves its input ports through the registry to other domains' published port
asset keys, so domains never import each other's code. Loading reads only `dataproduct.yaml` files (no
domain code), which keeps code-location load fast.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg
import yaml
from pydantic import ValidationError

from mesh_assets.product import access, addressing, agreement_files, kinds, lifecycle, spec_cache
from mesh_assets.product import spec as spec_module
from mesh_assets.product.agreement_files import LoadedAgreement
from mesh_assets.product.binding_inputs import via_issues
from mesh_assets.product.errors import MeshSpecError, SpecIssue
from mesh_assets.product.spec import DataProductSpec, OutputPort, ProductInput, Status
from mesh_assets.product.spec_issues import issue_from_pydantic
from mesh_assets.product.versions import Semver, VersionRangeError, parse_range, satisfies

SPEC_FILE = "dataproduct.yaml"
GOVERNANCE_DOMAIN = "mesh"
"""The governance code location: it owns no products, it watches all of them."""


@dataclass(frozen=True)
class Product:
    """A product spec and the folder it was read from."""

    spec: DataProductSpec
    path: Path

    @property
    def folder(self) -> Path:
        """The product folder (holds the spec and its transformation)."""
        return self.path.parent

    @property
    def key(self) -> str:
        """`<domain>.<product>`."""
        return self.spec.key


@dataclass(frozen=True)
class ResolvedInput:
    """A consumer's input port resolved to the producer's port that serves it."""

    consumer: Product
    declared: ProductInput
    producer: Product
    port: OutputPort

    @property
    def relation(self) -> addressing.Relation:
        """The producer port's published table, which the consumer reads."""
        return addressing.published(self.producer.spec, self.port)

    @property
    def key(self) -> dg.AssetKey:
        """The producer port's asset key, which the consumer depends on."""
        return addressing.port_key(self.producer.spec.domain, self.producer.spec.name, self.port.major)


class HasIssues:
    """Something holding a list of `SpecIssue`s, split by severity."""

    issues: list[SpecIssue]

    @property
    def errors(self) -> list[SpecIssue]:
        """Issues that make the mesh invalid."""
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[SpecIssue]:
        """Issues that inform (e.g. consuming a deprecated port)."""
        return [i for i in self.issues if i.severity == "warning"]


@dataclass
class Registry(HasIssues):
    """Every product of the mesh, the issues found reading them, and the lookups between them."""

    root: Path
    products: dict[str, Product] = field(default_factory=dict)
    issues: list[SpecIssue] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)
    unreadable: set[str] = field(default_factory=set)
    """`<domain>.<product>` of specs that failed to parse (their consumers cannot be checked)."""
    loaded_agreements: list[LoadedAgreement] = field(default_factory=list)
    """The valid agreements read so far (products' at load; see `agreements` for all of them)."""
    deferred_agreements: list[tuple[str, str]] = field(default_factory=list)
    """Agreement files of people, teams and tools, with their provider: read on first use of `agreements`."""
    agreement_issues: list[SpecIssue] = field(default_factory=list)
    """Problems of the deferred agreement files (reported by `mesh validate`, never failing a load)."""
    today: date = field(default_factory=date.today)
    """The day sunsets are judged on: it changes warnings (approaching, overdue), never errors."""

    @property
    def agreements(self) -> list[LoadedAgreement]:
        """Every valid access agreement of the mesh (`<product>/access/*.yaml`).

        A code location needs only product-to-product agreements (who may declare an input, who reads PII
        in clear), so loading reads those; the files of people, teams and service principals, most of
        them on a large mesh, are read here on first use (commands, validation, grants).
        """
        if self.deferred_agreements:
            deferred, self.deferred_agreements = self.deferred_agreements, []
            for path, producer in deferred:
                loaded = agreement_files.read_agreement(
                    Path(path), producer, spec_cache.parse_yaml, self.agreement_issues
                )
                if loaded is not None:
                    self._attach(loaded)
        return self.loaded_agreements

    def _attach(self, loaded: LoadedAgreement) -> None:
        spec = self.products[loaded.producer].spec
        spec._agreements = (*spec._agreements, loaded)
        self.loaded_agreements.append(loaded)

    def domain_products(self, domain: str) -> list[Product]:
        """The products of one domain, by name."""
        return sorted((p for p in self.products.values() if p.spec.domain == domain), key=lambda p: p.key)

    def resolve(self, consumer: Product, declared: ProductInput) -> ResolvedInput | None:
        """The newest servable port of the producer inside the consumer's range, if any."""
        producer = self.products.get(declared.product)
        if producer is None:
            return None
        try:
            parse_range(declared.version)
        except VersionRangeError:
            return None
        candidates = [p for p in producer.spec.output_ports if satisfies(p.version, declared.version)]
        if not candidates:
            return None
        port = max(candidates, key=lambda p: Semver.parse(p.version))
        return ResolvedInput(consumer, declared, producer, port)

    def consumers_of(self, product_key: str) -> list[ResolvedInput]:
        """Every consumer of a product's ports, with the port each one reads."""
        found = []
        for consumer in self.products.values():
            for declared in consumer.spec.product_inputs:
                if declared.product == product_key:
                    resolved = self.resolve(consumer, declared)
                    if resolved is not None:
                        found.append(resolved)
        return found

    def raise_for_errors(self, domain: str | None = None) -> None:
        """Raise `MeshSpecError` with every error (only those in `domain`'s files, if given)."""
        errors = self.errors
        if domain is not None:
            folder = (self.root / "domains" / domain).resolve()
            errors = [e for e in errors if folder in e.file.resolve().parents]
        if errors:
            raise MeshSpecError(errors, self.root)


def load_registry(root: Path, today: date | None = None) -> Registry:
    """Read and validate every spec under `root/domains`. Never raises for bad specs: see `issues`.

    `today` (default: the current date) decides which deprecated ports are past their sunset (overdue:
    still served, their consumers warned); tests inject it. It never makes a valid mesh invalid.
    Cached per set of spec files, their modification times and `today`, so the several code locations
    of one process (and repeated calls) parse the YAML once.
    """
    root = root.resolve()
    files = sorted((root / "domains").glob(f"*/products/*/{SPEC_FILE}"))
    stamp = tuple((str(f), f.stat().st_mtime_ns) for f in files)
    # Agreement files decide who may read, so an edited agreement is a new mesh too (one directory scan
    # per product folder with an `access/` folder; none costs a failed scan).
    agreements = tuple(stamped for f in files for stamped in agreement_files.stamped_files(f.parent))
    return _load(root, stamp, today or date.today(), agreements)


@cache
def _load(
    root: Path, stamp: tuple[tuple[str, int], ...], today: date, agreements: tuple[tuple[str, int], ...] = ()
) -> Registry:
    registry = Registry(root=root, today=today)
    registry.domains = sorted(
        d.name for d in (root / "domains").iterdir() if d.is_dir() and (d / "definitions.py").exists()
    )
    parsed: list[Product] = []
    cache = spec_cache.for_mesh(len(stamp))  # large meshes only: YAML parsing dominates their load
    parse = cache.parse if cache is not None else spec_cache.parse_yaml
    for file_name, _ in stamp:
        product = _parse(Path(file_name), registry.issues, parse)
        if product is not None:
            parsed.append(product)
        else:
            registry.unreadable.add(f"{Path(file_name).parents[2].name}.{Path(file_name).parent.name}")
    _check_identity(parsed, registry)
    _attach_agreements(registry, parse, [name for name, _ in agreements])
    if cache is not None:
        cache.save()
    for product in registry.products.values():
        _check_transformation(product, registry)
        _check_inputs(product, registry)
        _check_rules(product, registry)
        _check_sunsets(product, registry)
    _check_cycles(registry)
    return registry


def _parse(path: Path, issues: list[SpecIssue], parse: Callable[[str], Any]) -> Product | None:
    try:
        data = parse(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        issues.append(
            SpecIssue(
                path,
                where,
                f"not valid YAML ({getattr(exc, 'problem', exc)})",
                "fix the YAML syntax at that position",
            )
        )
        return None
    if not isinstance(data, dict):
        issues.append(
            SpecIssue(
                path,
                "",
                "the file is not a mapping of fields",
                "start from a product's dataproduct.yaml, e.g. `mesh new product`",
            )
        )
        return None
    data = agreement_files.without_legacy_approvals(path, data, issues)
    try:
        return Product(DataProductSpec.model_validate(data), path)
    except ValidationError as exc:
        issues.extend(issue_from_pydantic(path, error) for error in exc.errors())
        return None


def _attach_agreements(registry: Registry, parse: Callable[[str], Any], files: list[str]) -> None:
    """Read the product-to-product agreements and attach them to their producers' specs (see
    `access.agreements_of`); defer the others (see `Registry.agreements`).

    A product consumer's file is named after its key (`<domain>.<product>[@vN].yaml`, checked when read),
    so the file name tells which to read now without parsing: parsing 5,000 people's agreements would
    multiply a large mesh's load time (`benchmarks/access.py`).
    """
    # Strings, not Paths, for the thousands of files deferred: building a Path costs more than the rest.
    by_folder = {str(product.folder): product for product in registry.products.values()}
    for name in files:
        access_folder, file_name = os.path.split(name)
        product = by_folder.get(os.path.dirname(access_folder))
        if product is None:
            continue  # the folder of a spec that did not parse: its agreements wait for it
        if file_name.removesuffix(".yaml").split("@v")[0] not in registry.products:
            registry.deferred_agreements.append((name, product.key))
            continue
        loaded = agreement_files.read_agreement(Path(name), product.key, parse, registry.issues)
        if loaded is not None:
            registry._attach(loaded)


def _check_identity(parsed: list[Product], registry: Registry) -> None:
    seen: dict[str, Product] = {}
    for product in parsed:
        spec, folder = product.spec, product.folder
        domain_folder = folder.parent.parent.name
        if spec.domain != domain_folder:
            registry.issues.append(
                SpecIssue(
                    product.path,
                    "domain",
                    f"domain '{spec.domain}' does not match its folder 'domains/{domain_folder}'",
                    f"set domain: {domain_folder}, or move the product to domains/{spec.domain}/products/",
                )
            )
        if spec.name != folder.name:
            registry.issues.append(
                SpecIssue(
                    product.path,
                    "name",
                    f"name '{spec.name}' does not match its folder '{folder.name}'",
                    f"set name: {folder.name}, or rename the folder to {spec.name}",
                )
            )
        if product.key in seen:
            other = seen[product.key].path
            registry.issues.append(
                SpecIssue(
                    product.path,
                    "name",
                    f"duplicate product '{product.key}', also declared in {other}",
                    "give each product of a domain a unique name",
                )
            )
            continue
        seen[product.key] = product
        registry.products[product.key] = product


def _check_transformation(product: Product, registry: Registry) -> None:
    spec, folder = product.spec, product.folder
    transformation = spec.transformation
    needed = kinds.kind_of(spec).required_files(spec, folder, registry.root)
    for what, file in needed:
        if not file.exists():
            registry.issues.append(
                SpecIssue(
                    product.path,
                    "transformation",
                    f"{transformation.kind} {what} file {file.name} not found in {file.parent}",
                    f"create {file} or fix the name in the spec",
                )
            )


def _check_rules(product: Product, registry: Registry) -> None:
    """Rules reading ports the product does not declare. (SQL rules are parsed by `mesh validate`,
    which keeps sqlglot out of every code location's load.)"""
    declared = {i.product for i in product.spec.product_inputs}
    for p_index, port in enumerate(product.spec.output_ports):
        for r_index, rule in enumerate(port.quality.rules):
            where = f"output_ports[{p_index}].quality.rules[{r_index}]"
            if isinstance(rule, spec_module.ReferencesRule) and rule.port not in declared:
                registry.issues.append(
                    SpecIssue(
                        product.path,
                        f"{where}.port",
                        f"references {rule.port}, which is not an input port",
                        f"add '- product: {rule.port}' to input_ports (a rule may read only declared ports)",
                    )
                )


def effective_status(spec: DataProductSpec, port: OutputPort, today: date) -> Status:
    """A port's status: its own, else the product's. `today` never changes it.

    Time alone never retires a port: past its sunset a deprecated port is still `deprecated` (and
    overdue for retirement, see `lifecycle.is_overdue`), served and built, until its owner retires it
    with a code change (`status: retired`, or removing the port), which CI refuses while a consumer
    reads it. `today` stays in the signature so callers judging a day keep one call.
    """
    del today  # the point of the rule: a date alone is not a reason to change a status
    return spec.port_status(port)


def _port_to_use(producer: Product, today: date | None = None) -> str:
    today = today or date.today()
    live = [
        p for p in producer.spec.output_ports if effective_status(producer.spec, p, today) != Status.RETIRED
    ]
    port = max(live or producer.spec.output_ports, key=lambda p: p.major)
    return f"product: {producer.key}, version: '^{port.major}'"


def _check_inputs(product: Product, registry: Registry) -> None:
    for index, declared in enumerate(product.spec.input_ports):
        if not isinstance(declared, ProductInput):
            continue
        where = f"input_ports[{index}]"
        ref = declared.product.replace("/", ".")
        parts = ref.split(".")
        if len(parts) > 2:
            owner_key = ".".join(parts[:2])
            producer = registry.products.get(owner_key)
            if producer is not None:
                majors = {f"v{p.major}" for p in producer.spec.output_ports}
                if len(parts) == 3 and parts[2] in majors:
                    registry.issues.append(
                        SpecIssue(
                            product.path,
                            f"{where}.product",
                            f"'{declared.product}' puts the port version in the name",
                            f"write product: {owner_key} and the range apart, "
                            f"e.g. version: '^{parts[2][1:]}'",
                        )
                    )
                else:
                    registry.issues.append(
                        SpecIssue(
                            product.path,
                            f"{where}.product",
                            f"'{declared.product}' is an internal asset of {owner_key}: a back door. Other "
                            "products may read only its output port",
                            f"depend on the port instead: {_port_to_use(producer, registry.today)}",
                        )
                    )
                continue
        producer = registry.products.get(ref)
        if producer is None and ref in registry.unreadable:
            registry.issues.append(
                SpecIssue(
                    product.path,
                    f"{where}.product",
                    f"cannot check this input: the spec of {ref} is invalid",
                    f"fix the errors reported for {ref} first",
                    severity="warning",
                )
            )
            continue
        if producer is None:
            close = difflib.get_close_matches(ref, registry.products, n=1)
            fix = (
                f"did you mean '{close[0]}'?"
                if close
                else (
                    "name an existing product as <domain>.<product>; known: "
                    + ", ".join(sorted(registry.products))
                )
            )
            registry.issues.append(
                SpecIssue(
                    product.path, f"{where}.product", f"no product '{declared.product}' in the mesh", fix
                )
            )
            continue
        if producer.key == product.key:
            registry.issues.append(
                SpecIssue(
                    product.path,
                    f"{where}.product",
                    "a product cannot consume its own port",
                    "remove this input; read your internals through the transformation instead",
                )
            )
            continue
        try:
            parse_range(declared.version)
        except VersionRangeError as exc:
            registry.issues.append(SpecIssue(product.path, f"{where}.version", str(exc), "fix the range"))
            continue
        resolved = registry.resolve(product, declared)
        available = ", ".join(
            f"{p.version} ({producer.spec.port_status(p)})" for p in producer.spec.output_ports
        )
        if resolved is None:
            registry.issues.append(
                SpecIssue(
                    product.path,
                    f"{where}.version",
                    f"no port of {producer.key} satisfies '{declared.version}', which "
                    f"{lifecycle.reader(product.spec)} reads; it publishes {available}",
                    f"widen the range to a published version, e.g. {_port_to_use(producer, registry.today)}",
                )
            )
            continue
        _check_port_status(product, declared, producer, resolved.port, where, registry)
        # Approval is the producer owner's decision, made in its spec; no consumer can grant itself.
        refusal = access.approval_refusal(
            product, producer, f"{where}.product", resolved.port.major, registry.today
        )
        if refusal is not None:
            registry.issues.append(refusal)
        registry.issues.extend(via_issues(product, resolved, where))


def _check_port_status(
    product: Product,
    declared: ProductInput,
    producer: Product,
    port: OutputPort,
    where: str,
    registry: Registry,
) -> None:
    status = effective_status(producer.spec, port, registry.today)
    same_domain = producer.spec.domain == product.spec.domain
    label = f"{producer.key} v{port.major} ({port.version})"
    if status == Status.RETIRED:
        # Only the owner's code change retires a port; CI refuses it while this consumer reads it.
        registry.issues.append(
            SpecIssue(
                product.path,
                f"{where}.version",
                f"{label} is retired and no longer served, but {lifecycle.reader(product.spec)} still "
                "reads it",
                f"move to a served version: {_port_to_use(producer, registry.today)}",
            )
        )
    elif status == Status.DRAFT and not same_domain:
        registry.issues.append(
            SpecIssue(
                product.path,
                f"{where}.product",
                f"{label} is a draft, readable only inside domain '{producer.spec.domain}'",
                f"wait until {producer.key} is beta or active, or ask {producer.spec.owner.steward}",
            )
        )
    elif status == Status.BETA and not same_domain:
        if not declared.preview:
            registry.issues.append(
                SpecIssue(
                    product.path,
                    f"{where}.preview",
                    f"{label} is in beta; only consumers that opt in may read it",
                    "set preview: true to accept a port that may still change",
                )
            )
    elif status == Status.DEPRECATED and port.deprecation is not None:
        dep = port.deprecation
        registry.issues.append(
            SpecIssue(
                product.path,
                f"{where}.version",
                f"{label} is {lifecycle.describe(producer.spec, port, registry.today)} ({dep.reason})",
                f"move to version {dep.replacement}: product: {producer.key}, version: '^{dep.replacement}'",
                severity="warning",
            )
        )


def _check_sunsets(product: Product, registry: Registry) -> None:
    """Tell a producer which of its ports are overdue for retirement and who still reads them."""
    for where, message, fix in lifecycle.overdue_notices(product, registry):
        registry.issues.append(SpecIssue(product.path, where, message, fix, severity="warning"))


def _check_cycles(registry: Registry) -> None:
    graph = {
        key: sorted(
            {i.product for i in p.spec.product_inputs if i.product in registry.products and i.product != key}
        )
        for key, p in registry.products.items()
    }
    state: dict[str, int] = {}
    reported: set[frozenset[str]] = set()

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycle = [*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt]
                members = frozenset(cycle)
                if members not in reported:
                    reported.add(members)
                    registry.issues.append(
                        SpecIssue(
                            registry.products[node].path,
                            "input_ports",
                            f"dependency cycle across products: {' -> '.join(cycle)}",
                            "remove one of these inputs; a product cannot depend on itself through others",
                        )
                    )
            elif state.get(nxt) is None:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def topological_order(registry: Registry) -> list[Product]:
    """Products ordered so every producer comes before its consumers (specs must be valid)."""
    order: list[Product] = []
    done: set[str] = set()

    def visit(key: str) -> None:
        if key in done:
            return
        done.add(key)
        for declared in registry.products[key].spec.product_inputs:
            if declared.product in registry.products:
                visit(declared.product)
        order.append(registry.products[key])

    for key in sorted(registry.products):
        visit(key)
    return order
