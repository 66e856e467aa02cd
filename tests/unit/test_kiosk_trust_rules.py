"""The pure rules behind trusted kiosks: TURN credentials, candidate networks, SDP limits,
the Origin check (kiosk/turn.py, kiosk/ice_policy.py, kiosk/signaling.py, kiosk/origin.py)."""

import base64
import hashlib
import hmac

import pytest

from kiosk import origin, signaling, turn
from kiosk.ice_policy import CandidateError, NetworkPolicy, candidate_address, parse_networks
from kiosk.signaling import SignalingError
from tests.unit.test_signaling import VIDEO_OFFER

SECRET = "turn-secret-for-tests"


def test_turn_credentials_verify_with_the_hmac_and_expire():
    username, password = turn.credentials(SECRET, "lobby", ttl_s=600, now=1_000_000)
    assert username == "1000600:lobby"
    expected = hmac.new(SECRET.encode(), username.encode(), hashlib.sha1).digest()
    assert base64.b64decode(password) == expected  # what coturn computes
    assert turn.verify(SECRET, username, password, now=1_000_000)
    assert turn.verify(SECRET, username, password, now=1_000_599)
    assert not turn.verify(SECRET, username, password, now=1_000_600)  # expired
    assert not turn.verify("another-secret", username, password, now=1_000_000)
    assert not turn.verify(SECRET, "9999999999:lobby", password, now=1_000_000)  # forged expiry


def test_hello_ice_servers_carry_per_call_turn_and_never_the_static_login(settings):
    settings.ICE_SERVERS = [
        {"urls": "stun:stun.example.test:3478"},
        {"urls": "turn:turn.example.test:3478", "username": "kiosk", "credential": "static"},
    ]
    settings.TURN_SECRET = SECRET
    settings.TURN_URLS = ["turn:turn.example.test:3478?transport=udp"]
    settings.TURN_CREDENTIAL_TTL_S = 300
    servers = turn.ice_servers_for_kiosk("lobby", now=2_000_000)
    assert servers[0] == {"urls": "stun:stun.example.test:3478"}
    assert "static" not in repr(servers) and len(servers) == 2
    assert servers[1]["username"] == "2000300:lobby"
    assert turn.verify(SECRET, servers[1]["username"], servers[1]["credential"], now=2_000_000)
    settings.TURN_SECRET = ""
    assert turn.ice_servers_for_kiosk("lobby") == [{"urls": "stun:stun.example.test:3478"}]


# Addresses here are only parsed, never sent to (rule 12): loopback, link-local, multicast,
# and the shared address space 100.64.0.0/10 standing in for a site's own networks.
POLICY = NetworkPolicy(workers=parse_networks("100.64.8.0/24"))


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "::1",
        "169.254.10.1",
        "fe80::1",
        "0.0.0.0",
        "224.0.0.1",
        "100.64.8.7",
        "::ffff:127.0.0.1",
        "abcd.local",
        "example.org",
    ],
)
def test_refused_candidate_addresses(address):
    assert not POLICY.allows(address)


def test_allowed_candidate_addresses_and_explicit_networks():
    assert POLICY.allows("100.64.9.7")  # an ordinary address outside the workers' network
    loopback = NetworkPolicy(allowed=parse_networks("127.0.0.0/8"))
    assert loopback.allows("127.0.0.1")
    assert not loopback.allows("100.64.9.7")  # KIOSK_NETWORKS set: nothing else
    assert not NetworkPolicy(allowed=parse_networks("127.0.0.2/32")).allows("127.0.0.1")
    workers_allowed = NetworkPolicy(allowed=POLICY.workers, workers=POLICY.workers)
    assert workers_allowed.allows("100.64.8.7")  # named in KIOSK_NETWORKS: allowed


@pytest.mark.parametrize(
    "line",
    [
        "candidate:1 1 udp 1 127.0.0.1 " + "9" * 5000 + " typ host",
        "candidate:1 1 udp 1 127.0.0.1 70000 typ host",
        "candidate:1 1 udp 1 127.0.0.1 -1 typ host",
        "candidate:1 1 udp 1 127.0.0.1 5000 host",
        "candidate:1 1 sctp 1 127.0.0.1 5000 typ host",
        "candidate:1 1 udp ¹ 127.0.0.1 5000 typ host",
        "candidate:1",
    ],
)
def test_unreadable_candidate_lines(line):
    with pytest.raises(CandidateError):
        candidate_address(line)


