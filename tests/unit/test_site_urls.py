"""REDIS_URL (plain or Sentinel) and DATABASE_URL (one host or several) as the settings read
them, and the metrics listener's refusal to serve beyond loopback without mutual TLS."""

import pytest

from kiosk import metrics
from kiosk.database_url import DatabaseUrlError, parse_database_url
from kiosk.redis_urls import RedisUrlError, parse_redis_url


def test_a_plain_redis_url_passes_through():
    target = parse_redis_url("redis://127.0.0.1:6379/3")
    assert not target.uses_sentinel
    assert target.channel_layer_host(socket_timeout=30) == {
        "address": "redis://127.0.0.1:6379/3",
        "socket_timeout": 30,
    }
    assert target.celery_broker() == ("redis://127.0.0.1:6379/3", {})


def test_a_sentinel_url_feeds_the_channel_layer_and_the_broker():
    target = parse_redis_url(
        "sentinel://:s3cret@s1.internal:26379,s2.internal,s3.internal:26380/kiosk/2"
    )
    assert target.sentinels == (
        ("s1.internal", 26379),
        ("s2.internal", 26379),
        ("s3.internal", 26380),
    )
    assert (target.master, target.db, target.password) == ("kiosk", 2, "s3cret")
    host = target.channel_layer_host(socket_timeout=30)
    assert host["master_name"] == "kiosk" and host["db"] == 2 and host["password"] == "s3cret"
    assert host["sentinels"][0] == ["s1.internal", 26379]
    url, options = target.celery_broker()
    assert url.split(";") == [
        "sentinel://:s3cret@s1.internal:26379/2",
        "sentinel://:s3cret@s2.internal:26379/2",
        "sentinel://:s3cret@s3.internal:26380/2",
    ]
    assert options["master_name"] == "kiosk"


@pytest.mark.parametrize(
    "url, message",
    [
        ("http://redis:6379", "must start with"),
        ("sentinel://s1:26379", "master name"),
        ("sentinel:///kiosk", "at least one sentinel"),
        ("sentinel://s1:port/kiosk", "bad sentinel port"),
        ("sentinel://s1:26379/kiosk/zero", "must be a number"),
    ],
)
def test_bad_redis_urls_are_clear_errors(url, message):
    with pytest.raises(RedisUrlError, match=message):
        parse_redis_url(url)


def test_a_multi_host_database_url_keeps_every_host_and_the_session_attrs():
    config = parse_database_url(
        "postgres://kiosk:pw@db1:5432,db2:5433/kiosk?target_session_attrs=read-write"
    )
    assert config["HOST"] == "db1,db2" and config["PORT"] == "5432,5433"
    assert config["OPTIONS"] == {"target_session_attrs": "read-write"}
    assert (config["NAME"], config["USER"], config["PASSWORD"]) == ("kiosk", "kiosk", "pw")
    assert config["ENGINE"] == "django.db.backends.postgresql"


def test_a_single_host_database_url_goes_through_dj_database_url():
    config = parse_database_url("postgres://kiosk@db:5432/kiosk?target_session_attrs=primary")
    assert config["HOST"] == "db" and config["OPTIONS"]["target_session_attrs"] == "primary"


@pytest.mark.parametrize(
    "url, message",
    [
        ("postgres://k@db1,db2/kiosk?target_session_attrs=leader", "target_session_attrs"),
        ("mysql://k@db1,db2/kiosk", "only PostgreSQL"),
        ("postgres://k@db1,,db2/kiosk", "empty host"),
    ],
)
def test_bad_database_urls_are_clear_errors(url, message):
    with pytest.raises(DatabaseUrlError, match=message):
        parse_database_url(url)


def test_metrics_beyond_loopback_need_mutual_tls(monkeypatch):
    monkeypatch.setenv("METRICS_BIND", "0.0.0.0")
    for name in ("METRICS_TLS_CERT", "METRICS_TLS_KEY", "METRICS_TLS_CLIENT_CA"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="beyond loopback"):
        metrics.serve(1)
    monkeypatch.setenv("METRICS_TLS_CERT", "/x/cert.pem")
    with pytest.raises(ValueError, match="go together"):
        metrics.tls_options()
