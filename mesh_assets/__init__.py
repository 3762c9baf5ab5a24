"""mesh: governed data products on Dagster.

The package is laid out by the platform's planes, one wing per concern; a wing imports only the wings
below it (checked by `tests/test_layout.py`), from the bottom up:

- `product`     the metamodel: spec models, registry, versions, addresses, lifecycle, access policies, errors
- `infra`       infrastructure: the environment, warehouse backends (DuckDB, Snowflake), run ownership
- `build`       spec → Dagster definitions and data: code location, builders, ports, checks, publish, runner
- `contracts`   ODCS/ODPS export and import, contract diff, impact
- `observe`     SLIs, error budgets, alerts and their sensors
- `catalog`     the static catalog site and its asset
- `govern`      access grants, back doors, fitness, scorecard, overview, validation, the `mesh` location
- `selfservice` scaffolding, dbt onboarding, example data
- `cli`         the `mesh` command, one module per verb
"""
