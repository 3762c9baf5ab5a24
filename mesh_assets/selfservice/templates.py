"""The files a new product starts with: its SQL model or Python module, its test, its dbt project.

Generated code is laid out the way `ruff format` would, so the repository's lint stays clean.
"""

from __future__ import annotations

import json
import keyword
import textwrap
from collections.abc import Callable

from mesh_assets.product import kinds
from mesh_assets.selfservice.contract_plan import Contract, InputChoice, SourceChoice


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
        return kinds.kind_of(kind).port_reference(choice.reference, choice.port.major)
    return kinds.kind_of(kind).source_reference(choice.source)


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

from mesh_assets.selfservice.check import check_product

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

from mesh_assets.selfservice.check import check_product
"""

PYTHON_TEST_IMPORTS_FULL = """import importlib.util
from pathlib import Path
from types import ModuleType

import pandas as pd

from mesh_assets.product.registry import load_registry
from mesh_assets.selfservice.check import check_product
"""


def sample_frame_code(contract: Contract) -> str:
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
