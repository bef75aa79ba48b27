"""charts/asya-crew: x-sink and x-sump as AsyncActors; seed 001's crew values
(happy-end / error-end with S3 / MinIO env) are accepted and land where our
sidecar reads them."""

from __future__ import annotations


import pytest
import yaml
from conftest import CHART, CREW, values
from test_asya_chart import merge
from test_render_with_chart_platform import container, render


def actor(kubectl, ns: str, name: str) -> dict | None:
    return kubectl.get("asyncactor.asya.sh", "-n", ns, name)


def env_of(items) -> dict:
    return {e["name"]: e for e in items or []}


@pytest.mark.parametrize("transport", ["sqs", "rabbitmq"])
def test_seed001_crew_values(helm, kubectl, namespace, transport):
    helm.install("asya", CHART, {"transports": {"sqs": {"enabled": True, "config": {"accountId": "123456789012"}}}})
    crew = values("seed001-crew.yaml")
    for key in ("happy-end", "error-end"):
        crew[key]["transport"] = transport
    helm.install("crew", CREW, crew)
    sink, sump = actor(kubectl, namespace, "x-sink"), actor(kubectl, namespace, "x-sump")
    assert sink and sump, "x-sink / x-sump not created"
    assert actor(kubectl, namespace, "happy-end") is None
    s = sink["spec"]
    assert s["actor"] == "x-sink" and s["transport"] == transport
    # the old end handlers' work is done by our sidecar: their ASYA_HANDLER is not kept
    assert s["handler"] == "asya_crew.sink.handle"
    assert sump["spec"]["handler"] == "asya_crew.sump.handle"
    side = env_of(s["sidecar"]["env"])
    assert side["ASYA_S3_BUCKET"]["value"] == "asya-results"
    assert side["ASYA_S3_ENDPOINT"]["value"] == "http://minio:9000"
    assert side["AWS_ACCESS_KEY_ID"]["value"] == "minioadmin"
    assert side["AWS_SECRET_ACCESS_KEY"]["value"] == "minioadmin"
    assert "env" not in s  # nothing of the seed's list was left for the runtime
    assert "ASYA_AWS_REGION" not in side  # the transport's region stays the sidecar's
    sump_env = env_of(sump["spec"]["sidecar"]["env"])
    assert sump_env["ASYA_S3_BUCKET"]["value"] == "asya-results" and "ASYA_S3_ENDPOINT" not in sump_env


def test_minio_keys_from_a_secret(helm, kubectl, namespace):
    helm.install("asya", CHART, {})
    helm.install("crew", CREW, {"s3": {"bucket": "results", "prefix": "prod", "endpoint": "http://minio.storage:9000",
                                       "accessKeySecretRef": {"name": "minio-creds"}}})
    for name in ("x-sink", "x-sump"):
        env = env_of(actor(kubectl, namespace, name)["spec"]["sidecar"]["env"])
        assert env["ASYA_S3_BUCKET"]["value"] == "results" and env["ASYA_S3_PREFIX"]["value"] == "prod"
        assert env["ASYA_S3_ENDPOINT"]["value"] == "http://minio.storage:9000"
        assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"] == {"name": "minio-creds", "key": "accessKey"}
        assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "minio-creds", "key": "secretKey"}


def test_disabled_actor_and_upgrade_uninstall(helm, kubectl, namespace):
    helm.install("asya", CHART, {})
    helm.install("crew", CREW, {"error-end": {"enabled": False}})
    assert actor(kubectl, namespace, "x-sink") and actor(kubectl, namespace, "x-sump") is None
    helm.upgrade("crew", CREW, {"x-sump": {"enabled": True, "scaling": {"minReplicaCount": 1}}})
    assert actor(kubectl, namespace, "x-sump")["spec"]["scaling"] == {"minReplicaCount": 1}
    helm.uninstall("crew")
    assert actor(kubectl, namespace, "x-sink") is None and actor(kubectl, namespace, "x-sump") is None


@pytest.mark.parametrize("bad,needle", [
    ({"happy-end": {"enabeld": True}}, "enabeld"),
    ({"x-sink": {"handlr": "a.b"}}, "handlr"),
    ({"happy-end": {"workload": {"template": {"spec": {"containers": [{"name": "other"}]}}}}}, "asya-runtime"),
    ({"s3": {"endpoint": "minio:9000"}}, "endpoint"),
    # one AWS region per sidecar (the transport's): a bucket region would move SQS too
    ({"s3": {"region": "eu-west-1"}}, "region"),
])
def test_crew_schema_rejects_typos(helm, kubectl, namespace, bad, needle):
    with pytest.raises(Exception) as err:
        helm.install("crew", CREW, bad)
    assert needle in str(err.value)


def test_crew_actors_render_with_the_chart_platform(helm, kubectl, namespace, asya_bin, tmp_path):
    """What the crew chart creates is a valid AsyncActor for our render, and the S3
    settings reach the sidecar of x-sink with the sink role."""
    helm.install("asya", CHART, values("seed001-rabbitmq.yaml"))
    crew = values("seed001-crew.yaml")
    for key in ("happy-end", "error-end"):
        crew[key]["transport"] = "rabbitmq"
    helm.install("crew", CREW, crew)
    cm = kubectl.get("configmap", "-n", namespace, "asya-platform")
    (tmp_path / "platform.yaml").write_text(cm["data"]["platform.yaml"])
    docs = []
    for name in ("x-sink", "x-sump"):
        a = actor(kubectl, namespace, name)
        docs.append({"apiVersion": a["apiVersion"], "kind": a["kind"],
                     "metadata": {"name": name, "namespace": namespace}, "spec": a["spec"]})
    (tmp_path / "crew.yaml").write_text(yaml.safe_dump_all(docs))
    objs = render(asya_bin, str(tmp_path / "crew.yaml"), "--platform", str(tmp_path / "platform.yaml"))
    sink = next(o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "x-sink")
    env = env_of(container(sink, "asya-sidecar")["env"])
    assert env["ASYA_ACTOR_ROLE"]["value"] == "sink"
    assert env["ASYA_S3_BUCKET"]["value"] == "asya-results"
    assert env["ASYA_S3_ENDPOINT"]["value"] == "http://minio:9000"
    assert env["ASYA_RABBITMQ_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "rabbitmq-secret"
