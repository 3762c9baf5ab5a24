"""A model file renders exactly as Jinja renders it, whether or not it takes the plain-calls fast path."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pytest

from mesh_assets.assets.builders.sql import render_template

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
        with pytest.raises(type(exc)):
            render_template(text, **FUNCTIONS)
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
