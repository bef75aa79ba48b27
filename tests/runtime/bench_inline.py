"""Per-call cost of a sync handler over the real socket, one runtime file against another.

Not a test (pytest does not collect it). Each runtime serves ``kinds.echo`` at
ASYA_RUNTIME_CONCURRENCY=1 in its own process; one client sends invoke after
invoke on a persistent connection. Rounds alternate between the runtimes so load
spikes hit them alike. Reported per call: wall time (round trip, client
included) and the runtime process's CPU time (utime+stime from /proc).

With ``--concurrency N`` (N > 1) the runtimes serve at ASYA_RUNTIME_CONCURRENCY=N
and N connections (as the sidecar holds, one per slot) each keep one invoke in
flight; wall time is then per call of the whole batch.

    git show <base>:runtime/asya_runtime.py > /tmp/base_runtime.py
    python3 tests/runtime/bench_inline.py --baseline /tmp/base_runtime.py
    python3 tests/runtime/bench_inline.py --baseline /tmp/base_runtime.py --concurrency 64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import struct
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from client import RUNTIME, RuntimeProcess, envelope  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def run_round(rt: RuntimeProcess, n: int, deadline_ms: int | None) -> tuple[float, float]:
    req = {"op": "invoke", "envelope": envelope({"text": "hello", "n": 1}, curr="a", nxt=("b",))}
    if deadline_ms is not None:
        req["deadline_ms"] = deadline_ms
    with rt.client() as c:

        def call():
            c.send(req)
            c.read_until_terminal()

        for _ in range(200):  # warm up
            call()
        cpu0, t0 = cpu_seconds(rt.proc.pid), time.perf_counter()
        for _ in range(n):
            call()
        wall, cpu = time.perf_counter() - t0, cpu_seconds(rt.proc.pid) - cpu0
    return wall / n * 1e6, cpu / n * 1e6


def run_round_concurrent(rt: RuntimeProcess, n: int, deadline_ms: int | None, conc: int) -> tuple[float, float]:
    req = {"op": "invoke", "envelope": envelope({"text": "hello", "n": 1}, curr="a", nxt=("b",))}
    if deadline_ms is not None:
        req["deadline_ms"] = deadline_ms
    body = json.dumps(req).encode()
    frame = struct.pack(">I", len(body)) + body

    async def conn(calls: int) -> None:
        reader, writer = await asyncio.open_unix_connection(rt.socket_path)
        try:
            for _ in range(calls):
                writer.write(frame)
                while True:  # responses up to the terminal one (done or error)
                    (length,) = struct.unpack(">I", await reader.readexactly(4))
                    kind = json.loads(await reader.readexactly(length))["type"]
                    if kind not in ("frame", "upstream"):
                        break
        finally:
            writer.close()

    async def batch(calls: int) -> None:
        await asyncio.gather(*(conn(calls) for _ in range(conc)))

    asyncio.run(batch(20))  # warm up
    per = max(1, n // conc)
    cpu0, t0 = cpu_seconds(rt.proc.pid), time.perf_counter()
    asyncio.run(batch(per))
    wall, cpu = time.perf_counter() - t0, cpu_seconds(rt.proc.pid) - cpu0
    return wall / (per * conc) * 1e6, cpu / (per * conc) * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", required=True, help="runtime file to compare against (e.g. main's)")
    ap.add_argument("--runtime", default=RUNTIME, help="runtime file under test (default: this tree's)")
    ap.add_argument("-n", type=int, default=20000, help="invocations per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--deadline-ms", type=int, default=None,
                    help="send this deadline_ms with every invoke (the baseline ignores it)")
    ap.add_argument("--concurrency", type=int, default=1,
                    help="ASYA_RUNTIME_CONCURRENCY and the number of connections, each with one call in flight")
    args = ap.parse_args()
    subjects = {"baseline": args.baseline, "this tree": args.runtime}
    env = {"ASYA_RUNTIME_CONCURRENCY": str(args.concurrency)}
    procs = {k: RuntimeProcess("kinds.echo", runtime=v, env=env).wait_ready() for k, v in subjects.items()}
    results = {k: [] for k in subjects}
    try:
        for _ in range(args.rounds):
            for name, rt in procs.items():
                if args.concurrency > 1:
                    results[name].append(run_round_concurrent(rt, args.n, args.deadline_ms, args.concurrency))
                else:
                    results[name].append(run_round(rt, args.n, args.deadline_ms))
    finally:
        for rt in procs.values():
            rt.stop()
    load = os.getloadavg()[0]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load:.2f}; "
          f"{args.rounds} rounds x {args.n} invokes, sync echo handler, concurrency {args.concurrency}, "
          f"deadline_ms {args.deadline_ms}")
    print("| runtime | wall µs/call (median of rounds, min–max) | runtime CPU µs/call (median, min–max) |")
    print("|---|---|---|")
    med = {}
    for name, rows in results.items():
        walls, cpus = [r[0] for r in rows], [r[1] for r in rows]
        med[name] = (statistics.median(walls), statistics.median(cpus))
        print(f"| {name} | {med[name][0]:.1f} ({min(walls):.1f}–{max(walls):.1f}) "
              f"| {med[name][1]:.1f} ({min(cpus):.1f}–{max(cpus):.1f}) |")
    b, t = med["baseline"], med["this tree"]
    print(f"\nthis tree / baseline: wall {t[0] / b[0]:.2f}x, runtime CPU {t[1] / b[1]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
