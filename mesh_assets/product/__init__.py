"""The product model: what a data product is, and the mesh of them (the bottom wing: imports no other).

Public API: `spec` (the pydantic models of `dataproduct.yaml`), `registry` (`load_registry`, `Registry`,
`Product`, `topological_order`), `errors` (`SpecIssue`, `MeshSpecError`), `versions` (port versions and
consumers' ranges), `addressing` (asset keys and warehouse relations of ports and internals), `lifecycle`
(sunsets, overdue ports), `access` (who may read which port), `agreement` and `agreement_files` (access
agreements: the model, its states, the files), `access_rules`, `directory` and `access_evaluation` (the
access policy as code, evaluated and explained), `freshness` (a port's freshness state, as Dagster's
evaluator judges it), `sql_types` (reading SQL type text), `bindings` (the formats a port is served in
besides its table).
"""
