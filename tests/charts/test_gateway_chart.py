"""charts/asya-gateway installed with Helm's own engine into the loopback API server:
seed 001's gateway values as written, the objects of the release manifest, the schema
refusing typos and wrong types, and the rendered tools ConfigMap checked by the gateway
binary's own parser (`asya-gateway --check-config`)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, manifest_objects, values

GATEWAY = ROOT / "charts" / "asya-gateway"


@pytest.fixture(scope="session")
def gateway_bin() -> str:
    """The `asya-gateway` binary (tests/charts/run.sh builds the workspace first)."""
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    for p in (os.environ.get("ASYA_GATEWAY_BIN"), target / "debug" / "asya-gateway"):
        if p and Path(p).is_file():
            return str(p)
    pytest.fail("no asya-gateway binary: run `cargo build --workspace` or set ASYA_GATEWAY_BIN")


def objects(release: dict) -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for o in manifest_objects(release)}


def container(deploy: dict) -> dict:
    (c,) = deploy["spec"]["template"]["spec"]["containers"]
    return c


def env_of(c: dict) -> dict:
    return {e["name"]: e for e in c.get("env", [])}


def check_config(gateway_bin: str, tmp_path: Path, tools_yaml: str) -> subprocess.CompletedProcess:
    f = tmp_path / "tools.yaml"
    f.write_text(tools_yaml, encoding="utf-8")
    return subprocess.run([gateway_bin, "--check-config", "--config", str(f)],
                          capture_output=True, text=True, timeout=30)


def test_seed001_values_install_as_written(helm, kubectl, namespace, gateway_bin, tmp_path):
    """Seed 001's gateway-values.yaml: SQS in us-east-1, PostgreSQL, one tool."""
    rel = helm.install("asya-gateway", GATEWAY, values("seed001-gateway.yaml"))
    objs = objects(rel)
    assert set(objs) == {("Deployment", "asya-gateway"), ("Service", "asya-gateway"),
                         ("Service", "asya-gateway-mesh"), ("ConfigMap", "asya-gateway-tools"),
                         ("ServiceAccount", "asya-gateway")}, sorted(objs)
    # what Helm applied is in the API server
    assert kubectl.get("deployment", "-n", namespace, "asya-gateway")
    assert kubectl.get("service", "-n", namespace, "asya-gateway-mesh")

    c = container(objs[("Deployment", "asya-gateway")])
    assert c["image"] == "ghcr.io/asya-sh/asya-gateway:0.1.0"
    env = env_of(c)
    assert env["ASYA_TRANSPORT"]["value"] == "sqs"
    assert env["ASYA_AWS_REGION"]["value"] == "us-east-1"
    assert env["ASYA_NAMESPACE"]["value"] == namespace
    assert env["ASYA_DATABASE_URL"]["value"] == \
        "postgres://postgres@postgres.default.svc.cluster.local:5432/asya_gateway"
    assert "ASYA_DATABASE_PASSWORD" not in env  # no Secret named: no password at all
    assert not any(k.startswith("ASYA_RABBITMQ") for k in env)
    args = c["args"]
    assert "--mesh-url=http://asya-gateway-mesh.%s.svc.cluster.local:8081" % namespace in args
    assert "--listen=0.0.0.0:8080" in args and "--mesh-listen=0.0.0.0:8081" in args
    assert "--allowed-host=asya-gateway.%s.svc" % namespace in args
    assert not any(a.startswith("--auth-token-file") for a in args)
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"http": 8080, "mesh": 8081}
    # PostgreSQL: no SQLite volume
    vols = {v["name"] for v in objs[("Deployment", "asya-gateway")]["spec"]["template"]["spec"]["volumes"]}
    assert vols == {"tools"}

    api, mesh = objs[("Service", "asya-gateway")], objs[("Service", "asya-gateway-mesh")]
    assert api["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http"}]
    assert mesh["spec"]["type"] == "ClusterIP"
    assert mesh["spec"]["ports"] == [{"name": "mesh", "port": 8081, "targetPort": "mesh"}]

    tools = objs[("ConfigMap", "asya-gateway-tools")]["data"]["tools.yaml"]
    assert yaml.safe_load(tools)["routes"]["tools"][0]["route"] == ["example-actor"]
    p = check_config(gateway_bin, tmp_path, tools)
    assert p.returncode == 0, p.stderr
    assert "1 tool" in p.stdout and "example" in p.stdout, p.stdout


