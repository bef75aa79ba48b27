"""Readiness, probes, concurrency and graceful shutdown of a real runtime process."""

import os
import signal
import time

import pytest

from client import RuntimeProcess, envelope, frames


def wait_until(predicate, timeout=20.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def test_ready_file_and_socket_exist_while_serving_and_are_removed_on_exit(start_runtime):
    rt = start_runtime("kinds.echo")
    assert os.path.exists(rt.ready_path)
    assert os.path.exists(rt.socket_path)
    rt.signal(signal.SIGTERM)
    assert rt.wait() == 0
    assert not os.path.exists(rt.ready_path)
    assert not os.path.exists(rt.socket_path)


def test_sigint_also_exits_cleanly(start_runtime):
    rt = start_runtime("kinds.echo")
    rt.signal(signal.SIGINT)
    assert rt.wait() == 0


def test_probe_succeeds_when_ready(start_runtime):
    rt = start_runtime("kinds.echo")
    result = rt.probe()
    assert result.returncode == 0, result.stderr


def test_probe_fails_without_ready_file():
    rt = RuntimeProcess("no_such_module_abc.run")
    try:
        rt.wait(timeout=30)
        result = rt.probe()
    finally:
        rt.stop()
    assert result.returncode == 1
    assert b"runtime-ready" in result.stderr


def test_probe_fails_when_ready_file_exists_but_nobody_answers(start_runtime):
    rt = start_runtime("kinds.echo")
    rt.proc.kill()  # SIGKILL: no cleanup, stale ready file and socket stay behind
    rt.wait()
    assert os.path.exists(rt.ready_path)
    result = rt.probe()
    assert result.returncode == 1
    assert b"ping" in result.stderr


def test_async_handlers_run_concurrently(start_runtime):
    n, sleep = 8, 0.5
    rt = start_runtime("kinds.async_sleep", env={"ASYA_RUNTIME_CONCURRENCY": str(n)})
    clients = [rt.client() for _ in range(n)]
    try:
        start = time.monotonic()
        for i, c in enumerate(clients):
            c.send({"op": "invoke", "envelope": envelope({"sleep": sleep}, id=f"c{i}")})
        results = [c.read_until_terminal() for c in clients]
        elapsed = time.monotonic() - start
    finally:
        for c in clients:
            c.close()
    assert all(r[-1] == {"type": "done", "frames": 1} for r in results)
    assert elapsed < n * sleep * 0.6, f"{n} concurrent sleeps of {sleep}s took {elapsed:.2f}s"


@pytest.mark.parametrize("handler", ["kinds.async_sleep", "kinds.sync_sleep"])
def test_concurrency_limit_is_respected(start_runtime, handler):
    # sync_sleep: served on each connection's thread, admitted by the runtime's own count
    rt = start_runtime(handler, env={"ASYA_RUNTIME_CONCURRENCY": "2"})
    clients = [rt.client() for _ in range(4)]
    try:
        start = time.monotonic()
        for c in clients:
            c.send({"op": "invoke", "envelope": envelope({"sleep": 0.4})})
        for c in clients:
            c.read_until_terminal()
        elapsed = time.monotonic() - start
    finally:
        for c in clients:
            c.close()
    assert elapsed >= 0.75, f"4 sleeps of 0.4 s at concurrency 2 took only {elapsed:.2f}s"


def test_sync_handlers_run_in_threads_concurrently(start_runtime):
    n, sleep = 4, 0.5
    rt = start_runtime("kinds.sync_sleep", env={"ASYA_RUNTIME_CONCURRENCY": str(n)})
    clients = [rt.client() for _ in range(n)]
    try:
        start = time.monotonic()
        for c in clients:
            c.send({"op": "invoke", "envelope": envelope({"sleep": sleep})})
        for c in clients:
            assert c.read_until_terminal()[-1]["type"] == "done"
        elapsed = time.monotonic() - start
    finally:
        for c in clients:
            c.close()
    assert elapsed < n * sleep * 0.6


def test_slow_sync_handler_does_not_block_pings(start_runtime):
    rt = start_runtime("kinds.sync_sleep")
    with rt.client() as busy, rt.client(timeout=10) as pinger:
        busy.send({"op": "invoke", "envelope": envelope({"sleep": 3})})
        time.sleep(0.2)  # let the handler start
        start = time.monotonic()
        assert pinger.ping() == {"type": "pong"}
        assert time.monotonic() - start < 1.5
        assert rt.probe().returncode == 0
        assert busy.read_until_terminal()[-1] == {"type": "done", "frames": 1}


def test_sigterm_during_slow_handler_delivers_its_reply_then_exits_0(start_runtime):
    rt = start_runtime("kinds.sync_sleep")
    with rt.client() as c:
        c.send({"op": "invoke", "envelope": envelope({"sleep": 1.5}, id="slow")})
        time.sleep(0.3)  # the handler is running
        rt.signal(signal.SIGTERM)
        # stop accepting: the ready file goes away and new connections are refused
        assert wait_until(lambda: not os.path.exists(rt.ready_path), timeout=5)
        try:
            rt.client(timeout=5).close()
            refused = False
        except OSError:
            refused = True
        assert refused, "a new connection was accepted after SIGTERM"
        out = c.read_until_terminal()
    assert frames(out)[0]["payload"] == {"slept": 1.5}
    assert out[-1] == {"type": "done", "frames": 1}
    assert rt.wait() == 0
    assert not os.path.exists(rt.socket_path)


def test_sigterm_with_async_handlers_in_flight(start_runtime):
    rt = start_runtime("kinds.async_sleep", env={"ASYA_RUNTIME_CONCURRENCY": "3"})
    clients = [rt.client() for _ in range(3)]
    try:
        for c in clients:
            c.send({"op": "invoke", "envelope": envelope({"sleep": 1.0})})
        time.sleep(0.3)
        rt.signal(signal.SIGTERM)
        results = [c.read_until_terminal() for c in clients]
    finally:
        for c in clients:
            c.close()
    assert all(r[-1] == {"type": "done", "frames": 1} for r in results)
    assert rt.wait() == 0


def test_grace_period_bounds_shutdown(start_runtime):
    rt = start_runtime("kinds.sync_sleep", env={"ASYA_SHUTDOWN_GRACE": "500ms"})
    with rt.client() as c:
        c.send({"op": "invoke", "envelope": envelope({"sleep": 30})})
        time.sleep(0.3)
        start = time.monotonic()
        rt.signal(signal.SIGTERM)
        code = rt.wait(timeout=20)
    assert time.monotonic() - start < 10
    assert code == 1  # work was abandoned: not a clean exit
    assert "grace" in rt.stderr()


def test_pings_answered_while_many_handlers_are_busy(start_runtime):
    rt = start_runtime("kinds.async_sleep", env={"ASYA_RUNTIME_CONCURRENCY": "2"})
    clients = [rt.client() for _ in range(4)]
    try:
        for c in clients:
            c.send({"op": "invoke", "envelope": envelope({"sleep": 1.0})})
        with rt.client(timeout=5) as p:
            assert p.ping() == {"type": "pong"}  # pings bypass the concurrency limit
        for c in clients:
            assert c.read_until_terminal()[-1] == {"type": "done", "frames": 1}
    finally:
        for c in clients:
            c.close()


def test_socket_name_and_mode_follow_the_environment(start_runtime):
    import stat

    rt = start_runtime("kinds.echo", env={"ASYA_SOCKET_NAME": "custom.sock", "ASYA_SOCKET_CHMOD": "0o660"})
    path = os.path.join(rt.dir, "custom.sock")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    rt.socket_path = path
    with rt.client() as c:
        assert c.ping() == {"type": "pong"}
    assert rt.probe().returncode == 0


def test_json_log_format_with_handler_error(start_runtime):
    import json

    rt = start_runtime("kinds.logs_and_raises", env={"ASYA_LOG_FORMAT": "json", "ASYA_LOG_LEVEL": "DEBUG"})
    with rt.client() as c:
        c.invoke(envelope(1, id="json-log-id"))
    rt.signal(signal.SIGTERM)
    assert rt.wait() == 0
    records = [json.loads(line) for line in rt.stderr().splitlines() if line.strip()]
    errors = [r for r in records if r["level"] == "error"]
    assert any("json-log-id" in r["msg"] and "ValueError: for the json log" in r["msg"] for r in errors)
    assert any(r["level"] == "debug" and "Traceback" in r["msg"] for r in records)


def test_stale_socket_and_ready_file_are_replaced_at_startup(start_runtime):
    first = start_runtime("kinds.echo")
    first.proc.kill()
    first.wait()
    assert os.path.exists(first.ready_path)  # left behind by SIGKILL
    second = start_runtime("kinds.echo", env={"ASYA_SOCKET_DIR": first.dir}, ready=False)
    second.ready_path, second.socket_path = first.ready_path, first.socket_path
    assert wait_until(lambda: second.probe().returncode == 0, timeout=20)


def test_caller_disconnect_cancels_an_async_invocation_and_frees_its_slot(start_runtime):
    rt = start_runtime("kinds.async_sleep_marks_cancel", env={"ASYA_RUNTIME_CONCURRENCY": "1"})
    mark = os.path.join(rt.dir, "cancelled")
    c = rt.client()
    c.send({"op": "invoke", "envelope": envelope({"sleep": 60, "mark": mark})})
    time.sleep(0.3)
    c.close()  # like a sidecar giving up on a timed-out handler
    assert wait_until(lambda: os.path.exists(mark), timeout=10), rt.stderr()
    with rt.client(timeout=15) as c2:  # the only slot is free again
        out = c2.invoke(envelope({"sleep": 0.01, "mark": mark}))
    assert out[-1] == {"type": "done", "frames": 1}
    assert "invocation cancelled" in rt.stderr()


def test_request_on_an_open_connection_during_drain_is_still_served(start_runtime):
    rt = start_runtime("kinds.sync_sleep", env={"ASYA_RUNTIME_CONCURRENCY": "2"})
    with rt.client() as slow, rt.client() as late:
        assert late.ping() == {"type": "pong"}  # connected before SIGTERM
        slow.send({"op": "invoke", "envelope": envelope({"sleep": 2.0})})
        time.sleep(0.3)
        rt.signal(signal.SIGTERM)
        assert wait_until(lambda: not os.path.exists(rt.ready_path), timeout=5)
        out = late.invoke(envelope({"sleep": 0.01}, id="late"))
        assert out[-1] == {"type": "done", "frames": 1}
        assert slow.read_until_terminal()[-1] == {"type": "done", "frames": 1}
    assert rt.wait() == 0
