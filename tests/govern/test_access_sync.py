"""Grants as desired state: the example's agreements compile to exact Snowflake statements, and `sync`
applies the smallest difference against what the account holds, reports hand-made grants as drift, and
does nothing the second time.

What fakesnow cannot prove: it has no roles, database roles or grants (`CREATE ROLE`, `GRANT`, `SHOW
GRANTS` all fail to parse there). So the reading step is fed the rows SHOW statements return, by a small
fake account (`Account`) that keeps grants as objects and answers SHOW in Snowflake's documented column
order; every statement is also parsed with sqlglot's Snowflake dialect. Whether Snowflake accepts each
statement, prints names exactly as canonicalised here, and what a real session can read, needs an account.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlglot
import typer
from agreement_edits import agreement, write_agreement
from sqlglot import exp
from typer.testing import CliRunner

from mesh_assets.cli import access as access_command
from mesh_assets.govern import access_audit
from mesh_assets.govern.access_grants import CurrentState, Grant, canonical, desired, plan
from mesh_assets.govern.access_sync import grants_from_rows, holders_from_rows, sync
from mesh_assets.product.registry import load_registry

TODAY = date(2026, 12, 6)
EXAMPLE = [
    "CREATE ROLE IF NOT EXISTS MESH_AGR_PERSON_NORA_BERG_EXAMPLE_COM COMMENT = 'mesh: access agreements'",
    "CREATE ROLE IF NOT EXISTS MESH_AGR_SP_FORECAST_BOT COMMENT = 'mesh: access agreements'",
    "CREATE ROLE IF NOT EXISTS MESH_AGR_TEAM_FINANCE COMMENT = 'mesh: access agreements'",
    "CREATE DATABASE ROLE IF NOT EXISTS MESH.CUSTOMERS__CUSTOMER_MASTER_V1 "
    "COMMENT = 'mesh: one port version'",
    "CREATE DATABASE ROLE IF NOT EXISTS MESH.CUSTOMERS__CUSTOMER_MASTER_V1_PII "
    "COMMENT = 'mesh: one port version'",
    "CREATE DATABASE ROLE IF NOT EXISTS MESH.SALES__SALES_V2 COMMENT = 'mesh: one port version'",
    'GRANT USAGE ON SCHEMA MESH."customers" TO DATABASE ROLE MESH.CUSTOMERS__CUSTOMER_MASTER_V1',
    'GRANT USAGE ON SCHEMA MESH."customers" TO DATABASE ROLE MESH.CUSTOMERS__CUSTOMER_MASTER_V1_PII',
    'GRANT USAGE ON SCHEMA MESH."sales" TO DATABASE ROLE MESH.SALES__SALES_V2',
    'GRANT SELECT ON TABLE MESH."customers"."customer_master_v1" TO DATABASE ROLE '
    "MESH.CUSTOMERS__CUSTOMER_MASTER_V1_PII",
    'GRANT SELECT ON TABLE MESH."sales"."sales_v2" TO DATABASE ROLE MESH.SALES__SALES_V2',
    'GRANT SELECT ON VIEW MESH."customers"."customer_master_v1__protected" TO DATABASE ROLE '
    "MESH.CUSTOMERS__CUSTOMER_MASTER_V1",
    "GRANT USAGE ON DATABASE MESH TO ROLE MESH_AGR_PERSON_NORA_BERG_EXAMPLE_COM",
    "GRANT USAGE ON DATABASE MESH TO ROLE MESH_AGR_SP_FORECAST_BOT",
    "GRANT USAGE ON DATABASE MESH TO ROLE MESH_AGR_TEAM_FINANCE",
    "GRANT DATABASE ROLE MESH.CUSTOMERS__CUSTOMER_MASTER_V1 TO ROLE MESH_AGR_PERSON_NORA_BERG_EXAMPLE_COM",
    "GRANT DATABASE ROLE MESH.CUSTOMERS__CUSTOMER_MASTER_V1_PII TO ROLE "
    "MESH_AGR_PERSON_NORA_BERG_EXAMPLE_COM",
    "GRANT DATABASE ROLE MESH.SALES__SALES_V2 TO ROLE MESH_AGR_SP_FORECAST_BOT",
    "GRANT DATABASE ROLE MESH.SALES__SALES_V2 TO ROLE MESH_AGR_TEAM_FINANCE",
    'GRANT ROLE MESH_AGR_PERSON_NORA_BERG_EXAMPLE_COM TO USER "NORA.BERG@EXAMPLE.COM"',
    "GRANT ROLE MESH_AGR_SP_FORECAST_BOT TO USER FORECAST_BOT",
    "GRANT ROLE MESH_AGR_TEAM_FINANCE TO ROLE MESH_TEAM_FINANCE",
]
"""What the example mesh's agreements in force need on an account that holds nothing yet."""


