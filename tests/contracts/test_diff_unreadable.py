"""A working-tree spec that does not parse: its contract cannot be checked, but who it may break is known."""

from __future__ import annotations

from pathlib import Path

from mesh_assets.contracts.contract_diff import diff_mesh
from mesh_assets.contracts.diff_rules import Rule
from mesh_assets.product.registry import load_registry


def test_an_unreadable_spec_blocks_naming_the_consumers_of_the_ports_it_had_at_the_base(
    repo_root: Path,
) -> None:
    base = {key: p.spec for key, p in load_registry(repo_root).products.items()}
    head = {key: spec for key, spec in base.items() if key != "customers.customer_master"}

    changes = diff_mesh(base, head, head_unreadable={"customers.customer_master": "not_a_field: extra"})

    (unreadable,) = [c for c in changes if c.rule == Rule.SPEC_UNREADABLE]
    assert unreadable.blocking and unreadable.product == "customers.customer_master"
    assert sorted(c.product for c in unreadable.consumers) == [
        "commercial_analytics.customer_360",
        "diagnostics.instrument_runs",
    ]


def test_a_new_product_that_does_not_parse_names_no_consumer() -> None:
    changes = diff_mesh({}, {}, head_unreadable={"sales.new": "bad"})
    assert [(c.rule, c.consumers) for c in changes] == [(Rule.SPEC_UNREADABLE, ())]
