"""`mesh validate` on access agreements: the files are code, so a hand edit is judged like a command.

An agreement file can be written by hand and merged; what makes it valid is not who typed it but that
its decisions satisfy the policy. So validation re-checks every recorded decision against the policy
as `mesh access approve` would (entitled, not the requester, a second approver on restricted data), and
the agreement against the port it names. It also reads the mesh policy and the directory files.
"""

from __future__ import annotations

from pathlib import Path

from mesh_assets.govern.access_requests import context_for
from mesh_assets.product import access_evaluation as evaluation
from mesh_assets.product.agreement import Action, Approval, ConsumerKind
from mesh_assets.product.errors import SpecIssue
from mesh_assets.product.registry import Registry


def agreement_issues(root: Path, registry: Registry) -> list[SpecIssue]:
    """Problems of the mesh policy, the directory and every agreement, each with file, field and fix."""
    context, issues = context_for(root, registry)
    agreements = registry.agreements  # reads the deferred files of people, teams and tools
    issues += registry.agreement_issues
    for loaded in agreements:
        producer = registry.products[loaded.producer]
        agreement, path = loaded.agreement, loaded.path
        majors = {p.major for p in producer.spec.output_ports}
        if agreement.major not in majors:
            issues.append(
                SpecIssue(
                    path,
                    "major",
                    f"{producer.key} serves no port v{agreement.major} "
                    f"(it serves {', '.join(f'v{m}' for m in sorted(majors))})",
                    "revoke the agreement, or ask again for a served version",
                    severity="error" if agreement.approval == Approval.REQUESTED else "warning",
                )
            )
        consumer = agreement.consumer
        known = consumer.id in registry.products or consumer.id in registry.unreadable
        if consumer.kind == ConsumerKind.PRODUCT and not known:
            issues.append(
                SpecIssue(
                    path,
                    "consumer.id",
                    f"{consumer.id} is no product of the mesh",
                    "revoke the stale agreement (`mesh access revoke`)",
                    severity="warning",
                )
            )
        before = len(issues)
        for index, decision in enumerate(agreement.decisions):
            if decision.action != Action.APPROVE or decision.by == evaluation.POLICY:
                continue
            earlier = agreement.model_copy(update={"decisions": agreement.decisions[:index]})
            refusal = evaluation.check_decider(earlier, producer.spec, decision.by, Action.APPROVE, context)
            if refusal:
                issues.append(
                    SpecIssue(path, f"decisions[{index}].by", refusal, "have an entitled person approve it")
                )
        policy_approved = any(d.by == evaluation.POLICY for d in agreement.decisions)
        if agreement.approval == Approval.APPROVED and policy_approved:
            verdict = evaluation.evaluate(agreement, producer.spec, context, agreement.requested_at.date())
            if verdict.outcome != "auto_approved":
                issues.append(
                    SpecIssue(
                        path,
                        "decisions",
                        f"recorded as approved by policy, but the policy says: {verdict.explain()}",
                        f"have {', '.join(verdict.deciders) or 'the owner'} approve it: mesh access approve",
                    )
                )
        elif (
            agreement.approval == Approval.APPROVED
            and len(issues) == before  # a refused approver is reported already; one issue per cause
            and not evaluation.approvals_complete(agreement, producer.spec, context)
        ):
            issues.append(
                SpecIssue(
                    path,
                    "approval",
                    f"approved without the approvals {producer.key} needs "
                    f"({producer.spec.classification.value}: an owner"
                    + (" and a second approver" if evaluation.second_deciders(producer.spec, context) else "")
                    + ")",
                    "set approval back to requested and run `mesh access approve`",
                )
            )
        if agreement.overdue(registry.today):
            issues.append(
                SpecIssue(
                    path,
                    "reassess_by",
                    f"past its reassess-by date {agreement.reassess_by or agreement.end}: still in force "
                    "(time alone never breaks a product's input), but unconfirmed",
                    f"confirm it: `mesh access approve {loaded.id} --by <owner> --reason ...`, or revoke it",
                    severity="warning",
                )
            )
    return issues
