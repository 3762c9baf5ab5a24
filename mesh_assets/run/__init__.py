"""Running: the local orchestrator behind `mesh run`. Imports the wings below it.

Public API: `runner` (`run_mesh`: every domain's stages in dependency order on one Dagster instance, and
what each product did), `stages` (a domain's steps in the order write-audit-publish needs), `results`
(`ProductResult` and `RunStatus`, the one result type of a build, and the `--summary-json` file it is
written to and read back from), `events` (the typed events `run_mesh` reports its progress with).
"""