class Account:
    """A Snowflake account as far as sync sees it: roles, database roles and grants, answering SHOW with
    rows in Snowflake's documented column order and applying the statement shapes sync emits."""

    def __init__(self, grants: set[Grant] | None = None) -> None:
        self.roles: set[str] = set()
        self.database_roles: set[str] = set()
        self.grants: dict[tuple, Grant] = {g.key: g for g in grants or set()}
        self.ran: list[str] = []

    def run(self, sql: str) -> list[tuple]:
        self.ran.append(sql)
        if m := re.fullmatch(r"SHOW ROLES LIKE '(.+)%'", sql):
            return [("2026-12-06", r) for r in sorted(self.roles) if r.startswith(m[1])]
        if m := re.fullmatch(r"SHOW DATABASE ROLES IN DATABASE (\w+)", sql):
            return [("2026-12-06", r.split(".", 1)[1]) for r in sorted(self.database_roles)]
        if m := re.fullmatch(r"SHOW GRANTS OF ROLE (\S+)", sql):
            held = [
                g for g in self.grants.values() if g.on == "ROLE" and canonical(g.name) == canonical(m[1])
            ]
            return [
                ("2026-12-06", canonical(g.name), g.to, canonical(g.grantee), "SECURITYADMIN") for g in held
            ]
        if m := re.fullmatch(r"SHOW GRANTS TO (ROLE|DATABASE ROLE) (\S+)", sql):
            to = m[1].replace(" ", "_")
            return [
                self._row(g)
                for g in self.grants.values()
                if g.to == to and canonical(g.grantee) == canonical(m[2])
            ]
        if m := re.fullmatch(r"SHOW GRANTS ON (TABLE|VIEW) (\S+)", sql):
            return [
                self._row(g)
                for g in self.grants.values()
                if g.on == m[1] and canonical(g.name) == canonical(m[2])
            ]
        if m := re.fullmatch(r"CREATE (DATABASE )?ROLE IF NOT EXISTS (\S+) .*", sql):
            (self.database_roles if m[1] else self.roles).add(canonical(m[2]))
            return []
        grant = self._parse(sql)
        if sql.startswith("GRANT"):
            self.grants[grant.key] = grant
        else:
            self.grants.pop(grant.key)
        return []

    @staticmethod
    def _row(g: Grant) -> tuple:
        # Snowflake prints a database role's grantee without its database inside that database.
        grantee = canonical(g.grantee).split(".", 1)[1] if g.to == "DATABASE_ROLE" else canonical(g.grantee)
        return ("2026-12-06", g.privilege, g.on, canonical(g.name), g.to, grantee, "false", "SECURITYADMIN")

    @staticmethod
    def _parse(sql: str) -> Grant:
        target = r"(?:TO|FROM) (ROLE|DATABASE ROLE|USER) (\S+)$"
        if m := re.fullmatch(rf"(?:GRANT|REVOKE) (DATABASE ROLE|ROLE) (\S+) {target}", sql):
            return Grant("USAGE", m[1].replace(" ", "_"), m[2], m[3].replace(" ", "_"), m[4])
        m = re.fullmatch(rf"(?:GRANT|REVOKE) (\w+) ON (\w+) (\S+) {target}", sql)
        assert m, f"not a statement sync emits: {sql}"
        return Grant(m[1], m[2], m[3], m[4].replace(" ", "_"), m[5])


@pytest.fixture(scope="module")
def example(repo_root: Path):
    return desired(load_registry(repo_root, TODAY), TODAY)


def test_the_example_compiles_to_a_database_role_per_port_version_and_an_access_role_per_consumer(
    example,
) -> None:
    assert plan(example, CurrentState()).statements() == EXAMPLE


def test_every_statement_parses_with_sqlglots_snowflake_dialect(example) -> None:
    for statement in plan(example, CurrentState()).statements():
        tree = sqlglot.parse_one(statement, read="snowflake")
        if statement.startswith("GRANT") and " ON " in statement and "DATABASE ROLE" not in statement:
            assert isinstance(tree, exp.Grant), statement  # privilege, object and role parsed apart
        else:  # roles, database roles, role grants: sqlglot keeps them as generic commands
            assert isinstance(tree, exp.Command), statement


