"""A model file renders exactly as Jinja renders it, whether or not it takes the plain-calls fast path."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from mesh_assets.assets.builders.sql import ModelTemplateError, render_template

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = {
    "input": lambda ref: f'"port"."{ref}"',
    "source": lambda ref: f'"src"."{ref}"',
    "ref": lambda name: f'"internal"."{name}"',
}
CASES = [
    "select 1\n",
    "select 1\n\n",
    "select * from {{ input('a.b') }}\n",
    "select * from {{input('a.b')}} join {{ ref(\"stg\") }} using (id)",
    "select * from {{  source( 'crm.customers' )  }}\n-- {{ input('c.d') }} in a comment\n",
    "{# a Jinja comment #}select * from {{ input('a.b') }}",
    "select * from {{- input('a.b') -}}\n",
    "{% if true %}select 1{% endif %}\n",
    "select * from {{ input('a.b') | lower }}",
    "select * from {{ input('it\\'s') }}",
    "select 1\r\nfrom {{ input('a.b') }}\r\n",
    "select '{{' as brace",
]


def _jinja(text: str) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    return env.from_string(text).render(**FUNCTIONS)


@pytest.mark.parametrize("text", CASES)
def test_a_model_text_renders_exactly_as_jinja_renders_it(text: str) -> None:
    try:
        expected = _jinja(text)
    except jinja2.TemplateError as exc:
        with pytest.raises(ModelTemplateError) as raised:
            render_template(text, **FUNCTIONS)
        assert type(raised.value.__cause__) is type(exc)
    else:
        assert render_template(text, **FUNCTIONS) == expected


def test_every_sql_model_of_the_example_mesh_renders_exactly_as_jinja_renders_it() -> None:
    models = sorted((REPO / "domains").glob("*/products/*/*.sql"))

    assert models
    for model in models:
        text = model.read_text()
        assert render_template(text, **FUNCTIONS) == _jinja(text), model


def test_the_functions_are_called_in_the_order_the_calls_are_written() -> None:
    called: list[str] = []
    record = {name: (lambda ref, name=name: called.append(f"{name}:{ref}") or ref) for name in FUNCTIONS}

    render_template("{{ ref('x') }} {{ input('a.b') }} {{ source('s.t') }} {{ ref('y') }}", **record)

    assert called == ["ref:x", "input:a.b", "source:s.t", "ref:y"]


@pytest.mark.parametrize("domain", ["customers", "diagnostics", "commercial_analytics"])
def test_a_location_without_dbt_loads_without_importing_jinja2_or_sqlglot(
    domain: str, repo_root: Path, tmp_path: Path
) -> None:
    # Its SQL models call only input()/source()/ref(), rendered without Jinja; dbt locations import both
    # through dagster-dbt, which is why this holds for the locations without dbt only.
    import os
    import subprocess
    import sys

    from mesh_assets.product import kinds
    from mesh_assets.product.registry import load_registry

    products = [p for p in load_registry(repo_root).products.values() if p.spec.domain == domain]
    assert products and not kinds.projects([p.spec for p in products]), f"{domain} has dbt products"
    probe = (
        f"import sys; import domains.{domain}.definitions as d; d.defs(); "
        "print(sorted(m for m in ('jinja2', 'sqlglot', 'dagster_dbt') if m in sys.modules))"
    )
    env = {**os.environ, "MESH_DATA_DIR": str(tmp_path / "data"), "MESH_ROOT": str(repo_root)}
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True, cwd=repo_root
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
