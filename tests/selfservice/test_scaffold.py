"""`mesh new domain` and `mesh new product`: scaffolds that validate, build for real and pass their tests.

Everything happens in a private copy of the repository (`copy_mesh` plus `workspace.yaml`, `MESH_ROOT`
pointing at it). New domains are not importable from this process (`domains` is the repository's
package), so builds run `mesh run` in a subprocess whose `PYTHONPATH` is the copy.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import yaml
from conftest import REPO, copy_mesh, mesh_command_dir
from typer.testing import CliRunner

from mesh_assets.cli.app import app
from mesh_assets.govern.validate import validate
from mesh_assets.product.registry import load_registry
from mesh_assets.selfservice.check import check_product
from mesh_assets.selfservice.errors import ScaffoldError
from mesh_assets.selfservice.governance_defaults import half_duration
from mesh_assets.selfservice.prompts import check_identifier, suggest_identifier
from mesh_assets.selfservice.scaffold import ProductRequest, new_domain, new_product

STEWARD = "lab.lead@example.com"


def mesh(*args: str, input: str | None = None) -> tuple[int, str]:
    """Run `mesh <args>` in-process; exit code and output."""
    result = CliRunner().invoke(app, list(args), input=input)
    return result.exit_code, result.output


def tree(root: Path) -> dict[str, str]:
    """Every file under `domains/`, `dbt_projects/` and `workspace.yaml`, with its content."""
    files = [root / "workspace.yaml", *(root / "domains").rglob("*"), *(root / "dbt_projects").rglob("*")]
    return {
        str(f.relative_to(root)): f.read_text(errors="replace")
        for f in files
        if f.is_file() and "__pycache__" not in f.parts and "target" not in f.parts and "logs" not in f.parts
    }


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_sources: Path) -> Path:
    """A private copy of the mesh with its workspace.yaml, resolved as the root; git knows no email."""
    root = copy_mesh(tmp_path / "repo")
    shutil.copy(REPO / "workspace.yaml", root / "workspace.yaml")
    monkeypatch.setenv("MESH_ROOT", str(root))
    monkeypatch.setenv("MESH_SOURCES_DIR", str(small_sources))
    # Never the developer's git identity: owners come from flags (or the config a test writes).
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.chdir(root)
    return root


# --- mesh new domain -----------------------------------------------------------------------------


def test_new_domain_writes_a_thin_code_location_and_registers_it(repo: Path) -> None:
    before = (repo / "workspace.yaml").read_text()
    code, out = mesh("new", "domain", "lab_ops", "--description", "Operations of the labs we serve")
    assert code == 0, out
    folder = repo / "domains" / "lab_ops"
    assert (folder / "__init__.py").exists() and (folder / "products").is_dir()
    assert (folder / "tests" / "__init__.py").exists()
    definitions = (folder / "definitions.py").read_text()
    assert 'build_domain("lab_ops")' in definitions
    assert "Operations of the labs we serve." in definitions
    assert (
        definitions.replace("lab_ops", "customers").split('"""')[2]
        == ((REPO / "domains" / "customers" / "definitions.py").read_text().split('"""')[2])
    ), "the same thin entry point as the existing domains"

    workspace = (repo / "workspace.yaml").read_text()
    lines = workspace.splitlines()
    # Comments and existing entries kept, one line added, before the governance location.
    assert [line for line in lines if "lab_ops" not in line] == before.splitlines()
    added = next(i for i, line in enumerate(lines) if "domains.lab_ops.definitions" in line)
    assert "domains.mesh.definitions" in lines[added + 1]
    entries = yaml.safe_load(workspace)["load_from"]
    assert {
        "module_name": "domains.lab_ops.definitions",
        "location_name": "lab_ops",
        "working_directory": ".",
    } in [e["python_module"] for e in entries]
    assert "mesh new product lab_ops" in out


