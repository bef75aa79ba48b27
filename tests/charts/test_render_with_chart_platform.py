"""The platform the chart writes is the render crate's Platform: `asya render`
accepts it (unknown keys fail there) and renders what the values say. And the
chart's default platform file means what the built-in default means."""

from __future__ import annotations

import subprocess

import yaml
from conftest import CHART, ROOT, values
from test_asya_chart import merge


def render(asya_bin: str, actor: str, *extra: str) -> list[dict]:
    p = subprocess.run([asya_bin, "render", "-f", actor, *extra], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return [d for d in yaml.safe_load_all(p.stdout) if d]


def by_kind(objs: list[dict], kind: str) -> dict:
    found = [o for o in objs if o["kind"] == kind]
    assert len(found) == 1, f"{kind}: {len(found)} objects"
    return found[0]


def container(workload: dict, name: str) -> dict:
    return next(c for c in workload["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def chart_platform(kubectl, ns: str, release: str, tmp_path) -> str:
    cm = kubectl.get("configmap", "-n", ns, f"{release}-platform")
    path = tmp_path / "platform.yaml"
    path.write_text(cm["data"]["platform.yaml"])
    return str(path)


def test_default_platform_file_renders_like_the_builtin_default(asya_bin):
    for actor in ("examples/echo.yaml", "examples/image-enhancer-sqs.yaml", "examples/pipeline.yaml"):
        builtin = render(asya_bin, str(ROOT / actor))
        from_file = render(asya_bin, str(ROOT / actor), "--platform", str(CHART / "files/platform.yaml"))
        assert from_file == builtin, actor


def test_default_platform_file_has_no_account_id():
    p = yaml.safe_load((CHART / "files/platform.yaml").read_text())
    for name, t in p["transports"].items():
        assert "accountId" not in t["config"] and "queueBaseURL" not in t["config"], name


def test_seed004_sqs_platform_renders_with_its_account_region_and_role(helm, kubectl, namespace, asya_bin, tmp_path):
    helm.install("op", CHART, merge(values("seed004-operator.yaml"),
                                    {"transports": {"sqs": {"config": {"accountId": "123456789012"}}}}))
    platform = chart_platform(kubectl, namespace, "op", tmp_path)
    objs = render(asya_bin, str(ROOT / "examples/image-enhancer-sqs.yaml"), "--platform", platform)
    trigger = by_kind(objs, "ScaledObject")["spec"]["triggers"][0]["metadata"]
    assert trigger["queueURL"] == "https://sqs.eu-west-1.amazonaws.com/123456789012/asya-production-image-enhancer"
    assert trigger["awsRegion"] == "eu-west-1"
    sa = by_kind(objs, "ServiceAccount")
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == "arn:aws:iam::123456789012:role/asya-actor"
    sidecar = container(by_kind(objs, "Deployment"), "asya-sidecar")
    assert sidecar["image"] == "registry.example.com/asya-sidecar:0.1.0"
    assert sidecar["resources"]["limits"] == {"cpu": "1000m", "memory": "512Mi"}


def test_seed001_rabbitmq_platform_gives_sidecars_the_password_secret(helm, kubectl, namespace, asya_bin, tmp_path):
    helm.install("r", CHART, values("seed001-rabbitmq.yaml"))
    platform = chart_platform(kubectl, namespace, "r", tmp_path)
    objs = render(asya_bin, str(ROOT / "examples/echo.yaml"), "--platform", platform)
    env = {e["name"]: e for e in container(by_kind(objs, "Deployment"), "asya-sidecar")["env"]}
    assert env["ASYA_RABBITMQ_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "rabbitmq-secret", "key": "password"}
    assert env["ASYA_RABBITMQ_HOST"]["value"] == "rabbitmq.default.svc.cluster.local"
