"""What `mesh access list` and `mesh access audit` show: agreements as rows, and every audit trail checked."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from mesh_assets.govern import access_audit
from mesh_assets.product.agreement import ACCESS_FOLDER, AUDIT_FILE
from mesh_assets.product.registry import Registry


def rows(
    registry: Registry,
    today: date,
    *,
    product: str | None = None,
    consumer: str | None = None,
    within: timedelta | None = None,
) -> list[dict]:
    """Every agreement as a flat record, the decision apart from the state, filtered as asked.

    `within`: only agreements in force whose end (people, service principals) or reassessment (products,
    teams) falls within that many days of `today`, or has already passed.
    """
    found = []
    for loaded in sorted(registry.agreements, key=lambda a: a.id):
        agreement = loaded.agreement
        if product and loaded.producer != product:
            continue
        if consumer and agreement.consumer.id != consumer:
            continue
        state = loaded.state(today)
        due = agreement.end if agreement.consumer.expires else (agreement.reassess_by or agreement.end)
        if within is not None and (
            state.value not in {"active", "approved"} or due is None or due > today + within
        ):
            continue
        found.append(
            {
                "id": loaded.id,
                "file": str(loaded.path),
                "provider": loaded.producer,
                "major": agreement.major,
                "consumer_kind": agreement.consumer.kind.value,
                "consumer": agreement.consumer.id,
                "purpose": agreement.purpose,
                "purpose_category": agreement.purpose_category.value,
                "columns": agreement.columns,
                "pii_in_clear": agreement.pii_in_clear,
                "approval": agreement.approval.value,
                "approvers": agreement.approvers(),
                "state": state.value,
                "start": agreement.start.isoformat() if agreement.start else None,
                "end": agreement.end.isoformat() if agreement.end else None,
                "reassess_by": agreement.reassess_by.isoformat() if agreement.reassess_by else None,
                "overdue": agreement.overdue(today),
            }
        )
    return found


def audit_logs(root: Path, data_dir: Path | None = None) -> list[access_audit.Verification]:
    """Every product's audit trail, and the environment's grant log when there is one, verified."""
    paths = sorted((root / "domains").glob(f"*/products/*/{ACCESS_FOLDER}/{AUDIT_FILE}"))
    if data_dir is not None and (data_dir / access_audit.GRANTS_LOG).exists():
        paths.append(data_dir / access_audit.GRANTS_LOG)
    return [access_audit.verify(path) for path in paths]