def test_new_domain_refuses_bad_names_and_existing_domains(repo: Path) -> None:
    before = tree(repo)
    for name, expected in [
        ("Lab-Ops", "e.g. 'lab_ops'"),
        ("9lives", "not a valid domain name"),
        ("class", "Python keyword"),
        ("mesh", "governance"),
        ("customers", "already exists"),
    ]:
        code, out = mesh("new", "domain", name)
        assert code == 2 and expected in out, (name, out)
    assert tree(repo) == before, "a refusal changes nothing"
    code, out = mesh("new", "domain", "lab_ops", "--port", "orders")
    assert code == 2 and "only with --from-dbt" in out

    (repo / "workspace.yaml").write_text(
        (repo / "workspace.yaml").read_text()
        + "  - python_module: {module_name: domains.lab_ops.definitions, location_name: lab_ops}\n"
    )
    code, out = mesh("new", "domain", "lab_ops")
    assert code == 2 and "workspace.yaml already has a code location 'lab_ops'" in out
    assert not (repo / "domains" / "lab_ops").exists(), "rolled back"


# --- mesh new product: refusals ------------------------------------------------------------------


def test_new_product_refuses_bad_input_and_changes_nothing(repo: Path) -> None:
    assert mesh("new", "domain", "lab_ops")[0] == 0
    before = tree(repo)
    with_steward = ["--steward", STEWARD]
    cases = [
        (["lab_opps", "runs", *with_steward], "no domain 'lab_opps'; did you mean 'lab_ops'?"),
        (["customers", "customer_master", *with_steward], "'customers.customer_master' already exists"),
        (["lab_ops", "Runs", *with_steward], "not a valid product name"),
        (["lab_ops", "runs", "--kind", "spark", *with_steward], "--kind spark: use one of sql, python, dbt"),
        (
            ["lab_ops", "runs", "--input", "customers.customer_mastr", *with_steward],
            "did you mean 'customers.customer_master'",
        ),
        (["lab_ops", "runs", "--input", "nowhere.nothing"], "no product 'nowhere.nothing' in the mesh"),
        (["lab_ops", "runs", "--input", "sales.sales@7"], "sales.sales serves no such port"),
        (["lab_ops", "runs", "--source", "crm.customer"], "did you mean 'crm.customers'?"),
        (["lab_ops", "runs", "--steward", "not-an-email"], "--steward: 'not-an-email' is not an email"),
        (["lab_ops", "runs", "--classification", "secret", *with_steward], "'secret' is not one of"),
        (["lab_ops", "runs", "--freshness", "daily", *with_steward], "'daily' is not a duration"),
        (["lab_ops", "runs", "--primary-key", "nope", *with_steward], "--primary-key nope: not a column"),
        (
            ["lab_ops", "runs", "--kind", "dbt", "--project", "sales", *with_steward],
            "dbt project 'sales' builds products of domain(s) sales; a dbt project serves one domain",
        ),
        # No flag, no terminal, no git email: the refusal names the flag CI must pass.
        (["lab_ops", "runs"], "Data steward (email of the accountable person) is required: pass --steward"),
    ]
    for args, expected in cases:
        code, out = mesh("new", "product", *args)
        assert code == 2, (args, out)
        assert expected in " ".join(out.split()), (args, out)
    assert tree(repo) == before


def test_a_draft_port_of_another_domain_is_refused_as_input(repo: Path) -> None:
    for domain in ("lab_ops", "finance"):
        assert mesh("new", "domain", domain)[0] == 0
    code, out = mesh("new", "product", "lab_ops", "capacity", "--steward", STEWARD)
    assert code == 0, out
    code, out = mesh("new", "product", "finance", "cost", "--input", "lab_ops.capacity", "--steward", STEWARD)
    assert code == 2 and "lab_ops.capacity v1 is a draft, readable only inside domain 'lab_ops'" in out
    # The same domain may read its own drafts.
    code, out = mesh("new", "product", "lab_ops", "load", "--input", "lab_ops.capacity", "--steward", STEWARD)
    assert code == 0, out


# --- mesh new product: what it writes ------------------------------------------------------------


