"""The directory: the attributes access rules read about people, service principals and teams.

It stands for the identity system (Okta, Entra ID...) as a reviewed file, `domains/mesh/directory.yaml`,
so a rule such as "clearance must reach the product's classification" or "only the owner team decides" is
evaluated offline and the same in CI as in production. `mesh access directory import people.csv` rewrites
it from an export of the identity system. Products need no entry: their attributes are in their specs.
"""

from __future__ import annotations

import csv
from pathlib import Path

import yaml
from pydantic import Field, PrivateAttr, ValidationError

from mesh_assets.product.access_rules import ClassificationName, load_model
from mesh_assets.product.agreement import EMAIL, ConsumerKind
from mesh_assets.product.errors import SpecIssue
from mesh_assets.product.spec_base import Identifier, SpecModel

DIRECTORY_FILE = Path("domains") / "mesh" / "directory.yaml"
"""The directory, relative to the repository root."""
CSV_COLUMNS = ("kind", "id", "team", "domain", "clearance")
"""Columns `mesh access directory import` reads (`kind` optional: person when it holds an email)."""


class Member(SpecModel):
    """A person or a service principal, with the attributes rules read."""

    id: str = Field(description="A person's email, or a service principal's name.")
    team: Identifier = Field(description="The team the member belongs to.")
    domain: Identifier | None = Field(default=None, description="The business domain the member works in.")
    clearance: ClassificationName = Field(
        default="internal", description="The most sensitive classification the member may be approved for."
    )


class Team(SpecModel):
    """A team, as a consumer of data."""

    id: Identifier = Field(description="Team name, as owner teams are named in specs.")
    domain: Identifier | None = Field(default=None, description="The team's business domain.")
    clearance: ClassificationName = Field(default="internal", description="Highest classification for it.")


class Directory(SpecModel):
    """People, service principals and teams with their attributes (`domains/mesh/directory.yaml`)."""

    people: list[Member] = Field(default_factory=list, description="People, by email.")
    service_principals: list[Member] = Field(default_factory=list, description="Tools' identities.")
    teams: list[Team] = Field(default_factory=list, description="Teams that may hold agreements.")

    # Indexes built on first lookup: policy evaluation asks once per agreement, thousands of times on a
    # large mesh, and a scan of the people per question made that quadratic (`benchmarks/access.py`).
    _by_id: dict[tuple[ConsumerKind, str], Member | Team] | None = PrivateAttr(default=None)
    _members: dict[str, list[str]] | None = PrivateAttr(default=None)

    def find(self, kind: ConsumerKind, id: str) -> Member | Team | None:
        """The entry of a consumer (None for a product, or an unknown id)."""
        if self._by_id is None:
            index: dict[tuple[ConsumerKind, str], Member | Team] = {}
            for pool_kind, pool in (
                (ConsumerKind.PERSON, self.people),
                (ConsumerKind.SERVICE_PRINCIPAL, self.service_principals),
                (ConsumerKind.TEAM, self.teams),
            ):
                for entry in pool:
                    index.setdefault((pool_kind, entry.id.lower()), entry)
            self._by_id = index
        return self._by_id.get((kind, id.lower()))

    def team_members(self, team: str) -> list[str]:
        """The emails of a team's people."""
        if self._members is None:
            members: dict[str, list[str]] = {}
            for person in self.people:
                members.setdefault(person.team, []).append(person.id)
            self._members = members
        return list(self._members.get(team, []))


def load_directory(root: Path) -> tuple[Directory, list[SpecIssue]]:
    """The directory (empty when there is none), and the issues of a bad file."""
    path = root / DIRECTORY_FILE
    if not path.exists():
        return Directory(), []
    return load_model(path, Directory, Directory())


def import_csv(csv_path: Path) -> tuple[Directory, list[SpecIssue]]:
    """A directory from a CSV export (`kind,id,team,domain,clearance`); bad rows are issues naming the row."""
    import re

    people, principals, teams, issues = [], [], [], []
    with csv_path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"id", "team"} - set(reader.fieldnames or [])
        if missing:
            return Directory(), [
                SpecIssue(
                    csv_path,
                    "header",
                    f"no column(s) {', '.join(sorted(missing))}",
                    f"export the columns {', '.join(CSV_COLUMNS)} (kind, domain, clearance optional)",
                )
            ]
        for line, row in enumerate(reader, start=2):
            values = {k: (v or "").strip() for k, v in row.items() if k}
            kind = values.get("kind") or ("person" if re.match(EMAIL, values["id"]) else "service_principal")
            try:
                if kind == "team":
                    teams.append(
                        Team(
                            id=values["id"],
                            domain=values.get("domain") or None,
                            clearance=values.get("clearance") or "internal",
                        )
                    )
                    continue
                member = Member(
                    id=values["id"],
                    team=values["team"],
                    domain=values.get("domain") or None,
                    clearance=values.get("clearance") or "internal",
                )
            except ValidationError as exc:
                error = exc.errors()[0]
                column = ".".join(str(p) for p in error["loc"])
                message = f"{column}: {error['msg']} (got {error.get('input')!r})"
                issues.append(SpecIssue(csv_path, f"line {line}", message, f"fix the row's {column}"))
                continue
            (people if kind == "person" else principals).append(member)
    return Directory(people=people, service_principals=principals, teams=teams), issues


def dump(directory: Directory) -> str:
    """The directory as its YAML file."""
    data = directory.model_dump(mode="json", exclude_none=True)
    return (
        "# yaml-language-server: $schema=../../mesh_assets/schemas/directory.schema.json\n"
        "# The identity system's attributes for access rules (`mesh access directory import` rewrites it).\n"
        + yaml.safe_dump(data, sort_keys=False, width=110)
    )
