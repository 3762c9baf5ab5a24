"""Assets: what turns a spec into Dagster definitions and data. Imports `product`, `infra` and `quality`.

Public API: `location` (`build_domain`: a domain's code location), `builders` (source landing, SQL,
Python, dbt), `ports` (port asset specs), `publish` (write-audit-publish), `automation` (refresh once per
cascade), `dbt_contracts` (dbt YAML from specs), `dbt_outcomes` (seeds read as sources, why dbt did not
build a node), `column_lineage` (column lineage types; read from SQL and dbt by
`lineage_models`/`lineage_sql`, kept by `lineage_cache.mesh_lineage`), `bindings` (a port's Iceberg,
Parquet and share bindings written after its publish, and their parity; `binding_files`,
`binding_iceberg`, `binding_share`).
"""
