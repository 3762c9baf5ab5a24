"""Federated governance, computed centrally. Imports every wing below it (product … catalog).

Public API: `validate` (`mesh validate`), `grants` (Snowflake SQL of the access policy), `backdoors`
(SQL lint), `code_access` and `python_access` (what product code may read: an allowlist), `fitness` (the
six fitness functions), `scorecard` and `overview` (governance assets), `location` (`build_governance`:
the `mesh` code location).
"""
