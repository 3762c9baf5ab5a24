"""A port's version bump checked against what changed in its contract (semver, with 0.x's own rule)."""

from __future__ import annotations

from mesh_assets.contracts.diff_rules import NO_BUMP_RULES, PATCH_RULES, Change, Rule
from mesh_assets.product.spec import OutputPort
from mesh_assets.product.versions import Semver


def bump_changes(
    key: str,
    before: OutputPort,
    after: OutputPort,
    contract: list[Change],
) -> list[Change]:
    """Check the version bump of a port changed in place against what changed."""
    port = f"v{after.major}"
    old, new = Semver.parse(before.version), Semver.parse(after.version)
    if new < old:
        return [
            Change(
                key,
                port,
                None,
                Rule.VERSION_WENT_BACKWARDS,
                True,
                f"version {before.version} -> {after.version} goes backwards: consumers' ranges and "
                "code versions assume it only grows",
                fix=f"use a version above {before.version}",
            )
        ]
    relevant = [c for c in contract if c.rule not in NO_BUMP_RULES and not c.blocking]
    if not relevant or any(c.blocking for c in contract):
        return []  # nothing to bump for, or the fix is a new major anyway
    rules = ", ".join(dict.fromkeys(str(c.rule) for c in relevant))
    # Below 1.0.0 a consumer's `^0.m` range excludes the next minor, so compatible changes take a patch.
    minor_needed = after.major > 0 and any(c.breaking or c.rule not in PATCH_RULES for c in relevant)
    suggestion = (
        Semver(old.major, old.minor + 1, 0) if minor_needed else Semver(old.major, old.minor, old.patch + 1)
    )
    if new == old:
        return [
            Change(
                key,
                port,
                None,
                Rule.VERSION_NOT_BUMPED,
                False,
                f"the contract changed ({rules}) but the version is still {before.version}",
                warning=True,
                fix=f"bump it to {suggestion}",
            )
        ]
    if minor_needed and new.minor == old.minor:
        return [
            Change(
                key,
                port,
                None,
                Rule.VERSION_BUMP_TOO_SMALL,
                False,
                f"{rules} need a minor bump, not a patch ({before.version} -> {after.version})",
                warning=True,
                fix=f"bump it to {suggestion}",
            )
        ]
    return []
