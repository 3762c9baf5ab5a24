"""The product specs of the mesh as they were at a git ref, read in one `git cat-file --batch`."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import ValidationError

from mesh_assets.product.registry import SPEC_FILE
from mesh_assets.product.spec import DataProductSpec


class ContractDiffError(Exception):
    """The diff cannot run: git is missing, the folder is not in a repository, or the ref is unknown."""


@dataclass(frozen=True)
class Snapshot:
    """The product specs of the mesh at one git ref."""

    ref: str
    commit: str
    specs: dict[str, DataProductSpec] = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)
    """`<domain>.<product>` of specs that do not parse at the ref, to why."""


def _git(root: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(["git", *args], cwd=root, input=stdin, capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise ContractDiffError("git is not installed; the contract diff reads specs from git") from exc
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip() or f"git {args[0]} failed"
        raise ContractDiffError(message)
    return done.stdout


def _parse_spec(text: bytes) -> DataProductSpec | str:
    """The spec, or why it does not parse (one line)."""
    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        return f"not valid YAML: {getattr(exc, 'problem', exc)}"
    if not isinstance(data, dict):
        return "not a mapping of fields"
    try:
        return DataProductSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return f"{where}: {first['msg']}{more}"


def read_specs_at(root: Path, ref: str) -> Snapshot:
    """Every `domains/*/products/*/dataproduct.yaml` under `root` as it was at git `ref`.

    `root` may be a folder inside the repository. A spec that does not parse at the ref is recorded in
    `unreadable`; an unknown ref or a folder outside any repository raises `ContractDiffError`.
    """
    try:
        prefix = _git(root, "rev-parse", "--show-prefix").decode().strip()
    except ContractDiffError as exc:
        raise ContractDiffError(f"{root} is not inside a git repository ({exc})") from exc
    try:
        commit = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").decode().strip()
    except ContractDiffError as exc:
        raise ContractDiffError(
            f"'{ref}' is not a commit of the repository at {root}; in CI, fetch enough history "
            "(e.g. actions/checkout with fetch-depth: 2) for the base to exist"
        ) from exc
    listed = _git(root, "ls-tree", "-r", "-z", "--name-only", "--full-name", commit, "--", "domains")
    files: list[tuple[str, str]] = []
    for full in filter(None, listed.decode().split("\0")):
        parts = full[len(prefix) :].split("/")
        if len(parts) == 5 and parts[0] == "domains" and parts[2] == "products" and parts[4] == SPEC_FILE:
            files.append((f"{parts[1]}.{parts[3]}", full))
    snapshot = Snapshot(ref=ref, commit=commit)
    if not files:
        return snapshot
    # One `git cat-file --batch` for all specs: a process per file is slow on a large mesh.
    out = _git(root, "cat-file", "--batch", stdin="".join(f"{commit}:{p}\n" for _, p in files).encode())
    position = 0
    for key, _ in files:
        header_end = out.index(b"\n", position)
        header = out[position:header_end].split()
        position = header_end + 1
        if len(header) < 3 or header[1] != b"blob":
            snapshot.unreadable[key] = "not a file at the ref"
            continue
        size = int(header[2])
        parsed = _parse_spec(out[position : position + size])
        position += size + 1  # the content is followed by a newline
        if isinstance(parsed, str):
            snapshot.unreadable[key] = parsed
        else:
            snapshot.specs[parsed.key] = parsed
    return snapshot
