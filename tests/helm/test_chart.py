"""The Helm chart, checked as far as this machine allows (helm itself is not installed).

Templates are rendered by tests/helm/render (Go's text/template plus the helpers the
chart uses: include, toYaml, nindent, indent, default, quote, required, trunc,
trimSuffix, sha256sum), then every built-in manifest is validated strictly with
kubernetes-validate against the Kubernetes API schemas it ships (offline). Not
covered: helm's own parsing quirks, sprig functions the chart does not use, and the
ServiceMonitor's CRD schema (only checked structurally here).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gateway.config import parse_config
from gateway.config.load import SECRET_KEYS

ROOT = Path(__file__).resolve().parent.parent.parent
CHART = ROOT / "helm"
RENDERER = Path(__file__).resolve().parent / "render"
# the oldest Kubernetes the chart supports, and the newest schema shipped
K8S_VERSIONS = ("1.27.0", kubernetes_validate.latest_version())
EVERYTHING_ON = {
    "autoscaling": {"enabled": True, "targetMemoryUtilizationPercentage": 80},
    "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
    "prometheusRule": {"enabled": True, "labels": {"release": "prometheus"}},
    "podDisruptionBudget": {"maxUnavailable": 1},
    "podAntiAffinity": "hard",
    "metrics": {"port": 9090},
    "config": {"metrics": {"enabled": True, "listen": "0.0.0.0:9090"}},
    "secrets": {
        "signingKeys": {"existingSecret": "gateway-signing-keys"},
        "redis": {"existingSecret": "redis-auth"},
        "admin": {"existingSecret": "gateway-admin"},
    },
    "extraEnv": [{"name": "TZ", "value": "UTC"}],
    "podAnnotations": {"example.com/team": "identity"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "edge"}],
}


@pytest.fixture(scope="session")
def renderer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The renderer built once, offline (stdlib only, no module downloads)."""
    go = shutil.which("go")
    if go is None:
        pytest.fail("Go is needed to render the chart (scripts/test.sh installs golang-go)")
    work = tmp_path_factory.mktemp("go")
    env = {
        **os.environ,
        "GOCACHE": str(work / "cache"),
        "GOPATH": str(work / "path"),
        "GOFLAGS": "-mod=mod",
        "GOPROXY": "off",
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
    }
    binary = work / "render"
    subprocess.run(
        [go, "build", "-o", str(binary), "."], cwd=RENDERER, env=env, check=True, timeout=120
    )
    return binary


def merged(base: Any, override: Any) -> Any:
    """Values merged as helm merges `-f` files: mappings deeply, everything else replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merged(base.get(key), value)
        return out
    return copy.deepcopy(override)


def run_renderer(renderer: Path, overrides: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = merged(yaml.safe_load((CHART / "values.yaml").read_text()), overrides)
    context = {
        "Values": values,
        "Chart": {"Name": chart["name"], "Version": chart["version"],
                  "AppVersion": chart["appVersion"]},
        "Release": {"Name": "edge", "Namespace": "auth", "Service": "Helm"},
    }  # fmt: skip
    return subprocess.run(
        [str(renderer), str(CHART)],
        input=json.dumps(context),
        capture_output=True,
        text=True,
        timeout=30,
    )


def render(renderer: Path, overrides: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """The rendered manifests by kind."""
    result = run_renderer(renderer, overrides or {})
    assert result.returncode == 0, result.stderr
    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    kinds = [doc["kind"] for doc in docs]
    assert len(set(kinds)) == len(kinds)
    return {doc["kind"]: doc for doc in docs}


def validate_builtin(manifests: dict[str, dict[str, Any]]) -> None:
    for kind, doc in manifests.items():
        if kind in ("ServiceMonitor", "PrometheusRule"):
            continue  # CRDs: kubernetes-validate ships no schema for them
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


def pod_spec(manifests: dict[str, dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = manifests["Deployment"]["spec"]["template"]["spec"]
    return spec


def test_default_values_render_valid_manifests(renderer: Path) -> None:
    """With the default values the chart renders a ConfigMap, Deployment, Service and PDB,
    each valid against the Kubernetes schemas (strict: no unknown fields)."""
    manifests = render(renderer)
    assert set(manifests) == {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget"}
    validate_builtin(manifests)


def test_every_option_renders_valid_manifests(renderer: Path) -> None:
    """HPA, ServiceMonitor, metrics port, hard anti-affinity and every Secret switched on
    still render valid manifests; the HPA owns the replica count."""
    manifests = render(renderer, EVERYTHING_ON)
    assert {"HorizontalPodAutoscaler", "ServiceMonitor"} <= set(manifests)
    validate_builtin(manifests)
    assert "replicas" not in manifests["Deployment"]["spec"]
    hpa = manifests["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == manifests["Deployment"]["metadata"]["name"]
    assert manifests["PodDisruptionBudget"]["spec"] == {
        "maxUnavailable": 1,
        "selector": manifests["Deployment"]["spec"]["selector"],
    }


def test_service_monitor_scrapes_a_port_the_service_has(renderer: Path) -> None:
    """The ServiceMonitor (CRD, checked by hand) selects the Service and names its ports:
    by default the internal listener's `metrics` port, `http` only with public metrics."""
    on_http = {
        "serviceMonitor": {"enabled": True},
        "metrics": {"port": 0},
        "config": {"metrics": {"listen": None, "public": True}},
    }
    for overrides, port, path in (
        ({"serviceMonitor": {"enabled": True}}, "metrics", "/metrics"),
        (on_http, "http", "/_gateway/metrics"),
        (EVERYTHING_ON, "metrics", "/metrics"),
    ):
        manifests = render(renderer, overrides)
        monitor, service = manifests["ServiceMonitor"], manifests["Service"]
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["spec"]["selector"]["matchLabels"].items() <= (
            service["metadata"]["labels"].items()
        )
        [endpoint] = monitor["spec"]["endpoints"]
        assert (endpoint["port"], endpoint["path"]) == (port, path)
        assert port in {p["name"] for p in service["spec"]["ports"]}


