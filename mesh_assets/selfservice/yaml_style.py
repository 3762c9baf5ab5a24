"""YAML in the style of the example specs: keys in the given order, one flow mapping per column."""

from __future__ import annotations

from typing import Any

import yaml


class Flow(list):
    """A list written in flow style: `[a, b]`."""


class FlowMap(dict):
    """A mapping written in flow style on one line: `{name: x, type: string}`."""


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


_Dumper.add_representer(Flow, lambda d, data: d.represent_sequence("tag:yaml.org,2002:seq", data, True))
_Dumper.add_representer(FlowMap, lambda d, data: d.represent_mapping("tag:yaml.org,2002:map", data, True))


def dump_yaml(document: dict[str, Any]) -> str:
    """YAML text of a document, keys in the given order."""
    # No wrapping: one column per line, as in the example specs, however long its description.
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=4096, allow_unicode=True)