def offer_with(candidates: int, port: str = "9") -> str:
    lines = "".join(
        f"a=candidate:{n} 1 udp 2130706431 127.0.0.1 {40000 + n % 20000} typ host\r\n"
        for n in range(candidates)
    )
    return VIDEO_OFFER.replace("m=video 9 ", f"m=video {port} ") + lines


def test_the_thousand_candidate_offer_is_refused():
    policy = NetworkPolicy(allowed=parse_networks("127.0.0.0/8"))
    sdp, count = signaling.screen_offer_candidates(offer_with(3), policy)
    assert count == 3 and sdp.count("a=candidate:") == 3
    with pytest.raises(SignalingError) as refused:
        signaling.screen_offer_candidates(offer_with(1000), policy)
    assert refused.value.code == "too_many_candidates"


def test_refused_candidates_are_left_out_of_the_offer():
    sdp, count = signaling.screen_offer_candidates(offer_with(4), NetworkPolicy())
    assert count == 4 and "a=candidate:" not in sdp  # loopback not allowed by default
    assert "m=video 9 " in sdp


@pytest.mark.parametrize("port", ["9" * 5000, "65536", "x", "", "-1", "١٢"])
def test_any_unreadable_port_is_bad_sdp(port):
    with pytest.raises(SignalingError) as refused:
        signaling.validate_offer_sdp(offer_with(0, port=port))
    assert refused.value.code == "bad_sdp"


def scope(origin_header: str | None, host: str = "kiosk.example.org:8443", scheme: str = "ws"):
    headers = [(b"host", host.encode())]
    if origin_header is not None:
        headers.append((b"origin", origin_header.encode()))
    return {"type": "websocket", "scheme": scheme, "headers": headers}


def test_origin_is_checked_with_scheme_host_and_port(settings):
    settings.ALLOWED_HOSTS = ["kiosk.example.org"]
    settings.WEBSOCKET_ALLOWED_ORIGINS = []
    assert origin.origin_allowed(scope("http://kiosk.example.org:8443"))
    assert not origin.origin_allowed(scope("http://kiosk.example.org:8444"))
    assert not origin.origin_allowed(scope("https://kiosk.example.org:8443"))
    assert not origin.origin_allowed(scope("http://evil.example.org:8443"))
    assert not origin.origin_allowed(scope(None))
    assert not origin.origin_allowed(scope("null"))
    assert origin.origin_allowed(scope("https://kiosk.example.org", "kiosk.example.org", "wss"))
    assert not origin.origin_allowed(scope("http://kiosk.example.org", "kiosk.example.org", "wss"))
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    behind_proxy = scope("https://kiosk.example.org", "kiosk.example.org")
    behind_proxy["headers"].append((b"x-forwarded-proto", b"https"))
    assert origin.origin_allowed(behind_proxy)
    settings.WEBSOCKET_ALLOWED_ORIGINS = ["https://kiosk.example.org:9000"]
    assert origin.origin_allowed(scope("https://kiosk.example.org:9000"))


def test_rate_limits_are_shared_through_redis(settings, redis_url):
    """Two daphne processes count together: each thread here has its own Redis connection
    (as each process would), and the limit holds across them."""
    import threading
    import uuid

    from kiosk import limits

    settings.CACHES = {
        **settings.CACHES,
        "limits": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": f"limits-test-{uuid.uuid4().hex[:8]}",
        },
    }
    settings.KIOSK_RATE_LIMITS = {"consent_kiosk": [5, 60], "consent_address": [100, 60]}
    results: list[bool] = []

    def visits(count: int) -> None:
        results.extend(limits.allow("consent", "lobby", "127.0.0.1") for _ in range(count))

    for count in (3, 4):  # one "process" after the other
        thread = threading.Thread(target=visits, args=(count,))
        thread.start()
        thread.join()
    assert results == [True] * 5 + [False] * 2
    # The counters live in Redis, where every daphne process reads them.
    import redis

    prefix = settings.CACHES["limits"]["KEY_PREFIX"]
    stored = list(redis.Redis.from_url(redis_url).scan_iter(match=f"{prefix}:*kiosk-rate:*"))
    assert len(stored) == 2  # one counter for the kiosk, one for the address