def test_the_steward_comes_from_git_config_and_the_spec_is_complete(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "gitconfig").write_text("[user]\n\temail = dana.cho@example.com\n")
    assert mesh("new", "domain", "lab_ops")[0] == 0
    code, out = mesh("new", "product", "lab_ops", "capacity")
    assert code == 0, out
    spec = yaml.safe_load((repo / "domains/lab_ops/products/capacity/dataproduct.yaml").read_text())
    assert spec["owner"] == {"team": "lab_ops_data", "steward": "dana.cho@example.com"}
    # Every attribute of the metamodel is written out, none left to a TODO.
    for attribute in [
        "title",
        "description",
        "owner",
        "product_type",
        "status",
        "business_capability",
        "classification",
        "access",
        "access_policy",
        "distribution_rights",
        "data_sharing_agreement",
        "support",
        "slos",
        "input_ports",
        "transformation",
        "output_ports",
    ]:
        assert spec.get(attribute) is not None, attribute
    assert "TODO" not in (repo / "domains/lab_ops/products/capacity/dataproduct.yaml").read_text()
    assert spec["status"] == "draft" and spec["classification"] == "internal"
    assert spec["slos"]["freshness"] == {"max_age": "24h", "warn_after": "12h"}
    # A second product of the domain takes the domain's owner before git's (now someone else).
    (tmp_path / "gitconfig").write_text("[user]\n\temail = someone.else@example.com\n")
    code, out = mesh("new", "product", "lab_ops", "load", "--no-input")
    assert code == 0, out
    spec = yaml.safe_load((repo / "domains/lab_ops/products/load/dataproduct.yaml").read_text())
    assert spec["owner"] == {"team": "lab_ops_data", "steward": "dana.cho@example.com"}
    assert spec["support"]["channel"] == "#lab-ops-data"


