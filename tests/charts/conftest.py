"""Fixtures of the chart tests: the real Helm engine (PyPI helm-sdkpy, Helm's Go
library) against the loopback kube-apiserver ($ASYA_TEST_KUBECONFIG), kubectl for
reading what was installed, and the `asya` binary for checking the rendered
platform with the render crate itself."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "asya"
CREW = ROOT / "charts" / "asya-crew"
VALUES = Path(__file__).resolve().parent / "values"


def _kubeconfig() -> str | None:
    path = os.environ.get("ASYA_TEST_KUBECONFIG")
    return path if path and Path(path).is_file() else None


@pytest.fixture(scope="session")
def kubeconfig() -> str:
    path = _kubeconfig()
    if not path:
        pytest.skip("SKIP: ASYA_TEST_KUBECONFIG is not set or missing (no API server)")
    return path


class Kubectl:
    def __init__(self, kubeconfig: str):
        self.kubeconfig = kubeconfig

    def run(self, *args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["kubectl", "--kubeconfig", self.kubeconfig, *args],
            input=stdin, capture_output=True, text=True, check=check, timeout=60,
        )

    def get(self, *args: str) -> dict | None:
        """The object as JSON, or None when it does not exist."""
        p = self.run("get", *args, "-o", "json", check=False)
        if p.returncode != 0:
            if "NotFound" in p.stderr or "not found" in p.stderr:
                return None
            raise AssertionError(f"kubectl get {args}: {p.stderr}")
        return json.loads(p.stdout)


@pytest.fixture(scope="session")
def kubectl(kubeconfig) -> Kubectl:
    return Kubectl(kubeconfig)


class Helm:
    """install / upgrade / uninstall with Helm's own engine; no wait (the loopback
    API server has no kubelet, so pods never become ready)."""

    def __init__(self, kubeconfig: str, namespace: str):
        import helm_sdkpy

        self.h = helm_sdkpy
        self.cfg = helm_sdkpy.Configuration(namespace=namespace, kubeconfig=kubeconfig)
        self.namespace = namespace

    def install(self, release: str, chart: Path, values: dict) -> dict:
        return asyncio.run(self.h.Install(self.cfg).run(
            release, str(chart), values=values, create_namespace=True, wait=False, timeout=120))

    def upgrade(self, release: str, chart: Path, values: dict) -> dict:
        return asyncio.run(self.h.Upgrade(self.cfg).run(release, str(chart), values=values, wait=False, timeout=120))

    def uninstall(self, release: str) -> dict:
        return asyncio.run(self.h.Uninstall(self.cfg).run(release, wait=False, timeout=120))

    def releases(self) -> list[str]:
        return [r.get("name") for r in asyncio.run(self.h.List(self.cfg).run(all=True)) or []]


@pytest.fixture
def namespace(kubectl) -> str:
    """A fresh namespace per test, deleted afterwards (with whatever is left in it)."""
    ns = f"chart-{uuid.uuid4().hex[:8]}"
    kubectl.run("create", "namespace", ns)
    yield ns
    kubectl.run("delete", "namespace", ns, "--wait=false", check=False)


@pytest.fixture
def helm(kubeconfig, namespace):
    """Helm bound to the test namespace; releases left behind are uninstalled."""
    h = Helm(kubeconfig, namespace)
    yield h
    for name in h.releases():
        try:
            h.uninstall(name)
        except Exception:  # noqa: BLE001 - cleanup must go on
            pass


def values(name: str) -> dict:
    """A values file of tests/charts/values (the seeds' values, copied as written)."""
    return yaml.safe_load((VALUES / name).read_text(encoding="utf-8")) or {}


def manifest_objects(release: dict) -> list[dict]:
    """The objects of a release manifest (what Helm rendered and applied)."""
    return [d for d in yaml.safe_load_all(release.get("manifest", "")) if d]


@pytest.fixture(scope="session")
def asya_bin() -> str:
    """The `asya` CLI (built by tests/run.sh before this suite)."""
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    for p in (os.environ.get("ASYA_BIN"), target / "debug" / "asya", shutil.which("asya")):
        if p and Path(p).is_file():
            return str(p)
    pytest.fail("no asya binary: run `cargo build -p asya-cli` (tests/run.sh does) or set ASYA_BIN")

