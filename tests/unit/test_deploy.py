"""deploy/ checked with what exists here: YAML and JSON parse with the shapes their readers
expect, every metric that an alert, a dashboard panel or the HPA names exists in
kiosk/metrics.py, ``nginx -t`` on the nginx site, ``systemd-analyze verify`` on the units,
``docker compose config`` where the compose plugin exists, and the Dockerfile installs every
extra the README promises."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

from kiosk import metrics

REPO = Path(__file__).resolve().parent.parent.parent
DEPLOY = REPO / "deploy"
METRIC = re.compile(r"\bkiosk_[a-z0-9_]+")
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def known_metrics() -> set[str]:
    names = set()
    for collector in [*REGISTRY._collector_to_names, metrics.DatabaseCollector()]:
        for family in collector.describe() if hasattr(collector, "describe") else []:
            names.add(family.name)
    names |= {"kiosk_audit_outbox_lag_seconds", "kiosk_audit_outbox_rows"}
    names |= {"kiosk_fusion_switch_enabled"}
    return {n for n in names if n.startswith("kiosk_")}


def base_name(name: str) -> str:
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def assert_known(expr: str, where: str) -> None:
    known = {base_name(n) for n in known_metrics()}
    named = METRIC.findall(expr)
    assert named, f"{where}: no kiosk metric in {expr!r}"
    for name in named:
        assert base_name(name) in known, f"{where}: {name} is not a metric of kiosk/metrics.py"


def yaml_documents(path: Path) -> list:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def test_every_yaml_file_in_deploy_parses():
    files = sorted(DEPLOY.rglob("*.yaml")) + sorted(DEPLOY.rglob("*.yml"))
    assert len(files) >= 5
    for path in files:
        assert yaml_documents(path), path


def test_alert_rules_have_the_fields_prometheus_needs_and_name_real_metrics():
    (rules_file,) = yaml_documents(DEPLOY / "prometheus" / "alerts.yml")
    rules = [rule for group in rules_file["groups"] for rule in group["rules"]]
    names = {rule["alert"] for rule in rules}
    # the obvious cases of the issue
    assert {
        "KioskMediaWorkerHeartbeatMissing",
        "KioskAuditOutboxLag",
        "KioskFusionSwitchedOff",
        "KioskLoopLatencyP95High",
    } <= names
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert rule["labels"]["severity"] and rule["annotations"]["summary"]
        assert_known(rule["expr"], rule["alert"])
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["for"]
    (config,) = yaml_documents(DEPLOY / "prometheus" / "prometheus.yml")
    assert config["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["kiosk-daphne"]["authorization"]["type"] == "Bearer"  # never scraped bare


def test_the_grafana_dashboard_panels_name_real_metrics():
    dashboard = json.loads((DEPLOY / "grafana" / "kiosk-dashboard.json").read_text())
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    shown = set()
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert_known(target["expr"], panel["title"])
            shown |= {base_name(n) for n in METRIC.findall(target["expr"])}
    # every metric of the list is on the dashboard
    assert {
        "kiosk_media_sessions",
        "kiosk_session_fps",
        "kiosk_stage_ms",
        "kiosk_loop_latency_ms",
        "kiosk_rung_changes",
        "kiosk_offers_refused",
        "kiosk_worker_headroom",
        "kiosk_audit_outbox_lag_seconds",
        "kiosk_audit_relay_errors",
        "kiosk_fusion_switch_enabled",
    } <= shown


def test_kubernetes_media_workers_scale_on_their_load_and_drain_first():
    documents = yaml_documents(DEPLOY / "k8s" / "kiosk.yaml")
    deployments = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Deployment"}
    for name, deployment in deployments.items():
        selector = deployment["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items(), name
    (hpa,) = [d for d in documents if d["kind"] == "HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert target["kind"] == "Deployment" and target["name"] in deployments
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Pods"
    assert_known(metric["pods"]["metric"]["name"], "HPA")
    assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    media = deployments[target["name"]]["spec"]["template"]["spec"]
    (container,) = media["containers"]
    assert "USR1" in " ".join(container["lifecycle"]["preStop"]["exec"]["command"])
    env = {e["name"] for e in container["env"]}
    assert {"METRICS_TLS_CERT", "METRICS_TLS_KEY", "METRICS_TLS_CLIENT_CA"} <= env
    (adapter,) = yaml_documents(DEPLOY / "k8s" / "prometheus-adapter.yaml")
    rules = yaml.safe_load(adapter["data"]["config.yaml"])["rules"]
    assert_known(rules[0]["seriesQuery"], "prometheus-adapter")


def test_the_dockerfile_installs_every_extra_the_readme_promises():
    dockerfile = (DEPLOY / "compose" / "Dockerfile").read_text()
    makefile = (REPO / "Makefile").read_text()
    assert '".[${ORT},insightface]"' in dockerfile
    pinned = re.search(r"^INSIGHTFACE \?= (\S+)", makefile, re.MULTILINE).group(1)
    assert f"ARG INSIGHTFACE={pinned}" in dockerfile  # the same pin as `make install`
    assert '--no-deps "${INSIGHTFACE}"' in dockerfile


def test_compose_file_shape_and_docker_compose_config():
    (compose,) = yaml_documents(DEPLOY / "compose" / "compose.yaml")
    services = compose["services"]
    assert services["web"]["deploy"]["replicas"] >= 2
    assert "nginx" in services and "media" in services
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker is not installed")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"docker has no compose plugin here ({probe.stderr.strip()[:80]})")
    env_file = DEPLOY / "kiosk.env"
    created = not env_file.exists()
    if created:
        env_file.write_text((DEPLOY / "kiosk.env.example").read_text())
    try:
        result = subprocess.run(
            [docker, "compose", "-f", str(DEPLOY / "compose" / "compose.yaml"), "config", "-q"],
            capture_output=True,
            text=True,
        )
    finally:
        if created:
            env_file.unlink()
    assert result.returncode == 0, result.stderr


def test_nginx_accepts_the_site(tmp_path):
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "")
    openssl = shutil.which("openssl")
    if not nginx or not openssl:
        pytest.skip("nginx or openssl is not installed (`make deploy-deps` installs nginx)")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=kiosk.test", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    site = (DEPLOY / "nginx" / "kiosk.conf").read_text()
    site = site.replace("/etc/ssl/kiosk/fullchain.pem", str(cert))
    site = site.replace("/etc/ssl/kiosk/privkey.pem", str(key))
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        f"events {{}}\nhttp {{\n  access_log off;\n  include {tmp_path}/site.conf;\n}}\n"
    )
    result = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr


def test_systemd_units_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    python = sys.executable
    daphne = str(Path(python).with_name("daphne"))
    units = []
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        text = unit.read_text()
        text = text.replace("/opt/kiosk/.venv/bin/python", python)
        text = text.replace("/opt/kiosk/.venv/bin/daphne", daphne)
        text = text.replace("/opt/kiosk", str(REPO))
        name = unit.name.replace("@.service", "@1.service")
        (tmp_path / name).write_text(text)
        units.append(str(tmp_path / name))
    assert len(units) >= 5
    result = subprocess.run(
        [analyze, "verify", "--man=no", *units], capture_output=True, text=True, cwd=tmp_path
    )
    output = result.stdout + result.stderr
    problems = [
        line
        for line in output.splitlines()
        if "Unknown" in line or "Failed" in line or "not executable" in line or "bad" in line
    ]
    assert result.returncode == 0 and not problems, output
