"""Fitness functions: the six characteristics of a data product, tested for every product of the mesh.

Each characteristic is a pure function of the registry (the specs) and, optionally, of facts the platform
observed (`Facts`: the built catalog, and what the Dagster instance recorded for each port). It returns a
`Verdict`: pass or fail, and the reason in words a product team can act on.

- **self-describing**: purpose, usage and limitations say something; every column's description says
  more than its name; every served port shows example values (a column's own `examples`, or those of the
  same column of the input port it comes from).
- **addressable**: every port has a unique, stable URI (`mesh://<domain>/<product>/v<major>`) and table,
  derived from where the spec lives.
- **discoverable**: at least `MIN_TAGS` key words; with catalog facts, the product is in the catalog and
  each key word finds it there.
- **secure**: an access policy (at least one reader role); deny by default (no catch-all role, nothing
  both allowed and denied); PII protected (classified confidential or above, every column that looks
  personal marked `pii`, PII read in clear text from an input still marked); a Python product whose code
  may reach files or connections (`transformation.external_access`) is red, not gating, naming why.
- **trustworthy**: SLOs declared; blocking contract checks (schema, key, row count) on every served port;
  with instance facts, no SLO breached now; no input port overdue for retirement (past its sunset: red,
  but not gating, since time alone never fails the mesh: moving to the replacement is the consumer's
  code change).
- **interoperable**: standard types (`*_at`/`*_ts` timestamp, `*_date` date, event time a date or
  timestamp); business keys (key columns not nullable; a column named like another product's business
  key has its type); every served port's contract validates against the ODCS JSON Schema; the verdict
  counts the bindings (Iceberg, Parquet, share) each port is served in beyond its table.

`MANDATORY` is platform configuration: a product failing one of those fails `mesh fitness` (exit 1). The
others are reported, red when failing, but do not gate: the hard floor of self-description (purpose,
usage, limitations, a description per column) is already enforced by spec validation, and the catalog is
built after the fact.

Modules: `verdicts` (the characteristics, `Verdict`, `Result`), `facts` (what the platform observed, and
the mesh-wide index), `characteristics` (the six fitness functions), `contract_check` (the ODCS JSON
Schema check), `evaluation` (`evaluate` and the `Scorecard`, rendered as JSON, markdown and HTML from the
catalog's `scorecard.html` template).

Public API: `evaluate`, `evaluate_product`, `Scorecard`, `ProductFitness`, `Facts`, `CatalogFacts`,
`NO_FACTS`, `MeshIndex`, `Characteristic`, `MANDATORY`, `CHARACTERISTICS`, `Verdict`, `Result`, the six
functions, `contract_errors`, `odcs_errors`, `odcs_validations`.
"""

from mesh_assets.govern.fitness.characteristics import (
    CHARACTERISTICS,
    MIN_PURPOSE_CHARS,
    MIN_TAGS,
    PII_NAME,
    PLACEHOLDERS,
    SENSITIVE_ENOUGH_FOR_PII,
    addressable,
    discoverable,
    interoperable,
    secure,
    self_describing,
    trustworthy,
)
from mesh_assets.govern.fitness.contract_check import contract_errors, odcs_errors, odcs_validations
from mesh_assets.govern.fitness.evaluation import ProductFitness, Scorecard, evaluate, evaluate_product
from mesh_assets.govern.fitness.facts import NO_FACTS, CatalogFacts, Facts, MeshIndex, served_ports
from mesh_assets.govern.fitness.verdicts import MANDATORY, Characteristic, Result, Verdict

__all__ = [
    "CHARACTERISTICS",
    "MANDATORY",
    "MIN_PURPOSE_CHARS",
    "MIN_TAGS",
    "NO_FACTS",
    "PII_NAME",
    "PLACEHOLDERS",
    "SENSITIVE_ENOUGH_FOR_PII",
    "CatalogFacts",
    "Characteristic",
    "Facts",
    "MeshIndex",
    "ProductFitness",
    "Result",
    "Scorecard",
    "Verdict",
    "addressable",
    "contract_errors",
    "discoverable",
    "evaluate",
    "evaluate_product",
    "interoperable",
    "odcs_errors",
    "odcs_validations",
    "secure",
    "self_describing",
    "served_ports",
    "trustworthy",
]
