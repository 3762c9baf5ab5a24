"""What a Python product's code may reach: its inputs, as DataFrames, and nothing else unless it says why.

A Python product's function receives each declared input port as a DataFrame (`assets/builders/python.py`);
the platform reads them for it, in the warehouse's isolated session. The code itself runs in the
platform's process, where the engine can refuse only what goes through the warehouse (a second
connection to the warehouse file is refused while the product's session is open). Files, sockets and other
databases are Python's, which the platform cannot see at run time; this lint reads `transform.py` (its
AST: nothing is imported or run), and every other module in the product folder, and refuses what
reaches them:

- connections: `duckdb.*`, `sqlite3`, `snowflake.connector`, `psycopg2`, `sqlalchemy`, HTTP clients,
  sockets, subprocesses (the import or the call);
- file reads and writes: `open()`, `pd.read_*` / `pandas.read_*`, polars' `read_*` / `scan_*`, pyarrow's
  readers, `Path(...).read_text()` and the like, `DataFrame.to_sql()` and writes to a path;
- dynamic code (`eval`, `exec`, `__import__`, `importlib`), which hides what it reaches.

A product that must reach outside the mesh (a model file shipped beside the code, a reference API) states
why under `transformation.external_access.reason`; its findings are then not reported, the exception is
reviewed as code, and the `secure` fitness function names it. What this lint cannot see: code the module
imports from elsewhere, reflection, and anything a library does on its own.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from mesh_assets.product import kinds
from mesh_assets.product.errors import SpecIssue
from mesh_assets.product.registry import Product, Registry
from mesh_assets.product.spec import PythonTransformation

CONNECTING_MODULES = frozenset(
    {
        "duckdb",
        "sqlite3",
        "snowflake",
        "psycopg",
        "psycopg2",
        "pymysql",
        "sqlalchemy",
        "pyodbc",
        "requests",
        "httpx",
        "urllib",
        "urllib3",
        "http",
        "socket",
        "subprocess",
        "ftplib",
        "smtplib",
        "paramiko",
        "boto3",
        "shutil",
        "importlib",
    }
)
"""Top-level modules whose use is a connection, a process or a file operation (the import is refused)."""
READERS = {
    "pandas": ("read_",),
    "polars": ("read_", "scan_"),
    "pyarrow": ("read_", "open_", "dataset"),
    "numpy": ("load", "loadtxt", "genfromtxt", "fromfile", "memmap"),
    "os": ("open", "fdopen", "popen", "system", "listdir", "scandir", "walk", "remove", "spawn", "exec"),
    "io": ("open", "FileIO"),
    "glob": ("glob", "iglob"),
    "pickle": ("load",),
}
"""Per module: prefixes of the functions that read or reach files (e.g. `pd.read_csv`, `np.load`)."""
FILE_METHODS = frozenset({"read_text", "read_bytes", "write_text", "write_bytes", "iterdir", "rglob"})
"""Methods that read or write files whatever they are called on (`Path(...).read_text()`)."""
WRITERS = frozenset({"to_csv", "to_parquet", "to_json", "to_excel", "to_pickle", "to_feather", "to_hdf"})
"""DataFrame methods that write a file when given a path."""
BUILTINS = {"open": "opens a file", "eval": "runs dynamic code", "exec": "runs dynamic code"}
BUILTINS["__import__"] = "imports a module by name"

FIX = (
    "read data only through `inputs['<domain>.<product>']` (declare the input port, or the source, in "
    "input_ports); if the product must reach outside the mesh, say why under "
    "transformation.external_access.reason, which is reviewed as code"
)


@dataclass(frozen=True)
class Reach:
    """One place in the code that reaches outside the inputs."""

    line: int
    written: str
    message: str


def _dotted(node: ast.expr) -> str | None:
    """`a.b.c` for a name or attribute chain, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    if isinstance(node, ast.Call):  # `Path(...).read_text`: the call's own name, then the attributes
        inner = _dotted(node.func)
        return ".".join([f"{inner}()" if inner else "(...)", *reversed(parts)])
    return None


def reaches(code: str) -> list[Reach]:
    """Every import and call in `code` that reaches a file, a connection, a process or dynamic code."""
    tree = ast.parse(code)
    aliases: dict[
        str, str
    ] = {}  # local name -> dotted origin (`pd` -> `pandas`, `connect` -> `duckdb.connect`)
    found: list[Reach] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                aliases[alias.asname or top] = alias.name if alias.asname else top
                if top in CONNECTING_MODULES:
                    found.append(Reach(node.lineno, f"import {alias.name}", _module_message(top)))
        elif isinstance(node, ast.ImportFrom) and node.module:
            top = node.module.split(".")[0]
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            if top in CONNECTING_MODULES:
                found.append(Reach(node.lineno, f"from {node.module} import …", _module_message(top)))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        if name is None:
            continue
        head, _, rest = name.partition(".")
        origin = aliases.get(head, head) + (f".{rest}" if rest else "")
        message = _call_message(origin, name, node)
        if message:
            found.append(Reach(node.lineno, f"{name}(…)", message))
    return sorted(found, key=lambda r: (r.line, r.written))


def _module_message(top: str) -> str:
    return f"imports {top}, which opens connections, files or processes the platform cannot see"


def _call_message(origin: str, written: str, call: ast.Call) -> str | None:
    parts = origin.split(".")
    top, last = parts[0], parts[-1]
    if len(parts) == 1 and origin in BUILTINS:
        return f"{BUILTINS[origin]} ({origin}())"
    if top in CONNECTING_MODULES:
        return f"calls {origin}(): a connection, file or process outside the inputs"
    prefixes = READERS.get(top)
    if prefixes and len(parts) > 1 and any(last.startswith(p) for p in prefixes):
        return f"reads or reaches files ({origin}())"
    if last in FILE_METHODS:
        return f"reads or writes a file ({last}())"
    if last in ("open", "glob") and "Path" in written:
        return f"reaches files (Path.{last}())"
    if last in WRITERS and (call.args or call.keywords):
        return f"writes a file ({last}() with a path)"
    if last == "to_sql":
        return "writes to a database (to_sql())"
    return None


def _issues(product: Product, path: Path) -> list[SpecIssue]:
    try:
        found = reaches(path.read_text())
    except SyntaxError as exc:
        return [SpecIssue(path, f"line {exc.lineno}", f"does not parse: {exc.msg}", "fix the syntax error")]
    lines = path.read_text().splitlines()
    return [
        SpecIssue(
            path,
            f"line {r.line}: {lines[r.line - 1].strip() if r.line <= len(lines) else r.written}",
            f"{r.message}: a Python product reads only the DataFrames of its declared inputs",
            FIX,
        )
        for r in found
    ]


def lint(registry: Registry) -> list[SpecIssue]:
    """Every Python product whose code reaches outside its inputs without `external_access` saying why."""
    issues: list[SpecIssue] = []
    for key in sorted(registry.products):
        product = registry.products[key]
        if kinds.kind_of(product).model is not PythonTransformation:
            continue  # only Python code is read here; SQL is the back-door lint's
        transformation = kinds.narrow(product.spec.transformation, PythonTransformation)
        if transformation.external_access:
            continue
        # The module and every module beside it that it may import (tests excepted: they are not run).
        modules = [product.folder / transformation.module] + [
            path
            for path in sorted(product.folder.glob("*.py"))
            if path.name != transformation.module
            and not (
                path.name.startswith("test_") or path.name.endswith("_test.py") or path.name == "conftest.py"
            )
        ]
        for path in modules:
            if path.exists():
                issues += _issues(product, path)
    return issues
