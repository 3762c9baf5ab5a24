"""Infrastructure: where the mesh runs. Imports only `product`.

Public API: `environment` (`resolve()`: target, paths, the `warehouse` resource), `warehouse`
(`Warehouse`, `WarehouseSession`, the DuckDB and Snowflake backends), `reclaim` (run owners, dead runs'
claims reclaimed, the `mesh_reclaim_dead_runs` sensor), `deferral` (a branch environment's ports read from
prod), `instance_storage` (the local instance's SQLite event log, `MeshSqliteEventLogStorage`).
"""
