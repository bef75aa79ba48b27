"""A stand-in for the Python runtime that keeps the sidecar/runtime contract
of docs/sidecar.md ("Runtime lives"): its ready file carries a `boot` id, and
a call that runs past the request's `deadline_ms` is answered with a terminal
`asya.Timeout` error, after which the process exits (Kubernetes, here the
test, restarts it). One invocation at a time, like a runtime with concurrency
1 and a sync handler. The handler echoes the payload after sleeping
`payload["sleep"]` seconds; `payload["frame_route"]`, when present, is sent as the
frame's route instead of the next step (a runtime breaking the protocol).
"""

import json
import os
import secrets
import socket
import struct
import sys
import threading
import time

SOCKET_DIR = os.environ.get("ASYA_SOCKET_DIR", "/var/run/asya")
SOCKET_PATH = os.path.join(SOCKET_DIR, os.environ.get("ASYA_SOCKET_NAME", "asya-runtime.sock"))
READY_PATH = os.path.join(SOCKET_DIR, "runtime-ready")
BOOT = secrets.token_hex(8)
ONE_AT_A_TIME = threading.Lock()


def log(msg):
    print(f"fake-runtime {BOOT}: {msg}", file=sys.stderr, flush=True)


def read_frame(conn):
    header = b""
    while len(header) < 4:
        chunk = conn.recv(4 - len(header))
        if not chunk:
            return None
        header += chunk
    (length,) = struct.unpack(">I", header)
    body = b""
    while len(body) < length:
        chunk = conn.recv(length - len(body))
        if not chunk:
            return None
        body += chunk
    return json.loads(body)


def send(conn, obj):
    data = json.dumps(obj).encode()
    conn.sendall(struct.pack(">I", len(data)) + data)


def invoke(conn, req):
    env = req["envelope"]
    sleep = float(env["payload"].get("sleep", 0))
    deadline_ms = req.get("deadline_ms")
    with ONE_AT_A_TIME:
        log(f"invoke {env['id']} sleep={sleep} deadline_ms={deadline_ms}")
        if deadline_ms is not None and sleep * 1000 > deadline_ms:
            time.sleep(deadline_ms / 1000)
            send(conn, {"type": "error", "origin": "runtime", "error": {
                "type": "asya.Timeout", "mro": [], "traceback": "",
                "message": f"handler still running after deadline_ms={deadline_ms}; the runtime exits"}})
            log("deadline passed; exiting")
            os._exit(3)
        time.sleep(sleep)
        route = env["route"]
        nxt = route.get("next", [])
        frame = {"payload": env["payload"], "headers": env.get("headers") or {},
                 "route": {"prev": route["prev"] + [route["curr"]],
                           "curr": nxt[0] if nxt else "", "next": nxt[1:]}}
        if "frame_route" in env["payload"]:
            # A runtime that breaks the protocol: this as the frame's route, as is.
            frame["route"] = env["payload"]["frame_route"]
        send(conn, {"type": "frame", "frame": frame})
        send(conn, {"type": "done", "frames": 1})


def serve(conn):
    with conn:
        while True:
            req = read_frame(conn)
            if req is None:
                return
            if req.get("op") == "ping":
                send(conn, {"type": "pong"})
            else:
                invoke(conn, req)


def main():
    for stale in (READY_PATH, SOCKET_PATH):
        try:
            os.unlink(stale)
        except FileNotFoundError:
            pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(SOCKET_PATH)
    srv.listen(64)
    with open(READY_PATH + ".tmp", "w") as fh:
        json.dump({"pid": os.getpid(), "handler": "fake", "boot": BOOT}, fh)
    os.replace(READY_PATH + ".tmp", READY_PATH)
    log("ready")
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
