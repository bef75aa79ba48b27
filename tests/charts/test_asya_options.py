"""Optional parts of charts/asya: monitors, dashboard, Flavors, the Argo CD plugin
ConfigMap; and the copies inside the chart staying equal to their sources."""

from __future__ import annotations

import json
import re

import yaml
from conftest import CHART, ROOT, manifest_objects

MONITOR_CRDS = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: %(plural)s.monitoring.coreos.com}
spec:
  group: monitoring.coreos.com
  scope: Namespaced
  names: {kind: %(kind)s, plural: %(plural)s, singular: %(singular)s, listKind: %(kind)sList}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"""


def ensure_monitor_crds(kubectl):
    """Prometheus Operator's two kinds, schema-less (enough to accept the objects)."""
    for kind in ("ServiceMonitor", "PodMonitor"):
        low = kind.lower()
        if kubectl.get("crd", f"{low}s.monitoring.coreos.com") is None:
            kubectl.run("apply", "-f", "-", stdin=MONITOR_CRDS % {"kind": kind, "plural": low + "s", "singular": low})
    kubectl.run("wait", "--for=condition=Established", "--timeout=60s",
                "crd/servicemonitors.monitoring.coreos.com", "crd/podmonitors.monitoring.coreos.com")


def test_service_and_pod_monitors(helm, kubectl, namespace):
    ensure_monitor_crds(kubectl)
    helm.install("m", CHART, {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}},
                                          "podMonitor": {"enabled": True}}})
    sm = kubectl.get("servicemonitor", "-n", namespace, "m-controller")
    assert sm["metadata"]["labels"]["release"] == "prom"
    svc = kubectl.get("service", "-n", namespace, "m-controller-metrics")
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["spec"]["selector"].items()
    assert sm["spec"]["endpoints"][0]["port"] == svc["spec"]["ports"][0]["name"] == "metrics"
    pm = kubectl.get("podmonitor", "-n", namespace, "m-actors")
    assert pm["spec"]["selector"]["matchExpressions"] == [{"key": "asya.sh/actor", "operator": "Exists"}]
    assert pm["spec"]["podMetricsEndpoints"][0]["targetPort"] == 8080


def test_monitors_are_off_by_default(helm, namespace):
    kinds = {o["kind"] for o in manifest_objects(helm.install("m", CHART, {}))}
    assert "ServiceMonitor" not in kinds and "PodMonitor" not in kinds and "Service" in kinds


