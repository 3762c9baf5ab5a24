"""`mesh doctor`: checks the target the way the platform will use it, one result per check.

Public API: `report` (`Status`, `CheckResult`, `exit_code`), `duckdb` (`duckdb_checks`), `instance`
(`instance_checks`), `snowflake` (`snowflake_checks`). Every check returns a `CheckResult` that passes only
what it proved; a question the target cannot answer (an emulator, a missing daemon) is `cannot-tell` with
the reason, never `pass`. Nothing here connects, opens a file or imports a driver at import time.
"""
