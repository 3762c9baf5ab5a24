"""Writing into the onboarded dbt project: placing it, its profile, and moving port models out of its YAML.

The port models' entries move out of the project's YAML into the product specs, and a model reading
another product's port model through `ref()` is pointed at the published port instead of its
unaudited candidate. Every write goes through `Changes`, so a refusal undoes it, in a linked project too.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from mesh_assets.selfservice.changes import Changes
from mesh_assets.selfservice.errors import OnboardError
from mesh_assets.selfservice.onboard_plan import Plan

QUOTING = (
    "\n# Added by `mesh new domain --from-dbt`: quote identifiers so Snowflake keeps the lowercase names\n"
    "# the platform and DuckDB use.\nquoting:\n  database: false\n  schema: true\n  identifier: true\n"
)


def remove_model_entries(text: str, names: set[str]) -> str:
    """The properties YAML without the `models:` entries named `names`, keeping comments and layout.

    `ruamel.yaml`'s round-trip parser says where the `models:` list and each of its entries start; the
    entries are cut from the text by line, so the team's comments stay where they were (dumping the
    round-trip document instead would leave a removed entry's comments on its neighbour, and lose the
    comment that ruamel attaches to the removed entry's last value though it introduces the next
    one). If the file's layout defeats that (flow style, anchors), the parsed YAML is rewritten.
    """
    original = yaml.safe_load(text) or {}
    wanted = dict(original)
    wanted["models"] = [m for m in original.get("models") or [] if (m or {}).get("name") not in names]
    if not wanted["models"]:
        del wanted["models"]
    lines = text.splitlines(keepends=True)
    located = _model_lines(text)
    result = None
    if located is not None:
        start, end, items = located
        drop: set[int] = set()
        for position, (first, name) in enumerate(items):
            last = items[position + 1][0] if position + 1 < len(items) else end
            # Comments and blank lines right before the next item belong to it, not to this one.
            while last - 1 > first and (
                not lines[last - 1].strip() or lines[last - 1].lstrip().startswith("#")
            ):
                last -= 1
            if name in names:
                # The comment lines right above an entry describe it: they go with it.
                above = first
                while above - 1 > start and lines[above - 1].lstrip().startswith("#"):
                    above -= 1
                drop |= set(range(above, last))
        kept = [line for i, line in enumerate(lines) if i not in drop]
        if all(name in names for _, name in items):
            kept[start] = kept[start].replace("models:", "models: []", 1)
        result = "".join(kept)
        parsed = yaml.safe_load(result) or {}
        if parsed.get("models") == []:
            parsed.pop("models")
        if parsed != wanted:
            result = None
    if result is None:
        result = yaml.safe_dump(wanted, sort_keys=False, width=110)
    return result


def _model_lines(text: str) -> tuple[int, int, list[tuple[int, object]]] | None:
    """Where the block-style `models:` list sits: its key's line, the line after it, each entry's first
    line and name (0-based lines); None when there is no such list."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.error import YAMLError

    try:
        document = YAML(typ="rt").load(text)
    except YAMLError:
        return None
    models = document.get("models") if isinstance(document, CommentedMap) else None
    if not isinstance(models, CommentedSeq) or models.fa.flow_style() or not models:
        return None
    keys = list(document)
    start = document.lc.key("models")[0]
    following = keys[keys.index("models") + 1 :]
    end = document.lc.key(following[0])[0] if following else len(text.splitlines())
    items = [
        (models.lc.item(i)[0], entry.get("name") if isinstance(entry, dict) else None)
        for i, entry in enumerate(models)
    ]
    return start, end, items


def rewrite_refs(text: str, replacements: dict[str, str]) -> str:
    """SQL with `ref('<model>')` (also `ref('<package>', '<model>')`) replaced by the given calls.

    The calls are found among sqlglot's tokens of the model's text, which knows dbt's Jinja delimiters
    and comments: the rest of the file keeps its text, and a name that merely ends in `ref` (`pref(...)`)
    is no call. A text sqlglot cannot tokenize raises `ValueError`.
    """
    from sqlglot.dialects.duckdb import DuckDB
    from sqlglot.errors import TokenError
    from sqlglot.tokens import TokenType

    try:
        tokens = DuckDB().tokenize(text)
    except TokenError as exc:
        raise ValueError(str(exc)) from exc
    names = {TokenType.STRING, TokenType.IDENTIFIER}  # 'model' is a string, "model" an identifier
    spans: list[tuple[int, int, str]] = []
    for i, token in enumerate(tokens):
        if token.token_type != TokenType.VAR or token.text != "ref" or i + 3 >= len(tokens):
            continue
        if i > 0 and tokens[i - 1].token_type == TokenType.DOT:
            continue  # a method of something else, not dbt's ref()
        kinds = [t.token_type for t in tokens[i + 1 : i + 6]]
        if kinds[:3] == [TokenType.L_PAREN, kinds[1], TokenType.R_PAREN] and kinds[1] in names:
            model, close = tokens[i + 2].text, i + 3
        elif (
            kinds[:5] == [TokenType.L_PAREN, kinds[1], TokenType.COMMA, kinds[3], TokenType.R_PAREN]
            and {kinds[1], kinds[3]} <= names
        ):
            model, close = tokens[i + 4].text, i + 5
        else:
            continue
        if model in replacements:
            spans.append((token.start, tokens[close].end, replacements[model]))
    for start, end, call in reversed(spans):
        text = text[:start] + call + text[end + 1 :]
    return text


