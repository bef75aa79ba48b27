"""A small client for the sidecar ↔ runtime protocol, plus a process wrapper.

Used by the runtime's pytest suite and by ``bench/runtime_socket.py``. The
framing is the one in ``docs/runtime-protocol.md``: every message is a 4-byte
big-endian length followed by UTF-8 JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RUNTIME = os.path.join(ROOT, "runtime", "asya_runtime.py")
HANDLERS = os.path.join(ROOT, "tests", "runtime", "handlers")
TERMINAL = ("done", "error")
# The interpreter the runtimes under test run on (ASYA_TEST_RUNTIME_PYTHON runs the
# whole suite's runtimes under another one).
RUNTIME_PYTHON = os.environ.get("ASYA_TEST_RUNTIME_PYTHON") or sys.executable
_HEADER = struct.Struct(">I")


class ClosedError(ConnectionError):
    """The runtime closed the connection."""


class RuntimeClient:
    """One persistent connection to the runtime's Unix socket."""

    def __init__(self, path: str, timeout: float = 30.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, obj) -> None:
        body = json.dumps(obj, separators=(",", ":")).encode()
        self.sock.sendall(_HEADER.pack(len(body)) + body)

    def _recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(min(n - len(buf), 1 << 20))
            if not chunk:
                raise ClosedError(f"connection closed after {len(buf)} of {n} bytes")
            buf += chunk
        return bytes(buf)

    def recv(self):
        (length,) = _HEADER.unpack(self._recv_exact(4))
        return json.loads(self._recv_exact(length))

    def ping(self) -> dict:
        self.send({"op": "ping"})
        return self.recv()

    def invoke(self, envelope) -> list:
        """All responses for one invoke, the terminal one last."""
        self.send({"op": "invoke", "envelope": envelope})
        return self.read_until_terminal()

    def read_until_terminal(self) -> list:
        out = []
        while True:
            msg = self.recv()
            out.append(msg)
            if msg.get("type") in TERMINAL:
                return out


def runtime_python_can(code: str) -> bool:
    """Whether the runtime's interpreter runs ``code`` without error."""
    return subprocess.run([RUNTIME_PYTHON, "-c", code], capture_output=True, timeout=60).returncode == 0


def envelope(payload, curr="a", nxt=(), prev=(), id="env-1", headers=None, status=None, **extra) -> dict:
    env = {
        "id": id,
        "route": {"prev": list(prev), "curr": curr, "next": list(nxt)},
        "headers": {} if headers is None else headers,
        "payload": payload,
    }
    if status is not None:
        env["status"] = status
    env.update(extra)
    return env


def frames(responses: list) -> list:
    return [r["frame"] for r in responses if r.get("type") == "frame"]


class RuntimeProcess:
    """``python3 runtime/asya_runtime.py`` as a real subprocess in a temp socket dir."""

    def __init__(self, handler: str | None, env: dict | None = None, cwd: str | None = None,
                 python: str | None = None, pythonpath: str = HANDLERS, args: tuple = (),
                 runtime: str = RUNTIME):
        # A short dir under /tmp: Unix socket paths are limited to ~107 bytes.
        self.dir = tempfile.mkdtemp(prefix="asya-rt-", dir="/tmp")
        self.socket_path = os.path.join(self.dir, "asya-runtime.sock")
        self.ready_path = os.path.join(self.dir, "runtime-ready")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ASYA_")}
        self.env.update({"ASYA_SOCKET_DIR": self.dir, "PYTHONPATH": pythonpath, "PYTHONUNBUFFERED": "1"})
        # The suite runs once more with a sync handler's threaded mode as the default.
        if os.environ.get("ASYA_TEST_RUNTIME_CONCURRENCY"):
            self.env["ASYA_RUNTIME_CONCURRENCY"] = os.environ["ASYA_TEST_RUNTIME_CONCURRENCY"]
        if handler is not None:
            self.env["ASYA_HANDLER"] = handler
        self.env.update(env or {})
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [python or RUNTIME_PYTHON, runtime, *args],
            env=self.env, cwd=cwd or self.dir, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=self._stderr,
        )

    def stderr(self) -> str:
        with open(self.stderr_path, encoding="utf-8", errors="replace") as fh:
            return fh.read()

    def wait_ready(self, timeout: float = 30.0) -> "RuntimeProcess":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"runtime exited with {self.proc.returncode}:\n{self.stderr()}")
            if os.path.exists(self.ready_path):
                return self
            time.sleep(0.02)
        raise TimeoutError(f"runtime not ready after {timeout}s:\n{self.stderr()}")

    def client(self, timeout: float = 30.0) -> RuntimeClient:
        return RuntimeClient(self.socket_path, timeout=timeout)

    def signal(self, sig=signal.SIGTERM) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        return self.proc.wait(timeout=timeout)

    def probe(self, timeout: float = 15.0) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, RUNTIME, "--probe"], env=self.env, capture_output=True, timeout=timeout,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
