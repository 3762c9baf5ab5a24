"""The CI gate (`mesh ci`): prove a change in a branch environment before it merges.

Steps, each recorded as a `Step` (the report renders them; any failed step fails the gate):

1. validate the whole mesh; fitness of the changed products (mandatory characteristics gate);
2. contract diff against the base ref: a breaking change without a new major fails, naming each affected
   consumer, its owner and the versions;
3. build the changed products and their downstream consumers in the branch environment (a fresh one by
   default), deferring every other port to prod read-only; every contract check runs, and a blocking
   failure fails the gate;
4. data diff of each built port against prod (rows by primary key, drifted columns, PII-masked examples).

The build runs as `mesh run --product ...` in a child process with `MESH_ENV=<branch>`: the same command a
developer runs, with the branch's own Dagster instance, and nothing of this process's environment (a
`MESH_DUCKDB_PATH`, a `DAGSTER_HOME`) leaking into it. Prod is only ever read.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mesh_assets.contracts.changed import ChangeSet, changes_against
from mesh_assets.infra import environment
from mesh_assets.infra.environment import PROD, Environment
from mesh_assets.run.results import ProductResult, RunStatus, read_summary

if TYPE_CHECKING:
    from mesh_assets.contracts.data_diff import PortDataDiff
    from mesh_assets.product.registry import Registry

Progress = Callable[[str], None]
CI_PREFIX = "ci_"


@dataclass
class Step:
    """One step of the gate."""

    name: str
    ok: bool
    summary: str
    details: list[str] = field(default_factory=list)
    """One line per finding (a failing check, a blocking change, ...)."""
    cases: list[tuple[str, str | None]] = field(default_factory=list)
    """JUnit test cases: (name, failure message or None)."""
    seconds: float = 0.0


@dataclass
class CiResult:
    """What `mesh ci` found."""

    base: str
    env: str
    target: str
    changes: ChangeSet
    steps: list[Step] = field(default_factory=list)
    diffs: list[PortDataDiff] = field(default_factory=list)
    build: list[ProductResult] = field(default_factory=list)
    """What the branch build did to each product (read back from `mesh run --summary-json`)."""
    seconds: float = 0.0
    report_dir: Path | None = None

    @property
    def ok(self) -> bool:
        """Every step passed: the change may merge."""
        return all(step.ok for step in self.steps)


def branch_env_name(root: Path) -> str:
    """`ci_<branch>`: the branch from the CI's variables (GitHub, GitLab) or git, made an environment name."""
    branch = os.environ.get("GITHUB_HEAD_REF") or os.environ.get("CI_COMMIT_REF_NAME") or ""
    if not branch:
        done = subprocess.run(
            ["git", "rev-parse", "--abbrev-ref", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
        branch = done.stdout.strip() if done.returncode == 0 else ""
    slug = re.sub(r"[^a-z0-9]+", "_", branch.lower()).strip("_") or "head"
    return (CI_PREFIX + slug)[:40].rstrip("_")


# --- steps --------------------------------------------------------------------------------------------------


def _validate_step(root: Path, registry: Registry, changes: ChangeSet) -> list[Step]:
    from mesh_assets.govern import fitness
    from mesh_assets.govern.validate import validate

    started = time.monotonic()
    report = validate(root)
    errors = [issue.render(root) for issue in report.errors]
    validate_step = Step(
        "validate",
        not errors,
        f"{len(errors)} error(s), {len(report.warnings)} warning(s)",
        details=errors,
        cases=[("mesh validate", "\n".join(errors) or None)],
        seconds=time.monotonic() - started,
    )
    started = time.monotonic()
    card = fitness.evaluate(registry, fitness.NO_FACTS)
    fit_step = Step("fitness", True, "", seconds=0.0)
    for product in card.products:
        if product.key not in changes.changed:
            continue
        mandatory = [f"{r.characteristic.label}: {r.reason}" for r in product.mandatory_failures]
        advisory = [f"{r.characteristic.label}: {r.reason}" for r in product.failures if not r.mandatory]
        fit_step.details += [f"{product.key} FAIL {line}" for line in mandatory]
        fit_step.details += [f"{product.key} red {line}" for line in advisory]
        fit_step.cases.append((f"fitness {product.key}", "\n".join(mandatory) or None))
        fit_step.ok = fit_step.ok and not mandatory
    failing = sum(1 for _, failure in fit_step.cases if failure)
    fit_step.summary = (
        f"{len(fit_step.cases)} changed product(s) scored, {failing} failing a mandatory characteristic"
    )
    fit_step.seconds = time.monotonic() - started
    return [validate_step, fit_step]


def _access_step(root: Path, registry: Registry, changes: ChangeSet) -> Step | None:
    """The agreement files the change adds or edits, judged against the policy: who must still decide, who
    decided, and what is wrong (the same findings as `mesh validate`, named per file). None when the
    change touches no agreement. A request waiting for its decision passes: merging it grants nothing."""
    from mesh_assets.govern import access_lint

    touched = sorted(
        f for f in changes.files if f.startswith("domains/") and "/access/" in f and f.endswith(".yaml")
    )
    if not touched:
        return None
    started = time.monotonic()
    problems: dict[Path, list[str]] = {}
    for issue in [*registry.errors, *access_lint.agreement_issues(root, registry)]:
        if issue.severity == "error":
            problems.setdefault(issue.file.resolve(), []).append(issue.render(root))
    by_path = {a.path.resolve(): a for a in registry.agreements}
    step = Step("access", True, "")
    for name in touched:
        path = (root / name).resolve()
        loaded = by_path.get(path)
        failure = "\n".join(problems.get(path, [])) or None
        if not path.exists():
            line = f"{name}: removed (its audit trail keeps its history)"
        elif loaded is None:
            line = f"{name}: does not validate"
            failure = failure or "the agreement file does not validate; run `mesh validate`"
        else:
            agreement = loaded.agreement
            state = loaded.state(registry.today).value
            who = ", ".join(agreement.approvers()) or "nobody yet"
            line = f"{loaded.id}: {agreement.consumer} on v{agreement.major}, {state} (approved by {who})"
        step.details.append(line + (f"; {failure}" if failure else ""))
        step.cases.append((f"access {name}", failure))
        step.ok = step.ok and failure is None
    failing = sum(1 for _, failure in step.cases if failure)
    step.summary = f"{len(touched)} agreement file(s) changed, {failing} against the policy"
    step.seconds = time.monotonic() - started
    return step


def _contract_step(root: Path, base: str) -> Step:
    from mesh_assets.contracts.contract_diff import diff_working_tree

    started = time.monotonic()
    report = diff_working_tree(root, base)
    details, cases = [], []
    for change in report.sorted():
        where = " ".join(part for part in (change.product, change.port, change.column) if part)
        consumers = "; ".join(c.label() for c in change.consumers)
        line = f"{change.verdict} {where}: {change.rule}: {change.reason}"
        if change.fix:
            line += f". Fix: {change.fix}"
        if consumers:
            line += f". Affects {consumers}"
        details.append(line)
        cases.append((f"contract {where} {change.rule}", line if change.blocking else None))
    return Step(
        "contract diff",
        report.ok,
        report.summary(),
        details=details,
        cases=cases or [("contract diff", None)],
        seconds=time.monotonic() - started,
    )


def _build_step(
    branch: Environment, products: list[str], out: Path, progress: Progress
) -> tuple[Step, list[ProductResult]]:
    started = time.monotonic()
    summary, log = out / "build.json", out / "build.log"
    summary.unlink(missing_ok=True)
    code = _mesh_run(branch, products, summary, log, progress)
    results = read_summary(summary) if summary.exists() else []
    details, cases = [], []
    for result in results:
        rows = ", ".join(f"{port} {n:,} rows" for port, n in sorted(result.rows.items()) if n is not None)
        details.append(
            f"{result.product} {result.status}: {rows or 'no rows'}; {result.checks_passed} checks "
            f"passed, {result.warnings} warning(s), {result.blocking_failed} blocking"
            + (f"; {result.error}" if result.error else "")
        )
        cases.append((f"build {result.product}", result.failure))
    if not results:
        tail = log.read_text().strip().splitlines()[-5:]
        details.append(f"the build wrote no summary (exit {code}): " + " | ".join(tail))
        cases.append(("build", f"exit {code}: see {log}"))
    ok = code == 0 and bool(results) and all(failure is None for _, failure in cases)
    built = sum(1 for r in results if r.status == RunStatus.OK)
    step = Step(
        "build",
        ok,
        f"{built} of {len(products)} product(s) built in environment {branch.name} (exit {code}); log {log}",
        details=details,
        cases=cases,
        seconds=time.monotonic() - started,
    )
    return step, results


def _mesh_run(branch: Environment, products: list[str], summary: Path, log: Path, progress: Progress) -> int:
    """`MESH_ENV=<branch> mesh run --product ... --summary-json <summary>` as a child process; its exit."""
    child = {
        key: value
        for key, value in os.environ.items()
        # The branch's own storage and instance only: nothing of this process's may leak into the build.
        if key not in {"MESH_DUCKDB_PATH", "DAGSTER_HOME", "MESH_DEFER", "MESH_CATALOG_DIR"}
    }
    child.update(
        {"MESH_ENV": branch.name, "DAGSTER_HOME": str(branch.dagster_home), "MESH_ROOT": str(branch.root)}
    )
    command = [sys.executable, "-m", "mesh_assets.cli", "run", "--summary-json", str(summary)]
    for key in products:
        command += ["--product", key]
    progress(f"$ MESH_ENV={branch.name} mesh run " + " ".join(f"--product {p}" for p in products))
    with log.open("w") as sink:
        process = subprocess.Popen(
            command, cwd=branch.root, env=child, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert process.stdout is not None
        for line in process.stdout:
            sink.write(line)
            progress("  " + line.rstrip())
        return process.wait()


def _diff_step(
    branch: Environment, registry: Registry, results: list[ProductResult]
) -> tuple[Step, list[PortDataDiff]]:
    from mesh_assets.contracts.data_diff import diff_port
    from mesh_assets.product import addressing

    started = time.monotonic()
    warehouse = branch.warehouse().process_config_and_initialize()
    diffs, details, cases = [], [], []
    built = [
        registry.products[r.product]
        for r in results
        if r.status == RunStatus.OK and r.product in registry.products
    ]
    with warehouse.session() as session:
        for product in built:
            for port in product.spec.output_ports:
                relation = addressing.published(product.spec, port)
                name = f"{product.key} v{port.major}"
                prod_sql = warehouse.prod_sql(relation)
                if prod_sql is None:
                    details.append(f"{name}: NOT COMPARED — environment {branch.name} does not read prod")
                    cases.append((f"data diff {name}", None))
                    continue
                diff = diff_port(session, branch_sql=relation.sql, prod_sql=prod_sql, port=port, name=name)
                diffs.append(diff)
                details.append(_diff_line(diff))
                cases.append((f"data diff {name}", None))
    step = Step(
        "data diff",
        True,
        f"{len(diffs)} port(s) compared with prod, {sum(1 for d in diffs if d.has_changes)} changed",
        details=details,
        cases=cases,
        seconds=time.monotonic() - started,
    )
    return step, diffs


def _diff_line(diff: PortDataDiff) -> str:
    if diff.new_port:
        return f"{diff.name}: new port, {diff.branch_rows:,} rows"
    moved = ", ".join(d.column for d in diff.moved)
    schema = []
    if diff.only_in_prod:
        schema.append(f"columns removed: {', '.join(diff.only_in_prod)}")
    if diff.only_in_branch:
        schema.append(f"columns added: {', '.join(diff.only_in_branch)}")
    return (
        f"{diff.name}: {diff.prod_rows:,} -> {diff.branch_rows:,} rows; +{diff.added:,} -{diff.removed:,} "
        f"~{diff.changed:,} ={diff.unchanged:,}"
        + (f"; drifted: {moved}" if moved else "")
        + (f"; {'; '.join(schema)}" if schema else "")
    )


# --- the gate -----------------------------------------------------------------------------------------------


def run_ci(
    base: str,
    env_name: str | None = None,
    *,
    fresh: bool = True,
    report_dir: Path | None = None,
    progress: Progress = lambda _: None,
) -> CiResult:
    """Run the gate for the working tree against git `base`; write the report; return what it found.

    `env_name` defaults to `ci_<branch>`; the report goes to `report_dir` (default: the environment's
    `ci/` folder, beside the build's log and summary). With `fresh`, the environment is dropped and
    created anew so nothing of an earlier run is read; prod is never written (the branch cannot be prod).
    """
    from mesh_assets.govern.ci_report import write_reports
    from mesh_assets.infra import environments
    from mesh_assets.product.registry import load_registry

    started = time.monotonic()
    here = environment.resolve()
    root = here.root
    name = environment.check_env_name(env_name or branch_env_name(root), source="--env")
    if name == PROD:
        raise environment.MeshEnvironmentError("mesh ci never runs in prod: it proves a change beside it")
    branch = here.sibling(name)
    registry = load_registry(root)
    changes = changes_against(root, registry, base)
    result = CiResult(base=base, env=name, target=here.target, changes=changes)
    progress(
        f"changed against {base}: {', '.join(sorted(changes.changed)) or 'no product'}"
        + (f"; downstream: {', '.join(changes.downstream)}" if changes.downstream else "")
    )
    result.steps += _validate_step(root, registry, changes)
    access_step = _access_step(root, registry, changes)
    result.steps += [access_step] if access_step is not None else []
    result.steps.append(_contract_step(root, base))
    for step in result.steps:
        progress(f"{'✓' if step.ok else '✗'} {step.name}: {step.summary}")
    to_build = changes.to_build
    out = branch.data_dir / "ci"
    if to_build and not registry.errors:
        if fresh and (branch.data_dir / environment.MARKER).exists():
            # Nothing of an earlier run may be read: a port left from it would pass for this change's.
            environments.drop(name)
        environments.create(name)
        out.mkdir(parents=True, exist_ok=True)
        step, result.build = _build_step(branch, to_build, out, progress)
        result.steps.append(step)
        progress(f"{'✓' if step.ok else '✗'} build: {step.summary}")
        step, result.diffs = _diff_step(branch, registry, result.build)
        result.steps.append(step)
        progress(f"✓ data diff: {step.summary}")
    elif not to_build:
        result.steps.append(
            Step("build", True, "nothing to build: no product changed", cases=[("build", None)])
        )
    else:
        result.steps.append(
            Step(
                "build",
                False,
                "not built: the mesh does not validate",
                cases=[("build", "mesh validate failed")],
            )
        )
    result.seconds = time.monotonic() - started
    result.report_dir = report_dir or out
    write_reports(result, result.report_dir)
    return result
