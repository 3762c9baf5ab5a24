"""Lineage pictures as inline SVG: a product between its producers and consumers, and the whole mesh.

Generated as text (no JavaScript, no external renderer) so the catalog opens from a file browser. Boxes
link to the products' pages; colours come from the page's stylesheet through CSS classes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from html import escape

from mesh_assets.product.registry import Product, Registry

MIN_WIDTH = 220
MAX_WIDTH = 420
BOX_HEIGHT = 46
GAP_Y = 14
GAP_X = 90
MARGIN = 16
CHAR_WIDTH = 7.2  # average width of a 12px sans-serif character, to shorten labels that would overflow


@dataclass(frozen=True)
class Node:
    """One box of a lineage picture."""

    id: str
    label: str
    detail: str = ""
    href: str | None = None
    kind: str = "product"
    """CSS class suffix: `self`, `product`, `source`, `deprecated`."""


@dataclass(frozen=True)
class Edge:
    """An arrow from one node to another, optionally labelled (e.g. the port version read)."""

    source: str
    target: str
    label: str = ""


def _fit(text: str, width: float) -> str:
    most = int(width // CHAR_WIDTH)
    return text if len(text) <= most else text[: max(1, most - 1)] + "…"


def render(columns: list[list[Node]], edges: list[Edge], title: str) -> str:
    """An SVG of nodes laid out in columns (left to right), with curved arrows between them."""
    # Boxes are as wide as the longest product name (within bounds); longer text is shortened, in full
    # in the box's tooltip.
    longest = max((len(n.label) for column in columns for n in column), default=0)
    box_width = int(min(MAX_WIDTH, max(MIN_WIDTH, longest * CHAR_WIDTH + 24)))
    positions: dict[str, tuple[float, float]] = {}
    tallest = max((len(c) for c in columns), default=1) or 1
    height = MARGIN * 2 + tallest * BOX_HEIGHT + (tallest - 1) * GAP_Y
    width = MARGIN * 2 + len(columns) * box_width + (len(columns) - 1) * GAP_X
    for index, column in enumerate(columns):
        x = MARGIN + index * (box_width + GAP_X)
        used = len(column) * BOX_HEIGHT + max(0, len(column) - 1) * GAP_Y
        top = (height - used) / 2  # centre each column vertically
        for row, node in enumerate(column):
            positions[node.id] = (x, top + row * (BOX_HEIGHT + GAP_Y))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lineage" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'width="{width:.0f}" height="{height:.0f}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'class="lineage-arrowhead"/></marker></defs>',
    ]
    for edge in edges:
        if edge.source not in positions or edge.target not in positions:
            continue
        (x1, y1), (x2, y2) = positions[edge.source], positions[edge.target]
        start = (x1 + box_width, y1 + BOX_HEIGHT / 2)
        end = (x2 - 2, y2 + BOX_HEIGHT / 2)
        bend = max(30.0, (end[0] - start[0]) / 2)
        parts.append(
            f'<path class="lineage-edge" marker-end="url(#arrow)" d="M {start[0]:.1f} {start[1]:.1f} '
            f"C {start[0] + bend:.1f} {start[1]:.1f}, {end[0] - bend:.1f} {end[1]:.1f}, "
            f'{end[0]:.1f} {end[1]:.1f}"><title>{escape(edge.source)} → {escape(edge.target)}'
            f"{' (' + escape(edge.label) + ')' if edge.label else ''}</title></path>"
        )
        if edge.label:
            mid_x, mid_y = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2 - 4
            parts.append(
                f'<text class="lineage-edge-label" x="{mid_x:.1f}" y="{mid_y:.1f}" text-anchor="middle">'
                f"{escape(edge.label)}</text>"
            )
    for column in columns:
        for node in column:
            x, y = positions[node.id]
            box = (
                f'<g class="lineage-node lineage-{escape(node.kind)}">'
                f"<title>{escape(node.label)}{' — ' + escape(node.detail) if node.detail else ''}</title>"
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{box_width}" height="{BOX_HEIGHT}" rx="6" ry="6"/>'
                f'<text x="{x + 10:.1f}" y="{y + 19:.1f}" class="lineage-label">'
                f"{escape(_fit(node.label, box_width - 20))}</text>"
            )
            if node.detail:
                box += (
                    f'<text x="{x + 10:.1f}" y="{y + 36:.1f}" class="lineage-detail">'
                    f"{escape(_fit(node.detail, box_width - 20))}</text>"
                )
            box += "</g>"
            if node.href:
                box = f'<a href="{escape(node.href)}">{box}</a>'
            parts.append(box)
    parts.append("</svg>")
    return "\n".join(parts)


def product_lineage(product: Product, registry: Registry, link: Callable[[str], str]) -> str:
    """The product between what it reads (producers' ports, source extracts) and who reads it."""
    spec = product.spec
    inputs: list[Node] = []
    edges: list[Edge] = []
    for declared in spec.input_ports:
        source = getattr(declared, "source", None)
        if source is not None:
            node = Node(f"source:{source}", source, f"source extract · {declared.format}", kind="source")
        else:
            resolved = registry.resolve(product, declared)
            producer = registry.products.get(declared.product)
            if resolved is not None:
                status = resolved.producer.spec.port_status(resolved.port).value
                detail = f"producer · reads v{resolved.port.major} ({resolved.port.version}, {status})"
                kind = "deprecated" if status == "deprecated" else "product"
            else:
                detail, kind = f"producer · {declared.version} (unresolved)", "product"
            node = Node(
                declared.product,
                declared.product,
                detail,
                href=link(declared.product) if producer is not None else None,
                kind=kind,
            )
        inputs.append(node)
        edges.append(Edge(node.id, spec.key))
    ports = ", ".join(
        f"v{p.major} {spec.port_status(p).value}" for p in sorted(spec.output_ports, key=lambda p: -p.major)
    )
    center = Node(spec.key, spec.key, f"this product · {ports}", kind="self")
    consumers: list[Node] = []
    for reader in sorted(registry.consumers_of(spec.key), key=lambda r: r.consumer.key):
        node_id = f"consumer:{reader.consumer.key}"
        if any(n.id == node_id for n in consumers):
            continue
        consumers.append(
            Node(
                node_id,
                reader.consumer.key,
                f"consumer · reads v{reader.port.major}",
                href=link(reader.consumer.key),
                kind="deprecated" if spec.port_status(reader.port).value == "deprecated" else "product",
            )
        )
        edges.append(Edge(spec.key, node_id, f"v{reader.port.major}"))
    columns = [column for column in (inputs, [center], consumers) if column]
    return render(columns, edges, f"Lineage of {spec.key}: producers, the product and its consumers")


def mesh_lineage(registry: Registry, link: Callable[[str], str]) -> str:
    """Every product, layered so producers stand left of their consumers."""
    depth: dict[str, int] = {}

    def level(key: str, trail: frozenset[str] = frozenset()) -> int:
        if key in depth:
            return depth[key]
        spec = registry.products[key].spec
        parents = [i.product for i in spec.product_inputs if i.product in registry.products]
        # A cycle is a registry error; cut it rather than recurse forever.
        value = 1 + max((level(p, trail | {key}) for p in parents if p not in trail), default=-1)
        depth[key] = value
        return value

    for key in registry.products:
        level(key)
    columns: list[list[Node]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for key in sorted(registry.products):
        spec = registry.products[key].spec
        ports = ", ".join(f"v{p.major}" for p in sorted(spec.output_ports, key=lambda p: -p.major))
        columns[depth[key]].append(
            Node(key, key, f"{spec.product_type.value} · {spec.status.value} · {ports}", href=link(key))
        )
    edges = []
    for key, product in sorted(registry.products.items()):
        for declared in product.spec.product_inputs:
            resolved = registry.resolve(product, declared)
            if resolved is not None:
                edges.append(Edge(declared.product, key, f"v{resolved.port.major}"))
    return render(columns, edges, "Lineage of the mesh: producers feed consumers through output ports")
