"""Quality: the engine that judges a staged batch. Imports `product` and `infra`.

Public API: `rules` (the contract's rules, each with its SQL and verdict), `quality_rules` (one scan of the
candidate answers every aggregate rule), `expectations` and `expectations_sql` (great-expectations
expectations, as exact SQL where one exists), `checks` (the rules as Dagster asset checks), `profile`,
`baseline` and `monitors` (learned anomaly monitors on the staged batch against past publishes).
"""
