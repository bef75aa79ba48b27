"""charts/asya installed with the real Helm engine into the loopback API server:
the seeds' operator values configure exactly what they say."""

from __future__ import annotations

import copy

import pytest
import yaml
from conftest import CHART, manifest_objects, values


def platform_of(kubectl, ns: str, release: str) -> dict:
    cm = kubectl.get("configmap", "-n", ns, f"{release}-platform")
    assert cm, f"ConfigMap {release}-platform was not created"
    return yaml.safe_load(cm["data"]["platform.yaml"])


def rules_of(kubectl, kind: str, name: str, *ns: str) -> set[tuple[str, str]]:
    """(apiGroup, resource) pairs a Role/ClusterRole grants."""
    obj = kubectl.get(kind, *ns, name)
    assert obj, f"{kind} {name} missing"
    return {(g, r) for rule in obj["rules"] for g in rule["apiGroups"] for r in rule["resources"]}


def merge(*docs: dict) -> dict:
    out: dict = {}
    for d in docs:
        out = _merge(out, d)
    return out


def _merge(a: dict, b: dict) -> dict:
    a = copy.deepcopy(a)
    for k, v in b.items():
        a[k] = _merge(a[k], v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
    return a


QUEUE_GROUPS = {"rabbitmq.com", "sqs.services.k8s.aws", "sqs.aws.m.upbound.io"}


def test_seed001_rabbitmq_values_configure_transport_password_and_rbac(helm, kubectl, namespace):
    rel = helm.install("asya", CHART, values("seed001-rabbitmq.yaml"))
    p = platform_of(kubectl, namespace, "asya")
    rabbit = p["transports"]["rabbitmq"]
    assert rabbit["enabled"] is True and rabbit["type"] == "rabbitmq"
    assert rabbit["config"] == {
        "host": "rabbitmq.default.svc.cluster.local",
        "port": 5672,
        "username": "guest",
        "passwordSecretRef": {"name": "rabbitmq-secret", "key": "password"},
    }
    assert p["defaultTransport"] == "rabbitmq"
    # unset platform sections stay unset (a null must not become "")
    assert "s3" not in p
    # the chart's own default leaves SQS off (seed 004's table)
    assert p["transports"]["sqs"]["enabled"] is False
    # the controller's queue driver gets the password from the same Secret
    dep = kubectl.get("deployment", "-n", namespace, "asya-controller")
    env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["ASYA_RABBITMQ_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "rabbitmq-secret", "key": "password"}
    # least privilege: the default provisioner (controller) needs no queue-object groups
    granted = rules_of(kubectl, "clusterrole", "asya-controller")
    assert not {g for g, _ in granted} & QUEUE_GROUPS
    assert ("asya.sh", "asyncactors/status") in granted and ("keda.sh", "scaledobjects") in granted
    # Secrets: only `get` of the one KEDA's TriggerAuthentication reads (the controller
    # checks it exists with its key), never list or any other Secret
    role = kubectl.get("clusterrole", "asya-controller")
    secret_rules = [r for r in role["rules"] if "secrets" in r["resources"]]
    assert secret_rules == [{"apiGroups": [""], "resources": ["secrets"],
                             "resourceNames": ["rabbitmq-keda-secret"], "verbs": ["get"]}]
    assert "rabbitmq-secret" in rel["info"]["notes"]


def test_seed004_operator_values_map_onto_deployment_platform_and_serviceaccount(helm, kubectl, namespace):
    helm.install("op", CHART, merge(values("seed004-operator.yaml"),
                                    {"transports": {"sqs": {"config": {"accountId": "123456789012"}}}}))
    dep = kubectl.get("deployment", "-n", namespace, "op-controller")
    spec = dep["spec"]
    assert spec["replicas"] == 2
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "asya-operator"
    c = pod["containers"][0]
    assert c["image"] == "registry.example.com/asya:0.1.0" and c["imagePullPolicy"] == "Always"
    assert "--leader-elect" in c["args"] and "--metrics-addr=0.0.0.0:9090" in c["args"]
    assert c["ports"] == [{"name": "metrics", "containerPort": 9090, "protocol": "TCP"}]
    sa = kubectl.get("serviceaccount", "-n", namespace, "asya-operator")
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == "arn:aws:iam::123456789012:role/asya-operator"
    p = platform_of(kubectl, namespace, "op")
    assert p["sidecar"]["image"] == "registry.example.com/asya-sidecar:0.1.0"
    assert p["sidecar"]["defaultResources"] == {
        "limits": {"cpu": "1000m", "memory": "512Mi"}, "requests": {"cpu": "200m", "memory": "128Mi"}}
    # keys not given keep the default platform's values
    assert p["sidecar"]["logFormat"] == "json" and p["sidecar"]["metricsPort"] == 8080
    sqs = p["transports"]["sqs"]
    assert sqs["enabled"] is True and sqs["type"] == "sqs"
    assert sqs["config"] == {"region": "eu-west-1", "actorRoleArn": "arn:aws:iam::123456789012:role/asya-actor",
                             "accountId": "123456789012"}
    assert p["transports"]["rabbitmq"]["config"]["host"] == "rabbitmq.messaging.svc.cluster.local"
    # the metrics Service follows metrics.port; leader election gets its Lease Role
    svc = kubectl.get("service", "-n", namespace, "op-controller-metrics")
    assert svc["spec"]["ports"][0]["port"] == 9090
    lease = kubectl.get("role", "-n", namespace, "op-controller-leader-election")
    assert lease["rules"][1]["resourceNames"] == ["asya-controller"]


def test_health_port_serves_probes_when_metrics_are_off(helm, kubectl, namespace):
    helm.install("h", CHART, {"metrics": {"enabled": False}, "health": {"port": 8082},
                              "leaderElection": {"enabled": False}})
    c = kubectl.get("deployment", "-n", namespace, "h-controller")["spec"]["template"]["spec"]["containers"][0]
    assert "--metrics-addr=0.0.0.0:8082" in c["args"]
    assert c["livenessProbe"]["httpGet"]["port"] == 8082
    assert kubectl.get("service", "-n", namespace, "h-controller-metrics") is None
    assert kubectl.get("role", "-n", namespace, "h-controller-leader-election") is None


@pytest.mark.parametrize("provisioner,transports,group", [
    ("messaging-topology-operator", {}, "rabbitmq.com"),
    ("ack", {"sqs": {"enabled": True, "config": {"accountId": "123456789012"}}}, "sqs.services.k8s.aws"),
    ("crossplane", {"sqs": {"enabled": True, "config": {"accountId": "123456789012"}}}, "sqs.aws.m.upbound.io"),
])
def test_queue_provisioner_adds_exactly_its_group(helm, kubectl, namespace, provisioner, transports, group):
    helm.install("q", CHART, {"queue": {"provisioner": provisioner}, "transports": transports})
    granted = {g for g, _ in rules_of(kubectl, "clusterrole", "q-controller")}
    assert granted & QUEUE_GROUPS == {group}
    assert platform_of(kubectl, namespace, "q")["queue"]["provisioner"] == provisioner


def test_provisioner_without_its_transport_grants_nothing_extra(helm, kubectl, namespace):
    # ACK Queues are SQS objects: with SQS disabled no actor can emit one
    helm.install("q", CHART, {"queue": {"provisioner": "ack"}})
    assert not {g for g, _ in rules_of(kubectl, "clusterrole", "q-controller")} & QUEUE_GROUPS


def test_watch_namespace_scopes_rules_to_a_role(helm, kubectl, namespace):
    helm.install("w", CHART, {"watchNamespace": namespace})
    assert kubectl.get("clusterrole", "w-controller") is None
    assert ("asya.sh", "asyncactors") in rules_of(kubectl, "role", "w-controller", "-n", namespace)
    # Flavors are cluster-scoped: reading them stays cluster-wide, and nothing else does
    assert rules_of(kubectl, "clusterrole", "w-controller-flavors") == {("asya.sh", "flavors")}


def test_rbac_create_false_creates_no_rbac(helm, kubectl, namespace):
    rel = helm.install("n", CHART, {"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "mine"}})
    kinds = {o["kind"] for o in manifest_objects(rel)}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ServiceAccount"}
    dep = kubectl.get("deployment", "-n", namespace, "n-controller")
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] == "mine"


def test_sqs_without_account_id_is_flagged_in_notes(helm, namespace):
    rel = helm.install("s", CHART, values("seed001-sqs.yaml"))
    assert "transport sqs (sqs) has no accountId" in rel["info"]["notes"]


@pytest.mark.parametrize("bad,needle", [
    ({"transports": {"rabbitmq": {"config": {"hots": "x"}}}}, "hots"),
    ({"trasnports": {}}, "trasnports"),
    ({"replicaCount": "two"}, "replicaCount"),
    ({"sidecar": {"defaultResource": {}}}, "defaultResource"),
    ({"queue": {"provisioner": "terraform"}}, "provisioner"),
    ({"transports": {"sqs": {"config": {"accountId": "000"}}}}, "accountId"),
])
def test_schema_rejects_unknown_keys_and_wrong_types(helm, kubectl, namespace, bad, needle):
    with pytest.raises(Exception) as err:
        helm.install("bad", CHART, bad)
    assert needle in str(err.value)
    assert kubectl.get("configmap", "-n", namespace, "bad-platform") is None


def test_no_enabled_transport_is_an_error(helm, namespace):
    with pytest.raises(Exception) as err:
        helm.install("none", CHART, {"transports": {"rabbitmq": {"enabled": False}}})
    assert "at least one transport with enabled: true" in str(err.value)


def test_s3_section_reaches_the_platform(helm, kubectl, namespace):
    helm.install("s", CHART, {"s3": {"bucket": "asya-results", "endpoint": "http://minio:9000"}})
    assert platform_of(kubectl, namespace, "s")["s3"] == {"bucket": "asya-results", "endpoint": "http://minio:9000"}


def test_default_transport_follows_what_is_enabled(helm, kubectl, namespace):
    helm.install("d", CHART, {"transports": {"rabbitmq": {"enabled": False}, "sqs": {"enabled": True}}})
    assert platform_of(kubectl, namespace, "d")["defaultTransport"] == "sqs"


def test_upgrade_then_uninstall_cleanly(helm, kubectl, namespace):
    helm.install("u", CHART, values("seed001-rabbitmq.yaml"))
    before = kubectl.get("deployment", "-n", namespace, "u-controller")
    up = merge(values("seed001-rabbitmq.yaml"), values("seed001-sqs.yaml"),
               {"transports": {"sqs": {"config": {"accountId": "123456789012"}}},
                "queue": {"provisioner": "ack"}})
    helm.upgrade("u", CHART, up)
    p = platform_of(kubectl, namespace, "u")
    assert p["transports"]["sqs"]["enabled"] is True and p["queue"]["provisioner"] == "ack"
    after = kubectl.get("deployment", "-n", namespace, "u-controller")
    # a platform change rolls the controller (it reads the file at start)
    ann = "checksum/platform"
    assert before["spec"]["template"]["metadata"]["annotations"][ann] != \
        after["spec"]["template"]["metadata"]["annotations"][ann]
    assert {g for g, _ in rules_of(kubectl, "clusterrole", "u-controller")} & QUEUE_GROUPS == {"sqs.services.k8s.aws"}
    sa = kubectl.get("serviceaccount", "-n", namespace, "u-controller")
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(":role/asya-operator-role")

    helm.uninstall("u")
    for args in (("deployment", "-n", namespace, "u-controller"), ("configmap", "-n", namespace, "u-platform"),
                 ("serviceaccount", "-n", namespace, "u-controller"), ("service", "-n", namespace, "u-controller-metrics"),
                 ("clusterrole", "u-controller"), ("clusterrolebinding", "u-controller"),
                 ("clusterrole", "u-controller-flavors"), ("role", "-n", namespace, "u-controller-leader-election")):
        assert kubectl.get(*args) is None, f"left after uninstall: {args}"
    # CRDs stay (Helm never deletes crds/): deleting them would delete every actor
    assert kubectl.get("crd", "asyncactors.asya.sh") is not None


def test_migration_settings_reach_the_platform_and_the_render(helm, kubectl, namespace, asya_bin, tmp_path):
    """A migrating cluster's values (upstream's queue names, the AMQP KEDA secret) land in
    the platform ConfigMap, and `asya render` with that platform names the queue and reads
    the secret key as upstream did."""
    import subprocess

    helm.install("mig", CHART, {
        "queue": {"naming": "legacy"},
        "transports": {"rabbitmq": {"config": {"kedaProtocol": "amqp"}}},
    })
    platform = platform_of(kubectl, namespace, "mig")
    assert platform["queue"]["naming"] == "legacy"
    assert platform["transports"]["rabbitmq"]["config"]["kedaProtocol"] == "amqp"
    (tmp_path / "platform.yaml").write_text(yaml.safe_dump(platform))
    (tmp_path / "actor.yaml").write_text(
        "apiVersion: asya.sh/v1alpha1\nkind: AsyncActor\nmetadata: {name: echo, namespace: ml}\n"
        "spec: {actor: echo, image: python:3.12-slim, handler: echo.process}\n")
    out = subprocess.run([asya_bin, "render", "-f", str(tmp_path / "actor.yaml"),
                          "--platform", str(tmp_path / "platform.yaml"), "-o", "json"],
                         capture_output=True, text=True, check=True).stdout
    objs = {o["kind"]: o for o in __import__("json").loads(out)["items"]}
    trigger = objs["ScaledObject"]["spec"]["triggers"][0]["metadata"]
    assert (trigger["queueName"], trigger["protocol"]) == ("asya-echo", "amqp")
    assert objs["TriggerAuthentication"]["spec"]["secretTargetRef"][0]["key"] == "host"
    sidecar = next(c for c in objs["Deployment"]["spec"]["template"]["spec"]["containers"]
                   if c["name"] == "asya-sidecar")
    assert {"name": "ASYA_QUEUE_NAMING", "value": "legacy"} in sidecar["env"]


@pytest.mark.parametrize("bad", [{"queue": {"naming": "flat"}},
                                 {"transports": {"rabbitmq": {"config": {"kedaProtocol": "https"}}}}])
def test_migration_settings_reject_unknown_values(helm, namespace, bad):
    with pytest.raises(Exception) as err:
        helm.install("bad", CHART, bad)
    assert "value must be one of" in str(err.value) or "enum" in str(err.value), str(err.value)
