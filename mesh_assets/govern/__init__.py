"""Federated governance, computed centrally. Imports every wing below it (product … catalog).

Public API: `validate` (`mesh validate`), `grants` (Snowflake SQL of the access policy), `backdoors`
(SQL lint), `code_access` and `python_access` (what product code may read: an allowlist), `fitness` (the
six fitness functions), `scorecard` and `overview` (governance assets), `access_requests`,
`access_audit`, `access_report`, `access_lint`, `access_grants`, `access_sync` and `access_reconcile`
(access agreements asked for, decided, audited, judged and compiled to grants kept in step),
`pii_lineage` (PII followed through column lineage), `location` (`build_governance`: the `mesh` code
location).
"""
