"""The audit trail on real PostgreSQL: outbox in the caller's transaction, the relay, the
chain, duplicate delivery, the append-only triggers and bad input."""

import threading
import uuid

import pytest
from django.db import DatabaseError, connection, transaction

from consent import audit, chain
from consent.models import AuditChainHead, AuditEvent, AuditOutbox

pytestmark = pytest.mark.integration


def chain_rows() -> list[dict]:
    return [e.as_chain_row() for e in AuditEvent.objects.order_by("seq")]


def assert_chain_verifies() -> None:
    walk = chain.verify_rows(chain_rows())
    assert walk.first_break is None, walk.first_break
    assert walk.last_seq == AuditChainHead.objects.get(pk=1).seq


@pytest.mark.django_db
def test_record_event_is_relayed_after_commit(
    django_capture_on_commit_callbacks, django_user_model
):
    user = django_user_model.objects.create_user("operator1")
    session_id = uuid.uuid4()
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            first = audit.record_event(
                user, "switch.off", "switch:global", details={"reason": "maintenance"}
            )
            second = audit.record_event(
                "kiosk:demo", "session.started", "kiosk:demo", session=session_id
            )
            # Inside the transaction only the outbox holds them.
            assert AuditOutbox.objects.count() == 2
            assert not AuditEvent.objects.exists()
    events = list(AuditEvent.objects.order_by("seq"))
    assert [e.event_id for e in events] == [first, second]
    assert (events[0].actor_kind, events[0].actor) == ("user", "operator1")
    assert events[0].details == {"reason": "maintenance"}
    assert (events[1].actor_kind, events[1].actor, events[1].session_id) == (
        "kiosk",
        "demo",
        session_id,
    )
    assert not AuditOutbox.objects.exists()
    assert events[0].prev_hash == chain.GENESIS_HASH
    assert events[1].prev_hash == events[0].hash
    assert_chain_verifies()


@pytest.mark.django_db
def test_rolled_back_change_leaves_no_event(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                audit.record_event("system:test", "switch.off", "switch:global")
                raise RuntimeError("the change failed")
    assert not AuditOutbox.objects.exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_sweep_relays_what_the_task_missed():
    # No on_commit callbacks run inside the test transaction: the events wait in the outbox.
    ids = [audit.record_event("system:test", "tick", details={"n": i}) for i in range(7)]
    assert AuditOutbox.objects.count() == 7
    moved = audit.sweep_outbox(limit=3)
    assert moved == 7
    assert list(AuditEvent.objects.order_by("seq").values_list("event_id", flat=True)) == ids
    assert not AuditOutbox.objects.exists()
    assert_chain_verifies()


@pytest.mark.django_db
def test_duplicate_delivery_is_stored_once():
    event = audit.make_event(
        "system:media-engine", "session.started", "kiosk:demo", details={"engine": "label"}
    )
    wire = audit.event_to_dict(event)
    first = audit.ingest_event_dicts([wire, wire])
    again = audit.ingest_event_dicts([wire])
    assert (first.stored, first.duplicates) == (1, 1)
    assert (again.stored, again.duplicates) == (0, 1)
    assert AuditEvent.objects.filter(event_id=event.event_id).count() == 1
    # Relaying an outbox id twice is harmless too.
    eid = audit.record_event("system:test", "x")
    assert audit.relay_outbox([eid]).stored == 1
    assert audit.relay_outbox([eid]).stored == 0
    assert AuditEvent.objects.filter(event_id=eid).count() == 1
    assert_chain_verifies()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"actor": 42, "action": "x"}, "actor"),
        ({"actor": "robot:r2", "action": "x"}, "actor kind"),
        ({"actor": "system", "action": ""}, "action"),
        ({"actor": "system", "action": "x", "details": ["not", "an", "object"]}, "JSON object"),
        ({"actor": "system", "action": "x", "details": {"frame": [1, 2, 3]}}, "never audited"),
        (
            {"actor": "system", "action": "x", "details": {"face": {"landmarks": [[0, 0]]}}},
            "never audited",
        ),
        ({"actor": "system", "action": "x", "details": {"raw": b"\x00\x01"}}, "not JSON"),
        ({"actor": "system", "action": "x", "details": {"v": float("nan")}}, "not plain JSON"),
        ({"actor": "system", "action": "x", "details": {"big": "x" * 9000}}, "larger"),
        ({"actor": "system", "action": "x", "session": "not-a-uuid"}, "session"),
    ],
)
def test_bad_input_is_refused_before_anything_is_written(kwargs, message):
    with pytest.raises(audit.InvalidAuditEvent, match=message):
        audit.record_event(**kwargs)
    assert not AuditOutbox.objects.exists()


