"""dbt runs reuse the parse `mesh prepare` made (and each other's), instead of re-parsing the project."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mesh_assets.assets.builders.dbt import partial_parse_state
from mesh_assets.infra import environment
from mesh_assets.run.runner import run_mesh

pytestmark = pytest.mark.slow

UNABLE = "I024"
"""dbt's `UnableToPartialParse` event (e.g. "Unable to do partial parsing because profile has changed")."""
SKIPPED = "I017"
"""dbt's `PartialParsingSkipParsing` event: the saved parse was reused, nothing changed."""


def parse_events(invocation: Path) -> set[str]:
    """The codes of the parse events in one dbt invocation's own JSON log."""
    codes = set()
    for line in (invocation / "dbt.log").read_text().splitlines():
        try:
            codes.add(json.loads(line)["info"]["code"])
        except (ValueError, KeyError):
            continue
    return codes & {UNABLE, SKIPPED}


def invocations(data: Path) -> set[Path]:
    return {p.parent for p in (data / "dbt" / "sales").glob("*/dbt.log")}


def test_every_dbt_invocation_reuses_the_prepared_parse(mesh_copy: Path, isolated: Path) -> None:
    # The copy has no parsed manifest: loading the sales location parses it, rendering the profile with
    # the warehouse file the runs use, so even the first invocation reuses that parse.
    first = run_mesh(["sales"])
    assert [r.status for r in first] == ["ok"] * len(first), [(r.product, r.error) for r in first]
    data = isolated / "data"
    first_invocations = invocations(data)
    assert len(first_invocations) >= 1
    assert {i.name: parse_events(i) for i in first_invocations} == {
        i.name: {SKIPPED} for i in first_invocations
    }

    env = environment.resolve()
    state = partial_parse_state(env, "sales", env.warehouse().dbt_output_overrides())
    assert state.exists()

    second = run_mesh(["sales"])
    assert all(r.status == "ok" for r in second)
    second_invocations = invocations(data) - first_invocations
    assert len(second_invocations) == len(first_invocations)
    assert {i.name: parse_events(i) for i in second_invocations} == {
        i.name: {SKIPPED} for i in second_invocations
    }