def test_dashboard_configmap(helm, kubectl, namespace):
    helm.install("g", CHART, {"dashboard": {"enabled": True}})
    cm = kubectl.get("configmap", "-n", namespace, "g-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dash = json.loads(cm["data"]["asya.json"])
    titles = {p["title"] for p in dash["panels"]}
    for want in ("Throughput (messages settled/s)", "Error rate (failed / received)", "p95 processing latency",
                 "Queue depth", "Replicas per actor", "Reconciles/s and errors/s"):
        assert want in titles


def test_dashboard_queries_only_documented_metrics():
    """Every asya_* series the dashboard queries is one the sidecar or controller exports
    (docs/sidecar.md and docs/controller.md list them)."""
    dash = json.loads((CHART / "files/dashboards/asya.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dash["templating"]["list"] if v.get("definition")]
    used = {re.sub(r"_bucket$", "", m) for e in exprs for m in re.findall(r"\basya_[a-z_]+", e)}
    docs = (ROOT / "docs/sidecar.md").read_text() + (ROOT / "docs/controller.md").read_text()
    documented = set(re.findall(r"\basya_(?:actor|controller)_[a-z_]+", docs))
    assert used, "the dashboard queries no asya metric"
    assert used <= documented, f"not exported: {sorted(used - documented)}"


def test_flavors_installed_as_flavor_objects(helm, kubectl, namespace):
    # Flavors are cluster-scoped: one left by another suite (applied with kubectl, not
    # Helm) would make the install refuse to adopt it.
    kubectl.run("delete", "flavor.asya.sh", "gpu-t4", "spot", "--ignore-not-found")
    helm.install("f", CHART, {"flavors": {"install": True, "only": ["gpu-t4", "spot"]}})
    try:
        for name in ("gpu-t4", "spot"):
            live = kubectl.get("flavor.asya.sh", name)
            src = yaml.safe_load((ROOT / "flavors" / f"{name}.yaml").read_text())
            assert live["spec"] == src["spec"]
            assert live["metadata"]["labels"]["app.kubernetes.io/instance"] == "f"
        assert kubectl.get("flavor.asya.sh", "llm-resilient") is None
    finally:
        helm.uninstall("f")
    assert kubectl.get("flavor.asya.sh", "gpu-t4") is None


def test_chart_flavor_copy_equals_flavor_library():
    """A chart cannot read outside its folder, so it ships a copy of flavors/."""
    src = {p.name: p.read_bytes() for p in (ROOT / "flavors").glob("*.yaml")}
    copy = {p.name: p.read_bytes() for p in (CHART / "files/flavors").glob("*.yaml")}
    assert src and copy == src, "run: cp flavors/*.yaml charts/asya/files/flavors/ (and remove stale files)"


def test_argocd_plugin_configmap(helm, kubectl, namespace):
    target = f"{namespace}-argocd"
    kubectl.run("create", "namespace", target)
    try:
        helm.install("a", CHART, {"argocdPlugin": {"enabled": True, "namespace": target},
                                  "transports": {"rabbitmq": {"config": {"host": "mq.example"}}}})
        cm = kubectl.get("configmap", "-n", target, "asya-cmp-plugin")
        assert cm["data"]["plugin.yaml"] == (ROOT / "argocd/plugin.yaml").read_text()
        # the sidecar renders with the same platform as the controller
        plat = kubectl.get("configmap", "-n", namespace, "a-platform")
        assert cm["data"]["platform.yaml"] == plat["data"]["platform.yaml"]
        assert yaml.safe_load(cm["data"]["platform.yaml"])["transports"]["rabbitmq"]["config"]["host"] == "mq.example"
    finally:
        kubectl.run("delete", "namespace", target, "--wait=false", check=False)


def test_chart_argocd_plugin_copy_equals_argocd_plugin():
    assert (CHART / "files/argocd/plugin.yaml").read_bytes() == (ROOT / "argocd/plugin.yaml").read_bytes()


def test_repo_server_values_and_patch_add_the_same_sidecar():
    values = yaml.safe_load((ROOT / "argocd/repo-server-values.yaml").read_text())["repoServer"]
    patch = yaml.safe_load((ROOT / "argocd/repo-server-patch.yaml").read_text())["spec"]["template"]["spec"]
    assert values["extraContainers"] == patch["containers"]
    assert values["volumes"] == patch["volumes"]
    c = values["extraContainers"][0]
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    # where Argo CD's CMP server looks for its config, and the socket directory it shares
    assert mounts["/home/argocd/cmp-server/config/plugin.yaml"]["subPath"] == "plugin.yaml"
    assert "/home/argocd/cmp-server/plugins" in mounts and "/var/run/argocd" in mounts
    assert c["command"] == ["/var/run/argocd/argocd-cmp-server"]
    assert c["securityContext"]["runAsUser"] == 999
    env = {e["name"]: e["value"] for e in c["env"]}
    assert mounts[env["ASYA_PLATFORM"]]["subPath"] == "platform.yaml"
    plugin = yaml.safe_load((ROOT / "argocd/plugin.yaml").read_text())
    assert plugin["kind"] == "ConfigManagementPlugin" and plugin["spec"]["generate"]["command"][:2] == ["asya", "render"]


def test_helm_lint_is_clean_for_both_charts():
    import asyncio

    import helm_sdkpy
    from conftest import CREW

    cfg = helm_sdkpy.Configuration(namespace="default")
    for chart in (CHART, CREW):
        result = asyncio.run(helm_sdkpy.Lint(cfg).run(str(chart)))
        worse_than_info = [m for m in result["Messages"] if m["Severity"] > 1]
        assert not result["Errors"] and not worse_than_info, (chart.name, result)


def rust_struct_fields(src: str, name: str) -> set[str]:
    """camelCase serde names of a struct's fields in crates/render/src/api/platform.rs."""
    body = re.search(r"pub struct " + name + r" \{(.*?)\n\}", src, re.S).group(1)
    out = set()
    for attrs, field in re.findall(r"((?:\s*#\[[^\n]*\]\n)*)\s*pub (\w+):", body):
        ren = re.search(r'rename = "([^"]+)"', attrs)
        out.add(ren.group(1) if ren else re.sub(r"_([a-z])", lambda m: m.group(1).upper(), field))
    return out - {"other"}


def test_schema_allows_every_field_of_the_render_platform():
    """values.schema.json is strict, so a platform field it does not list could not be
    set from the chart: keep it in step with the render crate's Platform."""
    src = (ROOT / "crates/render/src/api/platform.rs").read_text()
    schema = json.loads((CHART / "values.schema.json").read_text())
    props, defs = schema["properties"], schema["definitions"]

    def obj(s):
        return next(x for x in s["anyOf"] if x.get("type") == "object") if "anyOf" in s else s

    checks = {
        "Platform": set(props),
        "TransportConfig": set(defs["transport"]["properties"]),
        "TransportSettings": set(defs["transportConfig"]["properties"]),
        "SidecarDefaults": set(obj(props["sidecar"])["properties"]),
        "QueuePlatform": set(obj(props["queue"])["properties"]),
        "KedaPlatform": set(obj(props["keda"])["properties"]),
        "ServiceAccountPlatform": set(obj(props["actorServiceAccount"])["properties"]),
        "S3Config": set(obj(props["s3"])["properties"]),
        "AwsSecretRef": set(defs["awsSecretRef"]["properties"]),
        "SecretKeyRef": set(defs["secretKeyRef"]["properties"]),
    }
    for struct, allowed in checks.items():
        fields = rust_struct_fields(src, struct)
        assert fields, struct
        assert fields <= allowed, f"{struct}: not in values.schema.json: {sorted(fields - allowed)}"
