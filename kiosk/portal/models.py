"""The customer-service portal: agents, the queue per service, calls and one-time links.

A ``PortalCall`` is one customer's call from joining the queue to its end. The queue is the
set of calls in ``waiting`` per service, oldest first: it lives in the database (a daphne
restart loses nothing) and changes are announced on the channel layer (``portal.queue``). The
customer's consent for the call is an ordinary ``ConsentGrant`` on the call's
``KioskSession`` (purpose ``agent_call``), so withdrawal, expiry, proofs and the audit trail
work as for every other consent.
"""

import uuid

from django.conf import settings
from django.db import models


class Service(models.TextChoices):
    ACCOUNTS = "accounts", "Accounts · 账户"
    CARDS = "cards", "Cards · 银行卡"


class CallStatus(models.TextChoices):
    WAITING = "waiting", "Waiting in the queue"
    ACCEPTED = "accepted", "Accepted by an agent, media connecting"
    ENDED = "ended", "Ended"


class AgentProfile(models.Model):
    """Which digital human an agent drives: an engine and a presenter or avatar identity.
    The identity's consent (the agent's own, for a presenter made from their face) is
    checked before each call."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="portal_agent"
    )
    display_name = models.CharField(max_length=100)
    engine = models.CharField(max_length=32, default="avatar")
    identity = models.ForeignKey(
        "consent.Identity", null=True, blank=True, on_delete=models.PROTECT, related_name="agents"
    )

    def __str__(self) -> str:
        return self.display_name


class PortalCall(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    service = models.CharField(max_length=32, choices=Service.choices)
    status = models.CharField(max_length=16, choices=CallStatus.choices, default="waiting")
    session = models.OneToOneField(
        "consent.KioskSession", on_delete=models.PROTECT, related_name="portal_call"
    )
    from_home = models.BooleanField(default=False)
    blur_customer = models.BooleanField(default=False)
    customer_channel = models.CharField(max_length=200, blank=True)
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="portal_calls",
    )
    agent_channel = models.CharField(max_length=200, blank=True)
    engine = models.CharField(max_length=32, blank=True)
    identity = models.ForeignKey(
        "consent.Identity", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    worker = models.CharField(max_length=200, blank=True)
    control_channel = models.CharField(max_length=200, blank=True)
    supervisor_allowed = models.BooleanField(default=False)
    joined_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now_add=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=32, blank=True)
    end_detail = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["joined_at"]
        indexes = [models.Index(fields=["service", "status", "joined_at"])]
        permissions = [
            ("take_calls", "Can take customer calls in the portal"),
            ("supervise_calls", "Can watch and listen to a call the agent allows"),
        ]

    def __str__(self) -> str:
        return f"{self.service} call {self.id} ({self.status})"


class HomeLink(models.Model):
    """A one-time link an agent sends to a customer's own browser; only its hash is kept."""

    token_sha256 = models.CharField(max_length=64, unique=True)
    service = models.CharField(max_length=32, choices=Service.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="portal_links"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"home link for {self.service} ({self.token_sha256[:8]}…)"
