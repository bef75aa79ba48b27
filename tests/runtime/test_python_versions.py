"""The runtime promises Python >= 3.10: run it under every other interpreter found here.

Interpreters are looked up as python3.10, python3.12, python3.13 on PATH, then in
pyenv's versions dir (plus any listed in ASYA_TEST_EXTRA_PYTHONS, space separated);
a version not installed is skipped.
"""

import glob
import os
import shutil
import signal
import subprocess

import pytest

from client import RuntimeProcess, envelope, frames

CANDIDATES = ["python3.10", "python3.12", "python3.13"] + os.environ.get("ASYA_TEST_EXTRA_PYTHONS", "").split()


def _works(path):
    try:
        return subprocess.run([path, "-c", "import sys; assert sys.version_info >= (3, 10)"],
                              capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def usable(name):
    candidates = [shutil.which(name)]
    if name.startswith("python3."):
        root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
        candidates += sorted(glob.glob(os.path.join(root, "versions", name[len("python"):] + ".*", "bin", "python3")))
    for path in candidates:
        if path and _works(path):
            return path
    return None


@pytest.mark.parametrize("name", CANDIDATES)
def test_runtime_serves_every_kind_under_other_pythons(name):
    python = usable(name)
    if python is None:
        pytest.skip(f"{name} is not installed")
    for handler, expected in [("abi.async_abi", 1), ("kinds.gen_three", 3), ("kinds.echo", 1)]:
        rt = RuntimeProcess(handler, python=python)
        try:
            rt.wait_ready()
            with rt.client() as c:
                out = c.invoke(envelope({"x": 1}, nxt=["b"]))
            assert out[-1] == {"type": "done", "frames": expected}, rt.stderr()
            assert len(frames(out)) == expected
            rt.signal(signal.SIGTERM)
            assert rt.wait() == 0
        finally:
            rt.stop()


@pytest.mark.parametrize("name", CANDIDATES)
def test_deadlines_under_other_pythons(name, tmp_path):
    python = usable(name)
    if python is None:
        pytest.skip(f"{name} is not installed")
    mark = str(tmp_path / "cancelled")
    rt = RuntimeProcess("kinds.async_sleep_marks_cancel", python=python)
    try:
        rt.wait_ready()
        with rt.client() as c:
            c.send({"op": "invoke", "envelope": envelope({"sleep": 60, "mark": mark}), "deadline_ms": 200})
            out = c.read_until_terminal()
            assert out[-1]["error"]["type"] == "asya.Timeout", out
            out = c.invoke(envelope({"sleep": 0.01, "mark": mark}))
            assert out[-1] == {"type": "done", "frames": 1}, rt.stderr()
    finally:
        rt.stop()
    rt = RuntimeProcess("kinds.sync_sleep", python=python)
    try:
        rt.wait_ready()
        with rt.client() as c:
            c.send({"op": "invoke", "envelope": envelope({"sleep": 60}), "deadline_ms": 200})
            assert c.read_until_terminal()[-1]["error"]["type"] == "asya.Timeout"
        assert rt.wait(timeout=15) == 124
    finally:
        rt.stop()
