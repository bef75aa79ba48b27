#!/usr/bin/env python3
"""Sidecar ↔ runtime wire format, measured: length-prefixed JSON vs HTTP/1.1.

One echo handler, served in the same run by
  (a) our runtime (runtime/asya_runtime.py): 4-byte length + JSON over one
      persistent Unix-socket connection, with a `def` handler (thread pool) and
      an `async def` one (event loop);
  (b) a minimal stdlib http.server on a Unix socket answering POST /invoke with
      {"frames": [...]} the way upstream's runtime does, called with a new
      connection per request (upstream's sidecar) and with HTTP keep-alive.
For each, N sequential round trips of a small envelope and of a 100 KB one, the
transports taking turns in 10 rounds; prints round trips per second, p50/p99
latency, and the ratios.

    python3 bench/runtime_socket.py [--small 5000] [--large 500] [--large-bytes 100000]

The client is Python in every case (the real sidecar is Rust), so absolute
numbers include Python client cost on both sides of the comparison.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "runtime"))

from client import RuntimeClient, RuntimeProcess  # noqa: E402

ECHO_MODULE = "def echo(payload):\n    return payload\n\n\nasync def aecho(payload):\n    return payload\n"

# A stand-in for upstream's runtime: stdlib single-threaded HTTP server on a Unix
# socket, same envelope in, same frame out (route shifted), JSON body.
HTTP_SERVER = r'''
import json, os, socketserver, sys
from http.server import BaseHTTPRequestHandler
sys.path.insert(0, sys.argv[2])
from bench_echo import echo

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        env = json.loads(body)
        result = echo(env["payload"])
        route = env["route"]
        nxt = route["next"]
        frame = {"payload": result,
                 "route": {"prev": route["prev"] + [route["curr"]],
                           "curr": nxt[0] if nxt else "", "next": nxt[1:]},
                 "headers": env.get("headers") or {}}
        out = json.dumps({"frames": [frame]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

path = sys.argv[1]
if os.path.exists(path):
    os.unlink(path)
server = socketserver.UnixStreamServer(path, Handler)
open(path + ".ready", "w").close()
server.serve_forever()
'''


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self.path)


def make_envelope(i: int, payload) -> dict:
    return {"id": f"bench-{i}", "route": {"prev": [], "curr": "echo", "next": ["next"]},
            "headers": {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
            "payload": payload}


def payload_for(size: int) -> dict:
    return {"text": "hello", "n": 1} if size == 0 else {"blob": "x" * size}


class AsyaRunner:
    def __init__(self, path: str, name: str):
        self.client = RuntimeClient(path)
        self.name = name

    def one(self, env: dict) -> None:
        out = self.client.invoke(env)
        if out[-1].get("type") != "done" or out[0]["frame"]["payload"] != env["payload"]:
            raise RuntimeError(f"unexpected reply {out[-1]}")

    def close(self) -> None:
        self.client.close()


class HttpRunner:
    def __init__(self, path: str, keep_alive: bool):
        self.path = path
        self.keep_alive = keep_alive
        self.name = "HTTP/1.1 POST, keep-alive" if keep_alive else "HTTP/1.1 POST, new connection each"
        self.conn = UnixHTTPConnection(path) if keep_alive else None

    def one(self, env: dict) -> None:
        c = self.conn if self.keep_alive else UnixHTTPConnection(self.path)
        c.request("POST", "/invoke", body=json.dumps(env).encode(), headers={"Content-Type": "application/json"})
        resp = c.getresponse()
        reply = json.loads(resp.read())
        if not self.keep_alive:
            c.close()
        if resp.status != 200 or reply["frames"][0]["payload"] != env["payload"]:
            raise RuntimeError(f"unexpected reply {resp.status}")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def measure(runners: list, n: int, size: int, rounds: int = 10) -> dict:
    """Latencies per runner; the runners take turns in rounds so that load spikes
    on a shared machine hit all of them alike."""
    payload = payload_for(size)
    lat = {r.name: [] for r in runners}
    per_round = max(1, n // rounds)
    for r in runners:  # warm-up
        for i in range(max(10, per_round // 5)):
            r.one(make_envelope(i, payload))
    for _ in range(rounds):
        for r in runners:
            for i in range(per_round):
                env = make_envelope(i, payload)
                t0 = time.perf_counter()
                r.one(env)
                lat[r.name].append(time.perf_counter() - t0)
    return lat


def summarise(lat: list[float]) -> tuple[float, float, float]:
    total = sum(lat)
    qs = statistics.quantiles(lat, n=100, method="inclusive")
    return len(lat) / total, qs[49] * 1000, qs[98] * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, default=5000, help="round trips with a small payload")
    ap.add_argument("--large", type=int, default=500, help="round trips with a large payload")
    ap.add_argument("--large-bytes", type=int, default=100_000, help="size of the large payload")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="asya-bench-", dir="/tmp")
    with open(os.path.join(work, "bench_echo.py"), "w") as fh:
        fh.write(ECHO_MODULE)
    # Two single-threaded HTTP servers (as upstream's): a keep-alive connection
    # would otherwise hold the only server while the other runner takes its turn.
    http_paths = [os.path.join(work, "http-new.sock"), os.path.join(work, "http-keep.sock")]
    http_procs = [subprocess.Popen([sys.executable, "-c", HTTP_SERVER, p, work]) for p in http_paths]
    runtime = RuntimeProcess("bench_echo.echo", pythonpath=work, env={"ASYA_LOG_LEVEL": "warning"})
    aruntime = RuntimeProcess("bench_echo.aecho", pythonpath=work, env={"ASYA_LOG_LEVEL": "warning"})
    try:
        runtime.wait_ready()
        aruntime.wait_ready()
        deadline = time.monotonic() + 30
        while not all(os.path.exists(p + ".ready") for p in http_paths):
            if time.monotonic() > deadline or any(p.poll() is not None for p in http_procs):
                raise RuntimeError("http server did not start")
            time.sleep(0.02)

        runners = [
            AsyaRunner(runtime.socket_path, "asya length-prefixed JSON, persistent (def)"),
            HttpRunner(http_paths[0], False),
            HttpRunner(http_paths[1], True),
            AsyaRunner(aruntime.socket_path, "asya length-prefixed JSON, persistent (async def)"),
        ]
        rows = []
        sizes = (("small", args.small, 0), (f"{args.large_bytes // 1000} KB", args.large, args.large_bytes))
        for label, n, size in sizes:
            lat = measure(runners, n, size)
            for r in runners:
                rows.append((label, r.name, summarise(lat[r.name]), len(lat[r.name])))
        for r in runners:
            r.close()
    finally:
        runtime.stop()
        aruntime.stop()
        for proc in http_procs:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print("| payload | transport | n | round trips/s | p50 ms | p99 ms |")
    print("|---|---|---:|---:|---:|---:|")
    for label, name, (rps, p50, p99), n in rows:
        print(f"| {label} | {name} | {n} | {rps:,.0f} | {p50:.3f} | {p99:.3f} |")
    print()
    per_size = len(rows) // 2
    for i in range(0, len(rows), per_size):
        ours = rows[i][2][0]
        print(
            f"{rows[i][0]}: length-prefixed (def handler) is {ours / rows[i + 1][2][0]:.2f}x HTTP new-connection "
            f"and {ours / rows[i + 2][2][0]:.2f}x HTTP keep-alive in round trips/s; "
            f"p50 {rows[i][2][1]:.3f} vs {rows[i + 1][2][1]:.3f} / {rows[i + 2][2][1]:.3f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
