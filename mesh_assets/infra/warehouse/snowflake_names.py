"""The names the mesh gives its Snowflake objects when nobody names them.

Its own module so the environment (which must not load the Snowflake backend at import time) and the
backend share one default.
"""

from __future__ import annotations

DEFAULT_DATABASE = "MESH"
"""The database holding every domain's schemas when `SNOWFLAKE_DATABASE` is unset (prod's; every other
environment's is `<DEFAULT_DATABASE>_<NAME>`)."""

DEFAULT_ROLE_PREFIX = "MESH_"
"""The prefix of every role the mesh creates (consumer and domain roles) when `MESH_ROLE_PREFIX` is unset."""
