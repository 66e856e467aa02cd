"""A media worker's thread keeps its database connection between offers; after PostgreSQL
drops it (a restart), the next offer must get a new one, not "the connection is closed"
(``media_engine.worker.with_fresh_connections``; found by test_failover's restart test)."""

from __future__ import annotations

import threading

import psycopg
import pytest
from django.db import connection, connections
from django.db.utils import Error as DatabaseError

from media_engine.worker import with_fresh_connections

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def query() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone()[0]


def in_one_thread(*steps):
    """Run ``steps`` one after the other in one thread (its own connection), as a worker's
    pool thread serves offer after offer; returns each step's result or the error it raised."""
    results: list = []

    def run() -> None:
        for step in steps:
            try:
                results.append(step())
            except DatabaseError as exc:
                results.append(exc)
        connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    return results


def dropped_by_the_server() -> str:
    """PostgreSQL ends this thread's connection, as a restart does."""
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    settings = connection.settings_dict
    with psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        dbname=settings["NAME"],
        autocommit=True,
    ) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    return "dropped"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL")
def test_a_dropped_connection_is_replaced_for_the_next_offer():
    plain = in_one_thread(query, dropped_by_the_server, query)
    assert plain[:2] == [1, "dropped"]
    assert isinstance(plain[2], DatabaseError), "without the check the stale one is used"

    fresh = in_one_thread(
        lambda: with_fresh_connections(query),
        dropped_by_the_server,
        lambda: with_fresh_connections(query),
    )
    assert fresh == [1, "dropped", 1]
