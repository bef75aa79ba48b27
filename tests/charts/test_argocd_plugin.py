"""The Argo CD Config Management Plugin, run the way Argo CD's CMP server runs it:
discovery by its file pattern, then the generate command in the source directory
with Argo CD's environment. Objects only on stdout; errors on stderr, non-zero exit."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml
from conftest import ROOT

PLUGIN = yaml.safe_load((ROOT / "argocd/plugin.yaml").read_text())["spec"]


def source_dir(tmp_path: Path) -> Path:
    """A directory laid out like an Argo CD Application source for the plugin."""
    src = tmp_path / "app"
    (src / "actors").mkdir(parents=True)
    (src / "flavors").mkdir()
    actor = yaml.safe_load((ROOT / "examples/echo.yaml").read_text())
    del actor["metadata"]["namespace"]
    actor["spec"]["flavors"] = ["gpu-t4"]
    (src / "actors/echo.yaml").write_text(yaml.safe_dump(actor))
    shutil.copy(ROOT / "flavors/gpu-t4.yaml", src / "flavors/gpu-t4.yaml")
    return src


def generate(asya_bin: str, src: Path) -> subprocess.CompletedProcess:
    # the sidecar image has `asya` on PATH
    bindir = src.parent / "bin"
    bindir.mkdir(exist_ok=True)
    (bindir / "asya").symlink_to(asya_bin)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}",
           "ARGOCD_APP_NAME": "demo", "ARGOCD_APP_NAMESPACE": "team-a", "ARGOCD_APP_SOURCE_PATH": "app"}
    return subprocess.run(PLUGIN["generate"]["command"], cwd=src, env=env, capture_output=True, text=True, timeout=60)


def test_discovery_pattern_matches_the_layout(tmp_path):
    src = source_dir(tmp_path)
    pattern = PLUGIN["discover"]["fileName"]
    assert list(src.glob(pattern.removeprefix("./")))
    assert not list((tmp_path / "empty").glob(pattern.removeprefix("./")))


def test_generate_prints_only_objects(asya_bin, tmp_path):
    p = generate(asya_bin, source_dir(tmp_path))
    assert p.returncode == 0, p.stderr
    objs = [d for d in yaml.safe_load_all(p.stdout) if d]
    assert {o["kind"] for o in objs} >= {"Deployment", "ScaledObject"}
    assert all("apiVersion" in o and "metadata" in o for o in objs)
    dep = next(o for o in objs if o["kind"] == "Deployment")
    # the flavor from the same source tree was applied
    assert dep["spec"]["template"]["spec"]["nodeSelector"]["nvidia.com/gpu.product"] == "Tesla-T4"


def test_generate_fails_with_the_error_on_stderr(asya_bin, tmp_path):
    src = source_dir(tmp_path)
    (src / "actors/broken.yaml").write_text(
        "apiVersion: asya.sh/v1alpha1\nkind: AsyncActor\nmetadata: {name: broken}\nspec: {actor: broken, image: x}\n")
    p = generate(asya_bin, src)
    assert p.returncode != 0
    assert p.stdout.strip() == ""
    assert "broken.yaml" in p.stderr and "handler" in p.stderr
