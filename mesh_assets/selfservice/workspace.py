"""A domain's place in the repository: its folder, its thin `definitions.py`, its `workspace.yaml` entry."""

from __future__ import annotations

import textwrap
from pathlib import Path

import yaml

from mesh_assets.product.registry import GOVERNANCE_DOMAIN
from mesh_assets.selfservice.changes import Changes
from mesh_assets.selfservice.errors import ScaffoldError
from mesh_assets.selfservice.prompts import check_identifier

DEFINITIONS = '''"""{docstring}"""

import dagster as dg

from mesh_assets.assets.location import build_domain


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
