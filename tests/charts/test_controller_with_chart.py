"""The controller runs with exactly what the chart installs — its platform
ConfigMap and its ServiceAccount's RBAC (the SA's own token, not the admin) —
and converges an example actor, then removes it (finalizer, queue)."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import time

import yaml
from conftest import CHART, ROOT


def wait_for(what: str, fn, timeout: float = 90.0, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"controller exited ({proc.returncode}) while waiting for {what}")
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def sa_kubeconfig(kubectl, namespace: str, sa: str, path) -> str:
    """A kubeconfig that authenticates as the chart's ServiceAccount (token from the
    Secret 1.20's token controller creates)."""
    def token():
        obj = kubectl.get("serviceaccount", "-n", namespace, sa)
        for ref in (obj or {}).get("secrets") or []:
            sec = kubectl.get("secret", "-n", namespace, ref["name"])
            if sec and sec.get("data", {}).get("token"):
                return base64.b64decode(sec["data"]["token"]).decode()
        return None
    tok = wait_for(f"a token for ServiceAccount {sa}", token, 60)
    admin = json.loads(kubectl.run("config", "view", "--raw", "--minify", "-o", "json").stdout)
    cluster = admin["clusters"][0]["cluster"]
    cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "sa",
           "clusters": [{"name": "c", "cluster": cluster}],
           "users": [{"name": "sa", "user": {"token": tok}}],
           "contexts": [{"name": "sa", "context": {"cluster": "c", "user": "sa", "namespace": namespace}}]}
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def strip(v, key: str):
    if isinstance(v, dict):
        return {k: strip(x, key) for k, x in v.items() if k != key}
    if isinstance(v, list):
        return [strip(x, key) for x in v]
    return v


def install_keda_crds(kubectl):
    """KEDA's real CRDs, without CEL rules (1.20 rejects x-kubernetes-validations),
    like the controller's own tests install them."""
    for f in sorted((ROOT / "tests/k8s/crds/keda").glob("*.yaml")):
        crd = strip(yaml.safe_load(f.read_text()), "x-kubernetes-validations")
        if kubectl.get("crd", crd["metadata"]["name"]) is None:
            kubectl.run("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=yaml.safe_dump(crd))
    kubectl.run("wait", "--for=condition=Established", "--timeout=60s", "crd/scaledobjects.keda.sh",
                "crd/triggerauthentications.keda.sh")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_controller_converges_an_actor_with_the_charts_platform_and_rbac(helm, kubectl, namespace, asya_bin, tmp_path):
    install_keda_crds(kubectl)
    helm.install("asya", CHART, {
        "watchNamespace": namespace,
        "leaderElection": {"enabled": False},
        "transports": {"rabbitmq": {"config": {"host": "127.0.0.1", "port": 5672, "username": "guest"}}},
    })
    platform = tmp_path / "platform.yaml"
    platform.write_text(kubectl.get("configmap", "-n", namespace, "asya-platform")["data"]["platform.yaml"])
    kubeconfig = sa_kubeconfig(kubectl, namespace, "asya-controller", tmp_path / "sa.kubeconfig")
    log = open(tmp_path / "controller.log", "w+")
    proc = subprocess.Popen(
        [asya_bin, "controller", "--kubeconfig", kubeconfig, "--platform", str(platform),
         "--namespace", namespace, "--metrics-addr", f"127.0.0.1:{free_port()}", "--resync-seconds", "30"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "ASYA_RABBITMQ_PASSWORD": "guest"})
    try:
        actor = yaml.safe_load((ROOT / "examples/echo.yaml").read_text())
        actor["metadata"]["namespace"] = namespace
        # The KEDA secret the platform names (the platform engineer's, not the chart's);
        # without it the controller reports SecretMissing and the actor is Degraded.
        kubectl.run("create", "secret", "generic", "rabbitmq-keda-secret", "-n", namespace,
                    "--from-literal=managementUrl=http://guest:guest@127.0.0.1:15672/%2f")
        kubectl.run("apply", "-f", "-", stdin=yaml.safe_dump(actor))

        dep = wait_for("Deployment echo", lambda: kubectl.get("deployment", "-n", namespace, "echo"), proc=proc)
        sidecar = next(c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == "asya-sidecar")
        env = {e["name"]: e.get("value") for e in sidecar["env"]}
        assert env["ASYA_RABBITMQ_HOST"] == "127.0.0.1"  # from the chart's platform
        assert kubectl.get("scaledobject.keda.sh", "-n", namespace, "echo")

        def transport_ready():
            st = (kubectl.get("asyncactor.asya.sh", "-n", namespace, "echo") or {}).get("status") or {}
            conds = {c["type"]: c for c in st.get("conditions", [])}
            return conds.get("TransportReady", {}).get("status") == "True" and st
        status = wait_for("TransportReady=True", transport_ready, proc=proc)
        assert status["phase"] in ("Creating", "Napping", "Running"), status

        kubectl.run("delete", "asyncactor.asya.sh", "-n", namespace, "echo", "--wait=false")
        wait_for("the actor's finalizer to be removed",
                 lambda: kubectl.get("asyncactor.asya.sh", "-n", namespace, "echo") is None, proc=proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.seek(0)
        text = log.read()
        log.close()
    assert "forbidden" not in text.lower(), text[-3000:]
