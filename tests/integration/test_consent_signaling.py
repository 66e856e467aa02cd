"""The kiosk's consent messages through the real signaling consumer, Redis channel layer
and PostgreSQL: the grant with the text's hash, an outdated text asks again, and the
Withdraw button stops the worker's session at once and is audited."""

import pytest
from channels.db import database_sync_to_async

from consent import audit, selectors, services
from consent.models import AuditEvent, ConsentGrant, Purpose
from tests.unit.test_signaling_consumer import (  # noqa: F401 - fixtures
    close_thread_connections,
    connect,
    expect,
    expect_error,
    kiosks,
    live_call,
    redis_layer,
    send,
    session_row,
)

pytestmark = [
    pytest.mark.usefixtures("kiosks"),
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(90),
]


@pytest.fixture(autouse=True)
def shipped_texts(db):
    """The consent texts of migration 0002 (a transactional test's flush removed them)."""
    services.ensure_shipped_texts()


@database_sync_to_async
def session_actions(session_id: str) -> list[str]:
    audit.sweep_outbox()
    return list(
        AuditEvent.objects.filter(session_id=session_id)
        .order_by("seq")
        .values_list("action", flat=True)
    )


@database_sync_to_async
def grant_of(session_id: str) -> ConsentGrant:
    return ConsentGrant.objects.get(session_id=session_id)


async def test_consent_with_the_texts_hash_is_granted_and_withdraw_stops_the_worker():
    text = await database_sync_to_async(selectors.current_text)(Purpose.FACE_PROCESSING, "en")
    comm, _ = await connect()
    await send(comm, type="consent", given=True, language="en", text_sha256=text.sha256)
    session_id = (await expect(comm, "consent_ok"))["session_id"]
    grant = await grant_of(session_id)
    assert grant.text_versions[0]["sha256"] == text.sha256 and grant.withdrawn_at is None
    await comm.disconnect()

    comm, _ = await connect()
    session_id, worker = await live_call(comm)
    await send(comm, type="withdraw")
    bye = await worker.control_message()
    assert bye == {"type": "session.bye", "session_id": session_id, "reason": "withdrawn"}
    assert (await expect(comm, "state"))["state"] == "stopped"
    assert (await expect(comm, "ended"))["reason"] == "withdrawn"
    row = await session_row(session_id)
    assert row.end_reason == "withdrawn"
    grant = await grant_of(session_id)
    assert grant.withdrawn_at is not None and grant.withdrawal_method == "withdraw_button"
    assert await session_actions(session_id) == [
        "consent.granted",
        "consent.withdrawn",
        "session.ended",
    ]
    await comm.disconnect()


async def test_an_outdated_text_is_refused_and_nothing_is_stored():
    comm, _ = await connect()
    await send(comm, type="consent", given=True, language="zh-hans", text_sha256="0" * 64)
    await expect_error(comm, "consent_outdated")
    assert not await database_sync_to_async(ConsentGrant.objects.exists)()
    # The page asks again with the current text on the same connection.
    text = await database_sync_to_async(selectors.current_text)(Purpose.FACE_PROCESSING, "zh-hans")
    await send(comm, type="consent", given=True, language="zh-hans", text_sha256=text.sha256)
    assert (await expect(comm, "consent_ok"))["given"] is True
    await comm.disconnect()


async def test_stop_and_closing_the_page_end_the_consent_too():
    comm, _ = await connect()
    stopped, worker = await live_call(comm)
    await send(comm, type="bye")
    await worker.control_message()
    await expect(comm, "state")
    await comm.disconnect()
    comm, _ = await connect()
    left, _worker = await live_call(comm)
    await comm.disconnect()
    assert (await grant_of(stopped)).withdrawal_method == "stop_button"
    assert (await grant_of(left)).withdrawal_method == "session_closed"
    assert "consent.ended_with_session" in await session_actions(left)


async def test_withdraw_before_any_session_is_harmless():
    comm, _ = await connect()
    await send(comm, type="withdraw")
    message = await expect(comm, "state")
    assert message["state"] == "stopped"
    await comm.disconnect()
