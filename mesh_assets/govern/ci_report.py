"""The CI gate's report: Markdown fit for a pull-request comment, and JUnit XML for CI test tabs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from xml.etree import ElementTree

from mesh_assets.contracts.markdown import markdown_cell

if TYPE_CHECKING:
    from mesh_assets.govern.ci_gate import CiResult

MARKDOWN = "report.md"
JUNIT = "junit.xml"


def markdown(result: CiResult) -> str:
    """The whole report as Markdown: verdict, what changed, each step, the data diffs."""
    from mesh_assets.contracts.data_diff import to_markdown

    verdict = "✅ **mesh ci passed**: this change may merge" if result.ok else "❌ **mesh ci failed**"
    changes = result.changes
    lines = [
        f"## {verdict}",
        "",
        f"Base `{result.base}` · environment `{result.env}` ({result.target}) · {result.seconds:.1f}s",
        "",
        "| changed | downstream (rebuilt) |",
        "|---|---|",
        f"| {', '.join(f'`{k}`' for k in sorted(changes.changed)) or '—'} "
        f"| {', '.join(f'`{k}`' for k in changes.downstream) or '—'} |",
        "",
        "| step | result | summary |",
        "|---|---|---|",
    ]
    for step in result.steps:
        mark = "✅" if step.ok else "❌"
        lines.append(f"| {step.name} | {mark} | {markdown_cell(step.summary)} |")
    for step in result.steps:
        if step.details:
            lines += ["", f"### {step.name}", ""]
            lines += [f"- {_inline(detail)}" for detail in step.details]
    if result.diffs:
        lines += ["", "### data diff against prod", ""]
        for diff in result.diffs:
            lines += [to_markdown(diff), ""]
    return "\n".join(lines).rstrip() + "\n"


def junit(result: CiResult) -> str:
    """The steps as JUnit XML: one suite per step, one case per finding (failures carry the reason)."""
    suites = ElementTree.Element("testsuites", name="mesh ci", time=f"{result.seconds:.2f}")
    for step in result.steps:
        failures = sum(1 for _, failure in step.cases if failure)
        suite = ElementTree.SubElement(
            suites,
            "testsuite",
            name=step.name,
            tests=str(len(step.cases)),
            failures=str(failures),
            errors="0",
            time=f"{step.seconds:.2f}",
        )
        for name, failure in step.cases:
            case = ElementTree.SubElement(suite, "testcase", classname=f"mesh.ci.{step.name}", name=name)
            if failure:
                node = ElementTree.SubElement(case, "failure", message=failure.splitlines()[0][:200])
                node.text = failure
        if step.details:
            ElementTree.SubElement(suite, "system-out").text = "\n".join(step.details)
    ElementTree.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(suites, encoding="unicode") + "\n"
    )


def write_reports(result: CiResult, out: Path) -> tuple[Path, Path]:
    """Write `report.md` and `junit.xml` into `out`; their paths."""
    out.mkdir(parents=True, exist_ok=True)
    md, xml = out / MARKDOWN, out / JUNIT
    md.write_text(markdown(result))
    xml.write_text(junit(result))
    return md, xml


def _inline(text: str) -> str:
    return text.replace("\n", " ")