def test_a_first_sync_applies_the_plan_and_a_second_does_nothing(example, tmp_path: Path) -> None:
    account = Account()
    first = sync(account.run, example, log=tmp_path / "grants.jsonl", now=datetime(2026, 12, 6, tzinfo=UTC))

    second = sync(account.run, example, log=tmp_path / "grants.jsonl")

    assert first.applied == EXAMPLE
    assert second.plan.empty and second.applied == [] and second.plan.drift == []
    entries = access_audit.read(tmp_path / "grants.jsonl")
    assert len(entries) == 16 and entries[0]["by"] == "mesh access sync"
    assert "sales.sales/team.finance" in {e["agreement"] for e in entries}
    assert access_audit.verify(tmp_path / "grants.jsonl").intact


def test_an_expired_persons_access_is_revoked_without_touching_anyone_elses(repo_root: Path, example) -> None:
    account = Account()
    sync(account.run, example)
    later = desired(load_registry(repo_root, date(2027, 6, 5)), date(2027, 6, 5))

    result = sync(account.run, later)

    nora = "MESH_AGR_PERSON_NORA_BERG_EXAMPLE_COM"
    master = "MESH.CUSTOMERS__CUSTOMER_MASTER_V1"
    # Access goes first (the role from the user), then what it carried; names re-quoted as written.
    assert result.applied == [
        f'REVOKE ROLE {nora} FROM USER "NORA.BERG@EXAMPLE.COM"',
        f"REVOKE DATABASE ROLE {master} FROM ROLE {nora}",
        f"REVOKE DATABASE ROLE {master}_PII FROM ROLE {nora}",
        f"REVOKE USAGE ON DATABASE MESH FROM ROLE {nora}",
        f'REVOKE SELECT ON TABLE MESH."customers"."customer_master_v1" FROM DATABASE ROLE {master}_PII',
        f'REVOKE SELECT ON VIEW MESH."customers"."customer_master_v1__protected" FROM DATABASE ROLE {master}',
        f'REVOKE USAGE ON SCHEMA MESH."customers" FROM DATABASE ROLE {master}',
        f'REVOKE USAGE ON SCHEMA MESH."customers" FROM DATABASE ROLE {master}_PII',
    ]
    assert not any("SALES" in s or "GRANT " in s for s in result.applied)  # nothing revoked and re-granted


def test_a_second_agreement_on_a_port_only_hands_its_database_role_to_the_new_consumer(
    mesh_copy: Path,
) -> None:
    account = Account()
    sync(account.run, desired(load_registry(mesh_copy, TODAY), TODAY))
    write_agreement(
        mesh_copy, "sales.sales", agreement("omar.haddad@example.com", "person", major=2, by="policy")
    )

    result = sync(account.run, desired(load_registry(mesh_copy, TODAY), TODAY))

    assert result.applied == [
        "CREATE ROLE IF NOT EXISTS MESH_AGR_PERSON_OMAR_HADDAD_EXAMPLE_COM "
        "COMMENT = 'mesh: access agreements'",
        "GRANT USAGE ON DATABASE MESH TO ROLE MESH_AGR_PERSON_OMAR_HADDAD_EXAMPLE_COM",
        "GRANT DATABASE ROLE MESH.SALES__SALES_V2 TO ROLE MESH_AGR_PERSON_OMAR_HADDAD_EXAMPLE_COM",
        'GRANT ROLE MESH_AGR_PERSON_OMAR_HADDAD_EXAMPLE_COM TO USER "OMAR.HADDAD@EXAMPLE.COM"',
    ]


def test_a_grant_added_by_hand_is_drift_left_alone_unless_pruned(example) -> None:
    by_hand = Grant("SELECT", "TABLE", 'MESH."sales"."sales_v2"', "ROLE", "ADHOC_ANALYST")
    account = Account({by_hand})
    sync(account.run, example)

    report = sync(account.run, example, dry_run=True)
    assert report.plan.empty and [g.key for g in report.plan.drift] == [by_hand.key]
    assert report.applied == [] and by_hand.key in account.grants

    pruned = sync(account.run, example, prune=True)
    assert pruned.applied == ['REVOKE SELECT ON TABLE MESH."sales"."sales_v2" FROM ROLE ADHOC_ANALYST']
    assert by_hand.key not in account.grants


