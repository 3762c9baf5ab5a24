"""From the dbt project's models to ports and products: which models are published, who owns the rest.

The models the team marks public (`access: public`, or `config.meta.mesh.port: true`), or the `--port`
selection, become output ports, one product each; every other model, seed and snapshot becomes an
internal of the product whose port it feeds. A model feeding several products is published as a
product of its own, which they read.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from mesh_assets.product.versions import Semver
from mesh_assets.selfservice.contract_derivation import ContractDerivation
from mesh_assets.selfservice.dbt_manifest import DbtProject, is_marked_port, mesh_meta
from mesh_assets.selfservice.errors import OnboardError
from mesh_assets.selfservice.onboard_plan import OnboardRequest, Plan, PortPlan
from mesh_assets.selfservice.prompts import Asker, answer, check_identifier, suggest_identifier


class PortDerivation:
    """Turns the manifest (and the built column types) into a `Plan`."""

    def __init__(
        self,
        manifest: dict[str, Any],
        types: dict[str, list[tuple[str, str]]],
        domain: str,
        request: OnboardRequest,
        asker: Asker | None,
    ) -> None:
        self.project = DbtProject(manifest)
        self.types = types
        self.domain = domain
        self.request = request
        self.asker = asker
        self.warnings: list[str] = []

    def select_ports(self) -> list[str]:
        """The port models: the `--port` selection, else the marked models, else the person's choice."""
        names = sorted(n["name"] for n in self.project.models.values())
        if self.request.ports:
            chosen = []
            for name in self.request.ports:
                uid = self.project.by_name(name)
                if uid is None:
                    seeds = {n["name"] for n in self.project.nodes.values() if n["resource_type"] != "model"}
                    if name in seeds:
                        raise OnboardError(
                            f"--port {name}: '{name}' is a seed or snapshot; publish a model that selects "
                            "from it"
                        )
                    close = difflib.get_close_matches(name, names, n=3)
                    hint = f"did you mean {', '.join(close)}?" if close else f"models: {', '.join(names)}"
                    raise OnboardError(f"--port {name}: no model '{name}' in the project; {hint}")
                chosen.append(uid)
            return list(dict.fromkeys(chosen))
        marked = [uid for uid, node in self.project.models.items() if is_marked_port(node)]
        if marked:
            return sorted(marked, key=lambda u: self.project.models[u]["name"])
        read = {p for uid in self.project.nodes for p in self.project.parents[uid]}
        leaves = sorted(n["name"] for uid, n in self.project.models.items() if uid not in read)
        if self.asker is not None:
            text = answer(
                None,
                label="No model is marked public. Models to publish as output ports (comma-separated)",
                flag="--port",
                default=",".join(leaves),
                asker=self.asker,
            )
            self.request.ports = [t.strip() for t in text.split(",") if t.strip()]
            return self.select_ports()
        raise OnboardError(
            "no model is marked as an output port: mark the models other teams may read with "
            "`access: public` (or `config: {meta: {mesh: {port: true}}}`) in the dbt YAML, or pass "
            f"--port <model> for each; candidates (models nothing else reads): {', '.join(leaves)}"
        )

    def check_port(self, uid: str) -> None:
        """Refuse a model the platform cannot publish as is (versions, ephemeral, custom schema/alias)."""
        node = self.project.models[uid]
        name = node["name"]
        config = node.get("config") or {}
        if node.get("version") is not None:
            raise OnboardError(
                f"model {name} uses dbt model versions; the mesh versions ports itself (one port per major): "
                "onboard its latest version as a plain model"
            )
        if config.get("materialized") == "ephemeral":
            raise OnboardError(f"model {name} is ephemeral; a port needs a table or view: materialize it")
        wanted = f"{self.domain}_internal"
        if node["schema"] != wanted or (node.get("alias") or name) != name:
            raise OnboardError(
                f"model {name} builds {node['schema']}.{node.get('alias') or name}, but a port's candidate "
                f"must be {wanted}.{name}: remove its custom schema/alias config (dbt_project.yml or the "
                "model's config())"
            )

    def new_port(self, uid: str, ports: dict[str, PortPlan], why: str = "") -> PortPlan:
        """The product a port model becomes (named and versioned by `meta.mesh`, else by the model)."""
        self.check_port(uid)
        node = self.project.models[uid]
        mesh = mesh_meta(node)
        product = str(mesh.get("product") or node["name"])
        check_identifier("product", product)
        version = mesh.get("version") or (mesh.get("port") if isinstance(mesh.get("port"), str) else None)
        version = str(version or "1.0.0")
        try:
            Semver.parse(version)
        except ValueError:
            raise OnboardError(f"model {node['name']}: meta.mesh.version '{version}' is not x.y.z") from None
        if product in {p.product for p in ports.values()}:
            raise OnboardError(
                f"two port models would both become product '{product}'; set meta.mesh.product apart"
            )
        port = PortPlan(uid=uid, model=node["name"], product=product, version=version, why=why)
        ports[uid] = port
        return port

    def plan(self) -> Plan:
        """Ports, products, contracts and everything that could not be carried over."""
        for uid in self.project.nodes:
            check_identifier("dbt model", self.project.nodes[uid]["name"])
        port_uids = self.select_ports()
        ports: dict[str, PortPlan] = {}
        for uid in port_uids:
            self.new_port(uid, ports)
        owner = self.assign_internals(ports)
        self.link_products(ports, owner)
        contracts = ContractDerivation(
            self.project, self.types, self.domain, self.request, self.asker, self.warnings
        )
        for port in ports.values():
            contracts.contract(port, ports)
        rewrites = self.ref_rewrites(ports, owner)
        sources = sorted(
            f"{s['source_name']}.{s['name']}"
            for s in self.project.manifest.get("sources", {}).values()
            if s["unique_id"] not in self.project.seeded_sources
            and any(
                s["unique_id"] in n.get("depends_on", {}).get("nodes", [])
                for n in self.project.nodes.values()
            )
        )
        if sources:
            self.warnings.append(
                f"the project reads dbt source(s) {', '.join(sources)}, which the platform does not land: "
                "the tables must exist in the warehouse. To have the mesh land an extract instead, declare "
                "it as `- source: <system>.<extract>` in the product's input_ports and drop the dbt source"
            )
        plan = Plan(ports=sorted(ports.values(), key=lambda p: p.product), warnings=self.warnings)
        plan.rewrites = rewrites
        plan.unit_test_rewrites = self.unit_test_rewrites(ports, owner, rewrites)
        plan.group_owner = self.group_owner(port_uids)
        plan.dbt_vars = dict(self.request.dbt_vars)
        return plan

    def claims(self, ports: dict[str, PortPlan]) -> dict[str, set[str]]:
        """For each node, the products whose port it feeds (walking up from each port to the next)."""
        claims: dict[str, set[str]] = {}
        for uid, port in ports.items():
            stack = list(self.project.parents[uid])
            while stack:
                node = stack.pop()
                if node in ports or port.product in claims.get(node, set()):
                    continue
                claims.setdefault(node, set()).add(port.product)
                stack += self.project.parents[node]
        return claims

    def assign_internals(self, ports: dict[str, PortPlan]) -> dict[str, PortPlan]:
        """Every model, seed and snapshot to one product: the port it feeds (or is fed by).

        A product reads another only through its output port, so a model feeding several products (a
        shared staging model, say) becomes a product of its own, whose port they all read.
        """
        while True:
            claims = self.claims(ports)
            shared = {uid for uid, products in claims.items() if len(products) > 1}
            if not shared:
                break
            # Promote the shared nodes nearest the ports; what feeds only them then belongs to them.
            nearest = sorted(
                u for u in shared if not any(u in self.project.ancestors(o) for o in shared - {u})
            )
            for uid in nearest:
                node = self.project.nodes[uid]
                readers = " and ".join(sorted(claims[uid]))
                if node["resource_type"] != "model":
                    raise OnboardError(
                        f"{node['resource_type']} {node['name']} is read directly by {readers}; a product "
                        "reads another only through its output port: add a staging model selecting from it "
                        "that both read, or publish one of them with --port"
                    )
                self.new_port(uid, ports, why=f"read by {readers}")
                self.warnings.append(
                    f"{node['name']} feeds {readers}: published as the product {ports[uid].product} so that "
                    "they read its port (a product's internals are its own)"
                )
        owner: dict[str, PortPlan] = dict(ports)
        by_product = {p.product: p for p in ports.values()}
        for node, products in claims.items():
            owner[node] = by_product[next(iter(products))]
        progress = True
        while progress:
            progress = False
            for uid in sorted(self.project.nodes):
                if uid in owner:
                    continue
                upstream = sorted(
                    (owner[p] for p in self.project.parents[uid] if p in owner), key=lambda p: p.product
                )
                if upstream:
                    owner[uid], progress = upstream[0], True
        first = sorted(ports.values(), key=lambda p: p.product)[0]
        for uid in sorted(self.project.nodes):
            if uid not in owner:
                owner[uid] = first
                self.warnings.append(
                    f"{self.project.nodes[uid]['name']} feeds no port: it is listed as an internal of "
                    f"{first.product}"
                )
        for uid, port in owner.items():
            if uid not in ports:
                port.internals.append(self.project.nodes[uid]["name"])
        for port in ports.values():
            port.internals.sort()
        return owner

    def link_products(self, ports: dict[str, PortPlan], owner: dict[str, PortPlan]) -> None:
        """A product whose models read another product's port declares it as an input port."""
        for uid, port in owner.items():
            for parent in self.project.parents[uid]:
                if parent in ports and ports[parent] is not port and ports[parent].product not in port.inputs:
                    port.inputs.append(ports[parent].product)

    def ref_rewrites(
        self, ports: dict[str, PortPlan], owner: dict[str, PortPlan]
    ) -> dict[str, dict[str, str]]:
        """Reads of another product's port model through `ref()`, to point at the published port."""
        from mesh_assets.assets.dbt_contracts import port_source_name

        rewrites: dict[str, dict[str, str]] = {}
        for uid, port in owner.items():
            node = self.project.nodes[uid]
            for parent in self.project.parents[uid]:
                producer = ports.get(parent)
                if producer is None or producer is port:
                    continue
                major = Semver.parse(producer.version).major
                call = f"source('{port_source_name(self.domain)}', '{producer.product}_v{major}')"
                if node["resource_type"] != "seed":
                    rewrites.setdefault(node["original_file_path"], {})[producer.model] = call
        return rewrites

    def unit_test_rewrites(
        self, ports: dict[str, PortPlan], owner: dict[str, PortPlan], rewrites: dict[str, dict[str, str]]
    ) -> dict[str, dict[str, str]]:
        """Unit tests whose `given` names a model their model now reads as a port: read the port too.

        Otherwise the test would mock `ref('<model>')`, which the rewritten model no longer reads, and
        dbt refuses the test (it "depends on a source ... which was not found" among its givens).
        """
        found: dict[str, dict[str, str]] = {}
        for test in (self.project.manifest.get("unit_tests") or {}).values():
            uid = self.project.by_name(str(test.get("model")))
            if uid is None or uid not in owner:
                continue
            reads = rewrites.get(self.project.models[uid]["original_file_path"], {})
            for given in test.get("given") or []:
                match = re.fullmatch(r"\s*ref\(\s*['\"](\w+)['\"]\s*\)\s*", str(given.get("input", "")))
                if match and match[1] in reads:
                    found.setdefault(test["original_file_path"], {})[match[1]] = reads[match[1]]
        return found

    def group_owner(self, port_uids: list[str]) -> tuple[str, str] | None:
        """Team and email of the first port model's dbt group owner: what dbt knows of ownership."""
        groups = self.project.manifest.get("groups") or {}
        for uid in port_uids:
            group = self.project.models[uid].get("group")
            found = next((g for g in groups.values() if g.get("name") == group), None)
            email = ((found or {}).get("owner") or {}).get("email")
            if group and email:
                return suggest_identifier(group), email
        return None


def plan_onboarding(
    manifest: dict[str, Any],
    types: dict[str, list[tuple[str, str]]],
    domain: str,
    request: OnboardRequest,
    asker: Asker | None = None,
) -> Plan:
    """What onboarding a parsed project (and its built column types) as `domain` would write."""
    return PortDerivation(manifest, types, domain, request, asker).plan()