def rewrite_unit_test_inputs(text: str, replacements: dict[str, str]) -> str:
    """A unit tests' YAML with each `input: ref('<model>')` of `replacements` given its replacement.

    Only `input:` lines change: a unit test's `given` names the relation the model reads, which for a
    model that became another product's port is now the port's source. (A YAML file is no SQL: its
    descriptions may hold an unmatched quote, so it is edited by line, not tokenized like a model.)
    """

    def replace(match: re.Match[str]) -> str:
        call = replacements.get(match["model"])
        return f"{match['head']}{call}" if call else match[0]

    pattern = re.compile(
        r"(?P<head>^\s*(?:-\s*)?input:\s*)ref\(\s*(?:['\"]\w+['\"]\s*,\s*)?['\"](?P<model>\w+)['\"]\s*\)",
        re.MULTILINE,
    )
    return pattern.sub(replace, text)


def place_project(source: Path, target: Path, link: bool, changes: Changes) -> None:
    """Copy (without build output) or link the project to `target`, recording it to undo."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if link:
        target.symlink_to(source, target_is_directory=True)
    else:
        shutil.copytree(
            source,
            target,
            ignore=shutil.ignore_patterns(
                "target", "logs", ".git", ".venv", "__pycache__", "*.duckdb*", ".user.yml"
            ),
        )
    changes.adopt(target)


def write_profile(project_dir: Path, profile: str, domain: str, link: bool, changes: Changes) -> list[str]:
    """Give the project the platform's `local`/`prod` profile; a linked project must already have it."""
    from mesh_assets.selfservice.templates import dbt_profiles

    path = project_dir / "profiles.yml"
    notes = []
    if path.exists():
        existing = yaml.safe_load(path.read_text()) or {}
        outputs = (existing.get(profile) or {}).get("outputs") or {}
        if link:
            if not {"local", "prod"} <= set(outputs):
                raise OnboardError(
                    f"{path} has no `local` and `prod` targets for profile '{profile}', which the platform "
                    "runs: add them (see dbt_projects/sales/profiles.yml), or onboard a copy (without --link)"
                )
            return notes
        notes.append("replaced the project's profiles.yml with the platform's local and prod targets")
    # Models build in the domain's private schema: the platform publishes ports from there after audit.
    changes.write(path, dbt_profiles(profile, f"{domain}_internal"))
    return notes


def edit_project(project_dir: Path, manifest: dict[str, Any], plan: Plan, changes: Changes) -> None:
    """Move the port models' properties out of the project's YAML; point cross-product refs at ports."""
    by_file: dict[str, set[str]] = {}
    for port in plan.ports:
        patch = manifest["nodes"][port.uid].get("patch_path")
        if patch:
            by_file.setdefault(patch.split("://", 1)[-1], set()).add(port.model)
    for relative, names in by_file.items():
        path = project_dir / relative
        header = (
            f"# {', '.join(sorted(names))}: moved to the product specs under domains/ when the project "
            "joined "
            "the mesh; their\n# contracts and tests are generated into models/_mesh_generated.yml "
            "(`mesh prepare`).\n"
        )
        changes.write(path, header + remove_model_entries(path.read_text(), names))
    for relative, replacements in plan.rewrites.items():
        path = project_dir / relative
        try:
            rewritten = rewrite_refs(path.read_text(), replacements)
        except ValueError as exc:
            reads = ", ".join(f"ref('{m}') with {c}" for m, c in replacements.items())
            raise OnboardError(
                f"{path} could not be read as SQL ({exc}); replace {reads} in it by hand, then onboard again"
            ) from exc
        changes.write(path, rewritten)
    for relative, replacements in plan.unit_test_rewrites.items():
        path = project_dir / relative
        changes.write(path, rewrite_unit_test_inputs(path.read_text(), replacements))