def test_ownership_is_never_drift(example) -> None:
    owner = Grant("OWNERSHIP", "TABLE", 'MESH."sales"."sales_v2"', "ROLE", "MESH_SALES_DOMAIN")

    assert plan(example, CurrentState(grants=frozenset({owner}))).drift == []


def test_show_rows_are_read_by_snowflakes_column_order() -> None:
    rows = [
        ("2026-12-06", "USAGE", "DATABASE_ROLE", "SALES__SALES_V2", "ROLE", "MESH_AGR_TEAM_FINANCE", "false")
    ]

    [grant] = grants_from_rows(rows, "MESH")
    [held] = holders_from_rows([("2026-12-06", "MESH_AGR_TEAM_FINANCE", "ROLE", "MESH_TEAM_FINANCE", "X")])

    assert grant.grant_sql() == "GRANT DATABASE ROLE MESH.SALES__SALES_V2 TO ROLE MESH_AGR_TEAM_FINANCE"
    assert held.grant_sql() == "GRANT ROLE MESH_AGR_TEAM_FINANCE TO ROLE MESH_TEAM_FINANCE"


def test_product_agreements_need_no_grants_their_domain_role_reads_the_port(mesh_copy: Path) -> None:
    write_agreement(mesh_copy, "sales.sales", agreement("commercial_analytics.customer_360", major=1))

    wanted = desired(load_registry(mesh_copy, TODAY), TODAY)

    assert "customer_360" not in " ".join(plan(wanted, CurrentState()).statements()).lower()


def test_on_duckdb_sync_shows_the_plan_and_says_the_platform_enforces_it(
    mesh_copy: Path, isolated: Path
) -> None:
    app = typer.Typer()
    access_command.register(app)

    result = CliRunner().invoke(app, ["access", "sync"])

    assert result.exit_code == 0, result.output
    assert "DuckDB has no roles or grants: the platform's own reads enforce agreements" in result.output
    assert "GRANT DATABASE ROLE MESH.SALES__SALES_V2 TO ROLE MESH_AGR_TEAM_FINANCE;" in result.output


# --- the governance location's reconciling sensor -------------------------------------------------------


def reconcile(
    repo_root: Path, tmp_path: Path, account: Account, target: str = "snowflake", name: str = "prod"
):
    from contextlib import nullcontext

    import dagster as dg

    from mesh_assets.govern.access_reconcile import reconcile_tick
    from mesh_assets.infra.environment import Environment

    env = Environment(
        target=target,
        root=repo_root,
        duckdb_path=tmp_path / "x.duckdb",
        name=name,
        data_root_dir=tmp_path / "data",
    )
    registry = load_registry(repo_root, TODAY)
    result = reconcile_tick(
        dg.build_sensor_context(), registry, env, connect=lambda: nullcontext(account.run), today=TODAY
    )
    return result.skip_reason.skip_message if result.skip_reason else ""


def test_the_sensor_applies_the_agreements_in_prod_and_then_has_nothing_to_do(
    repo_root: Path, tmp_path: Path
) -> None:
    account = Account()

    first = reconcile(repo_root, tmp_path, account)
    second = reconcile(repo_root, tmp_path, account)

    assert first == "2026-12-06: applied 22 statement(s) (16 grant(s), 0 revocation(s)); 0 drift"
    assert second == "2026-12-06: applied 0 statement(s) (0 grant(s), 0 revocation(s)); 0 drift"
    assert access_audit.verify(tmp_path / "data" / "envs" / "prod" / "access" / "grants.audit.jsonl").intact


def test_outside_prod_the_sensor_only_plans_and_reports_drift(repo_root: Path, tmp_path: Path) -> None:
    by_hand = Grant("SELECT", "TABLE", 'MESH_CI_X."sales"."sales_v2"', "ROLE", "ADHOC_ANALYST")
    account = Account({by_hand})

    summary = reconcile(repo_root, tmp_path, account, name="ci_x")

    assert summary.startswith("2026-12-06: would apply (not prod: ci_x) 22 statement(s)")
    assert summary.endswith("1 drift")
    assert [s for s in account.ran if not s.startswith("SHOW")] == []


def test_on_duckdb_the_sensor_has_nothing_to_grant(repo_root: Path, tmp_path: Path) -> None:
    assert "DuckDB has no grants" in reconcile(repo_root, tmp_path, Account(), target="duckdb")