def test_seed001_tools_on_sqlite_and_rabbitmq(helm, namespace, gateway_bin, tmp_path):
    """Seed 001's "Configure Gateway Tools" values alone: RabbitMQ, SQLite in the pod."""
    rel = helm.install("gw", GATEWAY, values("seed001-gateway-tools.yaml"))
    objs = objects(rel)
    deploy = objs[("Deployment", "gw-gateway")]
    c = container(deploy)
    env = env_of(c)
    assert env["ASYA_TRANSPORT"]["value"] == "rabbitmq"
    assert env["ASYA_RABBITMQ_HOST"]["value"] == "rabbitmq.default.svc.cluster.local"
    assert env["ASYA_RABBITMQ_PORT"]["value"] == "5672"
    assert env["ASYA_DATABASE_URL"]["value"] == "sqlite:/var/lib/asya-gateway/tasks.db"
    vols = {v["name"]: v for v in deploy["spec"]["template"]["spec"]["volumes"]}
    assert vols["data"] == {"name": "data", "emptyDir": {}}
    assert {"name": "data", "mountPath": "/var/lib/asya-gateway"} in c["volumeMounts"]
    assert "--mesh-url=http://gw-gateway-mesh.%s.svc.cluster.local:8081" % namespace in c["args"]

    tools = objs[("ConfigMap", "gw-gateway-tools")]["data"]["tools.yaml"]
    p = check_config(gateway_bin, tmp_path, tools)
    assert p.returncode == 0, p.stderr
    assert "text-processor" in p.stdout and "text-preprocess -> text-infer -> text-postprocess" in p.stdout, p.stdout


