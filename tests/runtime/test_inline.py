"""Sync handlers run inline on the main thread when the concurrency is 1."""

import time

from client import envelope, frames


def test_sync_handler_runs_on_the_main_thread_at_concurrency_1(start_runtime):
    rt = start_runtime("inline.where", env={"ASYA_RUNTIME_CONCURRENCY": "1"})
    with rt.client() as c:
        out = c.invoke(envelope(None))
    assert frames(out)[0]["payload"] == {"main_thread": True}, out


def test_sync_generator_is_stepped_on_the_main_thread_at_concurrency_1(start_runtime):
    rt = start_runtime("inline.gen_where", env={"ASYA_RUNTIME_CONCURRENCY": "1"})
    with rt.client() as c:
        out = c.invoke(envelope(None))
    assert frames(out)[0]["payload"] == {"main_thread": True}, out


def test_sync_handler_uses_a_worker_thread_above_concurrency_1(start_runtime):
    rt = start_runtime("inline.where", env={"ASYA_RUNTIME_CONCURRENCY": "2"})
    with rt.client() as c:
        out = c.invoke(envelope(None))
    assert frames(out)[0]["payload"] == {"main_thread": False}, out


def test_sync_handler_runs_on_its_connections_own_thread_above_concurrency_1(start_runtime):
    # Threaded mode: the thread that serves a connection calls the handler (no pool).
    rt = start_runtime("inline.thread_of", env={"ASYA_RUNTIME_CONCURRENCY": "2"})
    with rt.client() as a, rt.client() as b:
        on_a = [frames(a.invoke(envelope(None)))[0]["payload"] for _ in range(3)]
        on_b = [frames(b.invoke(envelope(None)))[0]["payload"] for _ in range(3)]
    assert all(p["thread"] == "asya-conn" for p in on_a + on_b), (on_a, on_b)
    assert {p["ident"] for p in on_a} == {on_a[0]["ident"]}, on_a
    assert {p["ident"] for p in on_b} == {on_b[0]["ident"]}, on_b
    assert on_a[0]["ident"] != on_b[0]["ident"]


def test_handler_can_time_itself_out_with_sigalrm(start_runtime):
    rt = start_runtime("inline.alarm_timeout", env={"ASYA_RUNTIME_CONCURRENCY": "1"})
    with rt.client() as c:
        start = time.monotonic()
        out = c.invoke(envelope({"alarm": 0.1, "work": 5}))
        elapsed = time.monotonic() - start
    assert out[-1] == {"type": "done", "frames": 1}, out
    assert frames(out)[0]["payload"] == {"interrupted_by_alarm": True}
    assert elapsed < 4


def test_probe_and_pings_on_new_connections_answered_while_an_inline_handler_runs(start_runtime):
    rt = start_runtime("kinds.sync_sleep")
    with rt.client() as busy:
        busy.send({"op": "invoke", "envelope": envelope({"sleep": 2})})
        time.sleep(0.3)
        for _ in range(3):
            with rt.client(timeout=5) as p:
                start = time.monotonic()
                assert p.ping() == {"type": "pong"}
                assert time.monotonic() - start < 0.5
        assert rt.probe().returncode == 0
        assert busy.read_until_terminal()[-1] == {"type": "done", "frames": 1}


def test_a_connection_that_pinged_first_can_then_invoke(start_runtime):
    rt = start_runtime("kinds.echo")
    with rt.client() as c:
        assert c.ping() == {"type": "pong"}
        assert c.ping() == {"type": "pong"}
        out = c.invoke(envelope({"x": 1}))
        assert frames(out)[0]["payload"] == {"x": 1}
        assert c.ping() == {"type": "pong"}
        out = c.invoke(envelope({"x": 2}))
        assert frames(out)[0]["payload"] == {"x": 2}


def test_sigterm_during_an_inline_handler_stops_accepting_at_once(start_runtime):
    import os
    import signal

    rt = start_runtime("kinds.sync_sleep")
    with rt.client() as c:
        c.send({"op": "invoke", "envelope": envelope({"sleep": 2.0})})
        time.sleep(0.3)
        rt.signal(signal.SIGTERM)
        time.sleep(0.3)  # the handler still runs for ~1.4 s
        assert not os.path.exists(rt.ready_path)
        try:
            rt.client(timeout=2).close()
            refused = False
        except OSError:
            refused = True
        assert refused, "a new connection was accepted after SIGTERM"
        assert c.read_until_terminal()[-1] == {"type": "done", "frames": 1}
    assert rt.wait() == 0


def test_second_signal_during_an_inline_handler_exits_at_once(start_runtime):
    import signal

    rt = start_runtime("kinds.sync_sleep")
    with rt.client() as c:
        c.send({"op": "invoke", "envelope": envelope({"sleep": 30})})
        time.sleep(0.3)
        rt.signal(signal.SIGTERM)
        time.sleep(0.2)
        start = time.monotonic()
        rt.signal(signal.SIGTERM)
        assert rt.wait(timeout=10) == 1
        assert time.monotonic() - start < 3
