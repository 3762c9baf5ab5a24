"""Building: what turns a spec into Dagster definitions and data. Imports `product` and `infra`.

Public API: `location` (`build_domain`: a domain's code location), `builders` (source landing, SQL,
Python, dbt), `ports` (port asset specs), `checks` and `expectations` (contract rules as asset checks),
`publish` (write-audit-publish), `isolation` (what product SQL may read, as the engine binds it),
`profile`, `baseline` and `monitors` (learned anomaly monitors on the staged batch), `automation`
(refresh once per cascade), `dbt_contracts` (dbt YAML from specs), `dbt_outcomes` (seeds read as
sources, why dbt did not build a node), `column_lineage` (column lineage types; read from SQL and dbt by
`lineage_models`/`lineage_sql`, kept by `lineage_cache.mesh_lineage`), `bindings` (a port's Iceberg,
Parquet and share bindings written after its publish, and their parity; `binding_files`,
`binding_iceberg`, `binding_share`), `runner` (`run_mesh`: `mesh run`).
"""