def test_secrets_auth_and_ingress(helm, namespace):
    """Passwords and the token come from existing Secrets; the Ingress routes the API
    only, never the mesh Service; PostgreSQL allows several replicas."""
    rel = helm.install("gw", GATEWAY, {
        "replicaCount": 2,
        "config": {"postgresHost": "pg.db", "postgresUsername": "gw user", "postgresSslMode": "require",
                   "postgresPasswordSecretRef": {"name": "pg-creds", "key": "pw"},
                   "rabbitmqPasswordSecretRef": {"name": "mq-creds"}, "queueNaming": "legacy"},
        "auth": {"existingSecret": "gw-token"},
        "ingress": {"enabled": True, "className": "nginx", "hosts": ["gw.example.com"]},
        "routes": {"tools": []},
    })
    objs = objects(rel)
    deploy = objs[("Deployment", "gw-gateway")]
    assert deploy["spec"]["replicas"] == 2
    c = container(deploy)
    env = env_of(c)
    assert env["ASYA_DATABASE_URL"]["value"] == "postgres://gw%20user@pg.db:5432/asya_gateway?sslmode=require"
    assert env["ASYA_DATABASE_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "pg-creds", "key": "pw"}
    assert env["ASYA_RABBITMQ_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "mq-creds", "key": "password"}
    assert env["ASYA_QUEUE_NAMING"]["value"] == "legacy"
    assert "--auth-token-file=/etc/asya-gateway/auth/token" in c["args"]
    assert "--allowed-host=gw.example.com" in c["args"]
    vols = {v["name"]: v for v in deploy["spec"]["template"]["spec"]["volumes"]}
    assert vols["auth"]["secret"]["secretName"] == "gw-token"
    assert "data" not in vols

    ing = objs[("Ingress", "gw-gateway")]
    (rule,) = ing["spec"]["rules"]
    assert rule["host"] == "gw.example.com"
    paths = rule["http"]["paths"]
    assert [p["path"] for p in paths] == ["/mcp", "/tasks"]
    assert {p["backend"]["service"]["name"] for p in paths} == {"gw-gateway"}


@pytest.mark.parametrize("bad,needle", [
    # a password in plain values has no key to go to
    ({"config": {"postgresPassword": "secret"}}, "postgresPassword"),
    ({"config": {"postgresPort": "5432"}}, "postgresPort"),
    ({"replicaCount": "2"}, "replicaCount"),
    ({"config": {"transport": "kafka"}}, "transport"),
    ({"routes": {"tools": [{"name": "a", "description": "d", "route": ["x"], "timout": "30s"}]}}, "timout"),
    ({"routes": {"tools": [{"name": "a b", "description": "d", "route": ["x"]}]}}, "/routes/tools/0/name"),
    ({"routes": {"tools": [{"name": "a", "description": "d", "route": []}]}}, "/routes/tools/0/route"),
    ({"routes": {"tools": [{"name": "a", "description": "d", "route": ["x"],
                            "parameters": {"n": {"type": "int"}}}]}}, "/routes/tools/0/parameters/n/type"),
    ({"mesh": {"ingress": True}}, "mesh"),
])
def test_schema_rejects_typos_and_wrong_types(helm, bad, needle):
    with pytest.raises(Exception) as err:
        helm.install("gw", GATEWAY, bad)
    assert needle in str(err.value)


def test_several_replicas_need_postgres(helm):
    with pytest.raises(Exception) as err:
        helm.install("gw", GATEWAY, {"replicaCount": 3})
    assert "config.postgresHost" in str(err.value)


def test_gateway_parser_has_the_last_word(helm, gateway_bin, tmp_path):
    """A tool the schema lets through but the gateway refuses (a default on a required
    parameter): --check-config names the line and field of the rendered file."""
    rel = helm.install("gw", GATEWAY, {"routes": {"tools": [{
        "name": "t", "description": "d", "route": ["a"],
        "parameters": {"text": {"type": "string", "required": True, "default": "x"}}}]}})
    tools = objects(rel)[("ConfigMap", "gw-gateway-tools")]["data"]["tools.yaml"]
    p = check_config(gateway_bin, tmp_path, tools)
    assert p.returncode != 0
    assert "routes.tools[0].parameters.text" in p.stderr, p.stderr
    assert f"{tmp_path / 'tools.yaml'}:" in p.stderr, p.stderr


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: dict | None = None, headers: dict | None = None) -> tuple[int, str]:
    import json
    import urllib.error
    import urllib.request
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return 0, ""


def test_rendered_pod_runs_the_real_gateway(helm, namespace, gateway_bin, tmp_path):
    """The Deployment's own args and env start the real binary (RabbitMQ of the test
    servers; only paths, ports, the broker host and the Secret's file are swapped for
    local ones): every flag the chart passes is one the gateway knows, the token guards
    /tasks, and /mcp accepts the Service's DNS name as Host."""
    import time
    if not os.environ.get("ASYA_TEST_RABBITMQ_URL"):
        pytest.skip("SKIP: ASYA_TEST_RABBITMQ_URL is not set (eval \"$(bash tests/servers/up.sh)\")")
    vals = values("seed001-gateway-tools.yaml")
    vals["auth"] = {"existingSecret": "gw-token"}
    objs = objects(helm.install("gw", GATEWAY, vals))
    c = container(objs[("Deployment", "gw-gateway")])
    (tmp_path / "tools.yaml").write_text(objs[("ConfigMap", "gw-gateway-tools")]["data"]["tools.yaml"])
    (tmp_path / "token").write_text("s3cret\n")
    api, mesh = free_port(), free_port()
    swap = {"--config": str(tmp_path / "tools.yaml"), "--listen": f"127.0.0.1:{api}",
            "--mesh-listen": f"127.0.0.1:{mesh}", "--auth-token-file": str(tmp_path / "token")}
    args = []
    for a in c["args"]:
        flag, _, value = a.partition("=")
        args.append(f"{flag}={swap[flag]}" if flag in swap else a)
    assert len([a for a in args if a.split("=")[0] in swap]) == len(swap), c["args"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASYA_")}
    for e in c["env"]:
        assert "value" in e, f"{e['name']} comes from a Secret in this install"
        env[e["name"]] = e["value"]
    env["ASYA_RABBITMQ_HOST"] = "127.0.0.1"
    env["ASYA_DATABASE_URL"] = f"sqlite:{tmp_path / 'tasks.db'}"
    log = open(tmp_path / "gateway.log", "w")
    p = subprocess.Popen([gateway_bin, *args], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{api}"
        for _ in range(100):
            if http("GET", f"{base}/readyz")[0] == 200:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the gateway did not become ready:\n" + (tmp_path / "gateway.log").read_text())
        task = {"tool": "text-processor", "arguments": {"text": "hi"}}
        assert http("POST", f"{base}/tasks", task)[0] == 401
        status, body = http("POST", f"{base}/tasks", task, {"Authorization": "Bearer s3cret"})
        assert status == 201, body
        assert '"model":"default"' in body  # the seed's default, read from the ConfigMap
        mcp = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        hdrs = {"Authorization": "Bearer s3cret", "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream"}
        status, body = http("POST", f"{base}/mcp", mcp, {**hdrs, "Host": f"gw-gateway.{namespace}.svc"})
        assert status == 200 and "text-processor" in body, body
        status, _ = http("POST", f"{base}/mcp", mcp, {**hdrs, "Host": "evil.example.com"})
        assert status == 403
    finally:
        p.terminate()
        p.wait(timeout=10)
        log.close()
        # the envelope went to a queue of this test's namespace on the shared broker
        import shutil
        if shutil.which("rabbitmqctl"):
            subprocess.run(["rabbitmqctl", "delete_queue", f"asya-{namespace}-text-preprocess"],
                           capture_output=True, timeout=30, check=False)
