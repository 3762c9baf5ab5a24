"""The `mesh` command line (top wing): `app` holds the core verbs, one module per other verb.

Public API: `app.app` (the typer application), `app.main` (console entry point).
"""
