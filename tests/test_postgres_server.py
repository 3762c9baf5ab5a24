"""The throwaway PostgreSQL server of the production-instance tests (`postgres_server.py`): it runs, it
authenticates like production, it is gone afterwards even when the test fails, and without binaries it
says how to install them, skipping locally and failing on CI.
"""

from __future__ import annotations

from contextlib import closing
from pathlib import Path

import postgres_server as pg
import pytest


class Boom(Exception):
    """A test body failing inside the server's context."""


def test_the_server_takes_a_password_login_over_tcp_and_is_gone_after_a_failing_body() -> None:
    seen: dict[str, object] = {}
    with pytest.raises(Boom), pg.postgres_server() as running:
        with closing(running.connect()) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT current_user, current_database(), inet_server_addr()::text")
            seen["who"] = cursor.fetchone()
        seen["socket"] = running.socket_dir
        seen["pid_file"] = running.socket_dir.parent / "data" / "postmaster.pid"
        assert Path(str(seen["pid_file"])).exists()
        raise Boom
    assert seen["who"] == ("dagster", "dagster", "127.0.0.1/32")
    # Stopped and deleted although the body raised.
    assert not Path(str(seen["socket"])).parent.exists()


def test_the_login_needs_the_password() -> None:
    import psycopg2

    refused = pytest.raises(psycopg2.OperationalError, match="password authentication failed")
    with pg.postgres_server() as running, refused:
        psycopg2.connect(
            host=running.host, port=running.port, user=running.user, password="wrong", dbname=running.database
        )


def test_without_binaries_it_skips_naming_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg, "find_bin_dir", lambda: None)
    monkeypatch.delenv(pg.REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y postgresql"), pg.postgres_server():
        pass


def test_without_binaries_on_ci_it_fails_instead_of_skipping(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg, "find_bin_dir", lambda: None)
    monkeypatch.setenv(pg.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y postgresql"), pg.postgres_server():
        pass