def test_pods_run_hardened_with_probes_and_spread(renderer: Path) -> None:
    """Non-root, read-only root filesystem, no capabilities, probes on healthz/readyz,
    anti-affinity across nodes, a preStop pause inside the grace period."""
    spec = pod_spec(render(renderer))
    [container] = spec["containers"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/_gateway/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/_gateway/readyz"
    assert container["args"] == ["run", "-c", "/etc/gateway/config.yaml"]
    assert container["resources"]["requests"]
    anti = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    drain = values["config"]["listen"]["shutdown_timeout"]
    assert pause + drain < spec["terminationGracePeriodSeconds"]


def test_mounts_match_volumes_and_the_config_paths(renderer: Path) -> None:
    """Every mount has its volume; the Secret files land where the config reads them."""
    manifests = render(renderer, EVERYTHING_ON)
    spec = pod_spec(manifests)
    [container] = spec["containers"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert set(mounts) == set(volumes)
    assert "/tmp" in mounts.values()  # noqa: S108 - the pod's only writable path, a mount
    files = {
        f"{mounts[name]}/{item['path']}"
        for name, volume in volumes.items()
        if "secret" in volume
        for item in volume["secret"].get("items", [])
    }
    assert "/etc/gateway/secrets/client/client-secret" in files
    assert "/etc/gateway/secrets/session/secrets" in files
    assert "/etc/gateway/secrets/redis/password" in files
    config = yaml.safe_load(manifests["ConfigMap"]["data"]["config.yaml"])
    assert config["providers"][0]["client_secret_file"] in files
    assert config["sessions"]["secrets_file"] in files


def secret_files_to(directory: Path, value: Any) -> Any:
    """The config with each `<secret>_file` path replaced by a local file of test content."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key.endswith("_file") and key.removesuffix("_file") in SECRET_KEYS:
                local = directory / Path(item).name
                local.write_text("x" * 40 + "\n")
                item = str(local)
            out[key] = secret_files_to(directory, item)
        return out
    if isinstance(value, list):
        return [secret_files_to(directory, item) for item in value]
    return value


def test_config_map_is_the_values_config_and_the_gateway_accepts_it(
    renderer: Path, tmp_path: Path
) -> None:
    """config.yaml in the ConfigMap is exactly `config` from values, and valid for the
    gateway (secret files stood in for by local ones)."""
    manifests = render(renderer)
    text = manifests["ConfigMap"]["data"]["config.yaml"]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert yaml.safe_load(text) == values["config"]
    local = secret_files_to(tmp_path, yaml.safe_load(text))
    config = parse_config(yaml.safe_dump(local))
    assert config.sessions.store == "redis"  # replicas > 1 share sessions
    assert values["replicaCount"] > 1


def test_changed_config_changes_the_pod_checksum(renderer: Path) -> None:
    """Editing the config changes the pod template, so the pods roll."""
    before = render(renderer)["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    after = render(renderer, {"config": {"logging": {"level": "debug"}}})["Deployment"]
    annotations = after["spec"]["template"]["metadata"]["annotations"]
    assert before["checksum/config"] != annotations["checksum/config"]


def test_image_repository_is_required(renderer: Path) -> None:
    """An empty image.repository fails the render with a message naming the value."""
    result = run_renderer(renderer, {"image": {"repository": ""}})
    assert result.returncode != 0
    assert "image.repository is required" in result.stderr


def test_prometheus_rule_ships_the_rules_in_deploy(renderer: Path) -> None:
    """prometheusRule.enabled renders a PrometheusRule whose groups are exactly
    deploy/prometheus/gateway-rules.yaml (the file promtool and Prometheus test), with the
    chart's labels and the selector labels a Prometheus Operator needs."""
    assert "PrometheusRule" not in render(renderer)
    rule = render(renderer, {"prometheusRule": {"enabled": True, "labels": {"release": "kp"}}})[
        "PrometheusRule"
    ]
    shipped = yaml.safe_load((ROOT / "deploy" / "prometheus" / "gateway-rules.yaml").read_text())
    assert shipped == rule["spec"]
    assert "monitoring.coreos.com/v1" == rule["apiVersion"]
    assert ("auth", "kp") == (rule["metadata"]["namespace"], rule["metadata"]["labels"]["release"])
