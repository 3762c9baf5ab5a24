"""Test helpers that write access agreement files into a private copy of the mesh."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from spec_edits import spec_path, write_later

from mesh_assets.product.agreement import AccessAgreement
from mesh_assets.product.agreement_files import LoadedAgreement
from mesh_assets.product.spec import DataProductSpec

REQUESTED_AT = "2026-11-02T09:00:00Z"


def agreement(
    consumer: str,
    kind: str = "product",
    *,
    major: int = 1,
    approval: str = "approved",
    by: str = "ana.lopez@example.com",
    **fields: Any,
) -> dict[str, Any]:
    """An agreement as a mapping: approved by `by` (unless `approval` says otherwise), purpose filled in."""
    data: dict[str, Any] = {
        "consumer": {"kind": kind, "id": consumer},
        "major": major,
        "purpose": "Lifetime revenue per customer for account reviews.",
        "purpose_category": "data_product" if kind == "product" else "reporting",
        "requested_by": "lea.dubois@example.com",
        "requested_at": REQUESTED_AT,
        "approval": approval,
    }
    action = {"approved": "approve", "rejected": "reject", "revoked": "approve"}.get(approval)
    if action:
        data["decisions"] = [{"action": action, "by": by, "at": "2026-11-03T10:00:00Z", "reason": "Fine."}]
    if approval == "revoked":
        data["decisions"].append(
            {"action": "revoke", "by": by, "at": "2026-11-20T10:00:00Z", "reason": "Done."}
        )
    data.update(fields)
    return data


def write_agreement(root: Path, producer: str, data: dict[str, Any], stem: str | None = None) -> Path:
    """Write an agreement file into the producer's `access/` folder; returns its path."""
    folder = spec_path(root, producer).parent / "access"
    folder.mkdir(exist_ok=True)
    consumer = data["consumer"]
    prefix = {"team": "team.", "service_principal": "sp."}.get(consumer["kind"], "")
    path = folder / f"{stem or prefix + consumer['id']}.yaml"
    write_later(path, yaml.safe_dump(data, sort_keys=False))
    return path


def with_agreements(producer: DataProductSpec, *consumers: str, **fields: Any) -> DataProductSpec:
    """A copy of `producer` holding an approved agreement for each consumer product, attached as the registry
    attaches agreement files."""
    spec = producer.model_copy()
    spec._agreements = tuple(
        LoadedAgreement(
            AccessAgreement.model_validate(agreement(key, **fields)), Path(f"{key}.yaml"), producer.key
        )
        for key in consumers
    )
    return spec