class Answers:
    """A scripted person at the terminal."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, str | None]] = []
        self.told: list[str] = []

    def ask(self, label: str, default: str | None) -> str:
        self.asked.append((label, default))
        answer = self.answers.pop(0)
        return (default or "") if answer == "" else answer

    def tell(self, message: str) -> None:
        self.told.append(message)


def test_a_person_at_a_terminal_is_asked_what_flags_do_not_say(repo: Path) -> None:
    new_domain(repo, "lab_dev")
    person = Answers("nobody", "ana@example.com", "", "restricted", "6h", "")
    new_product(repo, ProductRequest(domain="lab_dev", name="bench"), person)
    labels = [label.split(" (")[0].split(":")[0] for label, _ in person.asked]
    assert labels == [
        "Data steward",
        "Data steward",
        "Owner team",
        "Classification",
        "Freshness SLO",
        "Purpose",
    ]
    assert person.told == ["'nobody' is not an email address; the steward is a person, e.g. ana@example.com"]
    spec = load_registry(repo).products["lab_dev.bench"].spec
    assert spec.owner.steward == "ana@example.com" and spec.owner.team == "lab_dev_data"
    assert spec.classification == "restricted" and spec.slos.freshness.max_age == "6h"
    assert spec.access_policy.allowed_roles == [], "restricted data: no reader until the owner names one"


def test_the_cli_prompts_only_at_a_terminal(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mesh_assets.cli import new as new_command

    assert mesh("new", "domain", "lab_ops")[0] == 0
    monkeypatch.setattr(
        new_command,
        "_asker",
        lambda console, no_input: None if no_input else new_command.TerminalAsker(console),
    )
    code, out = mesh("new", "product", "lab_ops", "bench", input="ana@example.com\n\n\n\n\n")
    assert code == 0, out
    assert "Data steward" in out and "Owner team [lab_ops_data]" in out
    assert mesh("new", "domain", "finance")[0] == 0
    code, out = mesh("new", "product", "finance", "cost", "--no-input")
    assert code == 2 and "pass --steward" in out


def test_a_product_over_two_ports_joins_them_drops_pii_and_inherits_rules(repo: Path) -> None:
    assert mesh("new", "domain", "lab_ops")[0] == 0
    code, out = mesh(
        "new",
        "product",
        "lab_ops",
        "run_sites",
        "--input",
        "diagnostics.instrument_runs",
        "--input",
        "customers.customer_master",
        "--steward",
        STEWARD,
    )
    assert code == 0, out
    assert "joined customers.customer_master on customer_id" in out
    assert "left out PII column(s) customers.customer_master.contact_email" in " ".join(out.split())
    product = load_registry(repo).products["lab_ops.run_sites"]
    spec, port = product.spec, product.spec.output_ports[0]
    runs = load_registry(repo).products["diagnostics.instrument_runs"].spec.output_ports[0]
    names = [c.name for c in port.columns]
    assert names[: len(runs.columns)] == [c.name for c in runs.columns]
    assert {"customer_name", "customer_type", "city"} <= set(names)
    assert not {"contact_email", "contact_phone"} & set(names)
    assert port.primary_key == ["run_id"] and port.event_time == "started_at"
    assert spec.classification == "confidential", "as sensitive as its most sensitive input"
    assert [i.product for i in spec.product_inputs] == [
        "diagnostics.instrument_runs",
        "customers.customer_master",
    ]
    rules = {(r.type, getattr(r, "column", None)) for r in port.quality.rules}
    assert {("accepted_values", "status"), ("accepted_values", "customer_type")} <= rules
    assert ("references", "customer_id") in rules, "a reference to a declared input comes along"
    sql = (product.folder / "run_sites_v1.sql").read_text()
    assert "{{ input('diagnostics.instrument_runs') }} as instrument_runs" in sql
    assert "left join {{ input('customers.customer_master') }} as customer_master" in sql
    assert check_product(repo, "lab_ops.run_sites") == []

    # The generated test catches a transformation that drifts from its contract.
    (product.folder / "run_sites_v1.sql").write_text(sql.replace("    instrument_runs.assay,\n", ""))
    problems = check_product(repo, "lab_ops.run_sites")
    assert len(problems) == 1 and "missing_columns: assay" in problems[0]


@pytest.mark.slow
def test_products_of_each_kind_validate_build_and_pass_their_own_tests(
    repo: Path, isolated: Path, tmp_path: Path
) -> None:
    assert mesh("new", "domain", "lab", "--description", "Lab operations")[0] == 0
    flags = ["--steward", STEWARD, "--owner-team", "lab_data"]
    products = [
        ["panels"],  # SQL from sample rows
        ["panel_stats", "--kind", "python", "--input", "lab.panels"],
        ["panel_marts", "--kind", "dbt", "--input", "lab.panels"],
        ["crm_accounts", "--source", "crm.customers"],  # SQL from a source extract
        ["crm_contacts", "--kind", "python", "--source", "crm.customers", "--primary-key", "customer_id"],
    ]
    for args in products:
        code, out = mesh("new", "product", "lab", *args, *flags)
        assert code == 0, (args, out)
    assert (repo / "dbt_projects" / "lab" / "profiles.yml").exists(), "the domain's dbt project, created"
    assert (repo / "dbt_projects/lab/models/panel_marts/panel_marts_v1.sql").exists()
    assert (
        "source('port_lab', 'panels_v1')"
        in (repo / "dbt_projects/lab/models/panel_marts/panel_marts_v1.sql").read_text()
    )

    report = validate(repo)
    assert not report.errors, [e.render(repo) for e in report.errors]
    assert {f"lab.{p[0]}" for p in products} <= set(report.registry.products)

    env = {
        **os.environ,
        "PYTHONPATH": str(repo),
        "PATH": f"{mesh_command_dir()}{os.pathsep}{os.environ['PATH']}",
    }
    run = subprocess.run(
        ["mesh", "run", "--domain", "lab"], cwd=repo, env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stdout + run.stderr
    with duckdb.connect(str(isolated / "mesh.duckdb"), read_only=True) as con:
        counts = {p[0]: con.execute(f"SELECT COUNT(*) FROM lab.{p[0]}_v1").fetchone()[0] for p in products}
    assert counts["panels"] == counts["panel_stats"] == counts["panel_marts"] == 3
    assert counts["crm_accounts"] == counts["crm_contacts"] > 0

    # The generated tests pass, and the generated Python is as clean as the rest of the repository.
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "domains/lab/tests"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert tests.returncode == 0 and f"{len(products) + 2} passed" in tests.stdout, (
        tests.stdout + tests.stderr
    )
    ruff = Path(sys.executable).with_name("ruff")
    # ruff is a dev dependency, always installed: a missing one is a broken environment, not a skip.
    assert ruff.exists(), f"no ruff beside {sys.executable}: install the dev dependencies"
    # Lint the copy as the repository lints itself: its config, `mesh_assets` first-party.
    shutil.copy(REPO / "pyproject.toml", repo / "pyproject.toml")
    (repo / "mesh_assets").symlink_to(REPO / "mesh_assets")
    for command in (["check"], ["format", "--check"]):
        lint = subprocess.run(
            [str(ruff), *command, "--no-cache", "domains/lab"], cwd=repo, capture_output=True, text=True
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr


def test_scaffold_helpers() -> None:
    assert half_duration("24h") == "12h"
    assert half_duration("1h") == "30m"
    assert half_duration("4d") == "2d"
    assert suggest_identifier("Lab Ops-2") == "lab_ops_2"
    with pytest.raises(ScaffoldError, match=r"e\.g\. 'x_y'"):
        check_identifier("domain", "X-Y")
