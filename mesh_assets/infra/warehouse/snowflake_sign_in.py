"""How the platform signs in to Snowflake: one connection factory, on dagster-snowflake.

Every Snowflake caller — the `warehouse` resource, `mesh env` administration, grants, `mesh doctor` —
opens its connection through `snowflake_connection`, which builds dagster-snowflake's `SnowflakeResource`
and asks it for a connection. So the three ways teams sign in work everywhere at once:

- password: `SNOWFLAKE_PASSWORD`;
- key pair: `SNOWFLAKE_PRIVATE_KEY` (the PEM text, or its base64) or `SNOWFLAKE_PRIVATE_KEY_PATH`, with
  `SNOWFLAKE_PRIVATE_KEY_PASSPHRASE` if the key is encrypted (what service users need since Snowflake
  deprecated passwords for them);
- an authenticator: `SNOWFLAKE_AUTHENTICATOR` (`externalbrowser`, `oauth`, `programmatic_access_token`, ...).

Which variables are set is read once, when the environment is resolved (`sign_in_variables`); inside
Dagster the values themselves reach the resource only as `dg.EnvVar`s (`env_vars`), so definitions load
without secrets and no secret is ever a literal in config. dbt's profiles read the same variables.
Neither dagster-snowflake nor the connector is imported until a connection is opened.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import BaseModel, ConfigDict, Field

from mesh_assets.infra.errors import MeshEnvironmentError

if TYPE_CHECKING:
    from dagster_snowflake import SnowflakeResource
    from snowflake.connector import SnowflakeConnection

VARIABLES: dict[str, str] = {
    "account": "SNOWFLAKE_ACCOUNT",
    "user": "SNOWFLAKE_USER",
    "password": "SNOWFLAKE_PASSWORD",
    "private_key": "SNOWFLAKE_PRIVATE_KEY",
    "private_key_path": "SNOWFLAKE_PRIVATE_KEY_PATH",
    "private_key_passphrase": "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE",
    "authenticator": "SNOWFLAKE_AUTHENTICATOR",
    "role": "SNOWFLAKE_ROLE",
    "warehouse": "SNOWFLAKE_WAREHOUSE",
}
"""Each sign-in field and the environment variable it is read from (dbt's profiles read the same)."""

REQUIRED = ("account", "user")
SECRETS = ("password", "private_key", "private_key_passphrase")
"""Fields whose values are never printed, logged or written to a file."""


class SignInError(MeshEnvironmentError):
    """The sign-in variables cannot sign in: names the variables and the fix."""


class SnowflakeSignIn(BaseModel):
    """Who the platform is on Snowflake and how it proves it (values, for callers outside Dagster)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    account: str = Field(description="Account identifier, e.g. `myorg-myaccount`.")
    user: str = Field(description="User the platform signs in as (a service user in production).")
    password: str | None = Field(default=None, description="Password of `user`.")
    private_key: str | None = Field(default=None, description="PEM private key (or its base64), key pair.")
    private_key_path: str | None = Field(default=None, description="Path of a PEM private key, key pair.")
    private_key_passphrase: str | None = Field(default=None, description="Passphrase of an encrypted key.")
    authenticator: str | None = Field(default=None, description="Connector authenticator, e.g. `oauth`.")
    role: str | None = Field(default=None, description="Role to use; the user's default if unset.")
    warehouse: str | None = Field(default=None, description="Virtual warehouse that runs the queries.")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> SnowflakeSignIn:
        """The sign-in the `SNOWFLAKE_*` variables of `environ` describe; `SignInError` if they cannot."""
        values = {field: environ[name] for field, name in VARIABLES.items() if environ.get(name)}
        check_sign_in(values.keys())
        return cls(**values)

    def resource(self, database: str | None = None, query_tag: str | None = None) -> SnowflakeResource:
        """dagster-snowflake's resource for this sign-in, on `database` if given."""
        return snowflake_resource(self.model_dump(), database=database, query_tag=query_tag)

    def describe(self) -> str:
        """Who and how, without secrets: `MESH_SVC@myorg-acct by key pair as role MESH_ADMIN`."""
        role = f" as role {self.role}" if self.role else ""
        return f"{self.user}@{self.account} by {method_of(self.model_dump())}{role}"


def check_sign_in(present: Any) -> None:
    """Refuse a set of present fields that cannot sign in, naming the variables to set."""
    present = set(present)
    missing = [VARIABLES[f] for f in REQUIRED if f not in present]
    if missing:
        raise SignInError(f"Snowflake sign-in needs {', '.join(missing)}: set it in the environment")
    if not present & {"password", "private_key", "private_key_path", "authenticator"}:
        raise SignInError(
            "Snowflake sign-in needs a secret: set SNOWFLAKE_PASSWORD, a key pair (SNOWFLAKE_PRIVATE_KEY or "
            "SNOWFLAKE_PRIVATE_KEY_PATH, with SNOWFLAKE_PRIVATE_KEY_PASSPHRASE if encrypted) or "
            "SNOWFLAKE_AUTHENTICATOR"
        )
    if {"private_key", "private_key_path"} <= present:
        raise SignInError("set SNOWFLAKE_PRIVATE_KEY or SNOWFLAKE_PRIVATE_KEY_PATH, not both")
    if "password" in present and present & {"private_key", "private_key_path"}:
        # dagster-snowflake refuses two secrets; say which to drop instead of its generic message.
        raise SignInError("set SNOWFLAKE_PASSWORD or a key pair, not both: unset SNOWFLAKE_PASSWORD")


def method_of(fields: Mapping[str, Any]) -> str:
    """`password`, `key pair` or `authenticator <name>`: how these fields sign in."""
    if fields.get("private_key") or fields.get("private_key_path"):
        return "key pair"
    if fields.get("authenticator"):
        return f"authenticator {fields['authenticator']}"
    return "password"


def sign_in_variables(environ: Mapping[str, str]) -> frozenset[str]:
    """The sign-in fields whose variable is set in `environ` (read once, at environment resolution)."""
    return frozenset(field for field, name in VARIABLES.items() if environ.get(name))


def env_vars(present: frozenset[str]) -> dict[str, dg.EnvVar]:
    """A resource's sign-in config: one `dg.EnvVar` per present field (resolved when the run starts)."""
    return {field: dg.EnvVar(VARIABLES[field]) for field in sorted(present)}


def snowflake_resource(
    fields: Mapping[str, Any], database: str | None = None, query_tag: str | None = None
) -> SnowflakeResource:
    """dagster-snowflake's `SnowflakeResource` for sign-in `fields` (values, as resolved by Dagster)."""
    from dagster_snowflake import SnowflakeResource

    config = {key: value for key, value in fields.items() if key in VARIABLES and value}
    if "private_key_passphrase" in config:
        config["private_key_password"] = config.pop("private_key_passphrase")
    extra: dict[str, Any] = {}
    if query_tag:
        extra["session_parameters"] = {"QUERY_TAG": query_tag}
    return SnowflakeResource(
        **config,
        database=database,
        additional_snowflake_connection_args=extra or None,
    )


@contextmanager
def snowflake_connection(
    sign_in: SnowflakeSignIn | Mapping[str, Any], database: str | None = None, query_tag: str | None = "mesh"
) -> Iterator[SnowflakeConnection]:
    """A connection signed in as `sign_in` (the one way the platform connects), closed afterwards."""
    fields = sign_in.model_dump() if isinstance(sign_in, SnowflakeSignIn) else sign_in
    resource = snowflake_resource(fields, database=database, query_tag=query_tag)
    with resource.get_connection() as connection:
        try:
            yield connection
        except BaseException:
            # dagster-snowflake closes the connection only when the block succeeds.
            connection.close()
            raise