@pytest.mark.django_db
def test_bad_media_event_is_kept_as_a_rejection():
    good = audit.event_to_dict(audit.make_event("system:media", "session.ended"))
    bad = {
        "event_id": str(uuid.uuid4()),
        "occurred_at": "yesterday",
        "actor": "system:m",
        "action": "session.ended",
    }
    result = audit.ingest_event_dicts([good, bad, "garbage"])
    assert result.stored == 3
    actions = list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))
    assert actions == ["session.ended", "audit.event_rejected", "audit.event_rejected"]
    rejected = AuditEvent.objects.filter(action="audit.event_rejected").first()
    assert "ISO 8601" in rejected.details["reason"]
    assert rejected.details["event_id"] == bad["event_id"]
    # A redelivery of the same bad event is not stored twice.
    assert audit.ingest_event_dicts([bad]).duplicates == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE consent_auditevent SET action = 'forged'",
        "DELETE FROM consent_auditevent",
        "TRUNCATE consent_auditevent",
        "UPDATE consent_auditcheckpoint SET seq = 0",
        "TRUNCATE consent_auditanchor",
    ],
)
def test_postgresql_refuses_changes_to_the_audit_tables(statement):
    if connection.vendor != "postgresql":
        pytest.skip("the triggers are PostgreSQL's")
    audit.append_events([audit.make_event("system:test", "x")])
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO consent_auditcheckpoint (seq, hash, created_at, signature) "
            "VALUES (1, 'h', now(), 's')"
        )
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    assert AuditEvent.objects.filter(action="x").count() == 1


@pytest.mark.django_db
def test_prune_refuses_without_an_anchor():
    if connection.vendor != "postgresql":
        pytest.skip("the guarded delete is PostgreSQL's")
    audit.append_events([audit.make_event("system:test", "x") for _ in range(3)])
    with pytest.raises(DatabaseError, match="no retention anchor"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT consent_audit_prune(3)")
    # Setting the flag by hand does not open the door either: no anchor covers the rows.
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('consent.audit_prune', 'on', true)")
            cursor.execute("DELETE FROM consent_auditevent")
    assert AuditEvent.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_concurrent_appenders_never_fork_the_chain():
    errors: list[BaseException] = []

    def producer(n: int) -> None:
        try:
            for i in range(10):
                audit.append_events(
                    [
                        audit.make_event(f"system:p{n}", "tick", details={"i": i, "j": j})
                        for j in range(5)
                    ]
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert AuditEvent.objects.count() == 4 * 10 * 5
    assert_chain_verifies()


@pytest.mark.django_db
def test_awkward_text_survives_the_bulk_insert_exactly():
    awkward = "tab\there\nnew line\\back slash\r é 中文 \\N \\\\t"
    event = audit.make_event(
        "system:test\tx", "odd", "target\nline", details={"s": awkward, "list": [awkward, 1.5]}
    )
    audit.append_events([event, audit.make_event("system:test", "after")])
    stored = AuditEvent.objects.get(event_id=event.event_id)
    assert stored.details == {"s": awkward, "list": [awkward, 1.5]}
    assert (stored.actor, stored.target) == ("test\tx", "target\nline")
    assert_chain_verifies()
