"""The timeout contract with the sidecar: boot id in runtime-ready, deadline_ms on invoke."""

import json
import os
import re
import time

from client import envelope, frames


def invoke_with_deadline(c, env, ms):
    c.send({"op": "invoke", "envelope": env, "deadline_ms": ms})
    return c.read_until_terminal()


def wait_exit(rt, timeout=15):
    return rt.wait(timeout=timeout)


def test_ready_file_carries_a_boot_id_unique_per_start(start_runtime):
    boots = []
    for _ in range(2):
        rt = start_runtime("kinds.echo")
        with open(rt.ready_path) as fh:
            content = json.load(fh)
        assert content["pid"] == rt.proc.pid
        assert re.fullmatch(r"[0-9a-f]{32}", content["boot"]), content
        boots.append(content["boot"])
        rt.stop()
    assert boots[0] != boots[1]


def assert_timeout_error(out, exiting):
    assert len(out) == 1, out
    err = out[0]
    assert err["type"] == "error" and err["origin"] == "runtime", err
    assert err["error"]["type"] == "asya.Timeout"
    assert "TimeoutError" in err["error"]["mro"]
    assert "deadline of 300 ms" in err["error"]["message"]
    assert ("exits (code 124)" in err["error"]["message"]) == exiting


def test_inline_sync_handler_past_its_deadline_answers_timeout_and_exits_124(start_runtime):
    rt = start_runtime("kinds.sync_sleep")
    with rt.client() as c:
        start = time.monotonic()
        out = invoke_with_deadline(c, envelope({"sleep": 60}, id="stuck"), 300)
        answered = time.monotonic() - start
    assert_timeout_error(out, exiting=True)
    assert 0.25 < answered < 3, answered
    assert not os.path.exists(rt.ready_path)  # gone before the answer was written
    assert wait_exit(rt) == 124
    assert "envelope stuck" in rt.stderr()


def test_inline_sync_generator_past_its_deadline_exits_124(start_runtime):
    rt = start_runtime("inline.gen_sleeps")
    with rt.client() as c:
        out = invoke_with_deadline(c, envelope({"sleep": 60}), 300)
    assert [o["type"] for o in out] == ["frame", "error"], out
    assert_timeout_error(out[1:], exiting=True)
    assert wait_exit(rt) == 124


def test_pool_sync_handler_past_its_deadline_exits_124_after_the_others_finish(start_runtime):
    rt = start_runtime("kinds.sync_sleep", env={"ASYA_RUNTIME_CONCURRENCY": "2"})
    with rt.client() as stuck, rt.client() as other:
        other.send({"op": "invoke", "envelope": envelope({"sleep": 1.5}, id="other")})
        out = invoke_with_deadline(stuck, envelope({"sleep": 60}, id="stuck"), 300)
        assert_timeout_error(out, exiting=True)
        assert not os.path.exists(rt.ready_path)
        assert other.read_until_terminal()[-1] == {"type": "done", "frames": 1}
    assert wait_exit(rt) == 124


def test_async_handler_is_cancelled_at_its_deadline_and_the_runtime_stays_up(start_runtime):
    rt = start_runtime("kinds.async_sleep_marks_cancel")
    mark = os.path.join(rt.dir, "cancelled")
    with rt.client() as c:
        out = invoke_with_deadline(c, envelope({"sleep": 60, "mark": mark}), 300)
        assert_timeout_error(out, exiting=False)
        assert os.path.exists(mark)
        out = invoke_with_deadline(c, envelope({"sleep": 0.01, "mark": mark}), 5000)
        assert out[-1] == {"type": "done", "frames": 1}
    assert rt.proc.poll() is None
    assert os.path.exists(rt.ready_path)


def test_handler_within_its_deadline_is_answered_normally(start_runtime):
    rt = start_runtime("kinds.sync_sleep")
    with rt.client() as c:
        for _ in range(3):
            out = invoke_with_deadline(c, envelope({"sleep": 0.05}), 2000)
            assert out[-1] == {"type": "done", "frames": 1}
        time.sleep(2.5)  # past every earlier deadline: nothing may fire late
        out = invoke_with_deadline(c, envelope({"sleep": 0.01}), 2000)
        assert out[-1] == {"type": "done", "frames": 1}
    assert rt.proc.poll() is None


def test_bad_deadline_ms_is_a_protocol_error_naming_the_field(start_runtime):
    rt = start_runtime("kinds.echo")
    with rt.client() as c:
        for bad in ("300", -1, 1.5, True):
            out = invoke_with_deadline(c, envelope(1), bad)
            assert out[0]["type"] == "error" and out[0]["origin"] == "runtime", out
            assert out[0]["error"]["type"] == "asya.ProtocolError"
            assert "'deadline_ms' must be a non-negative integer" in out[0]["error"]["message"]
        assert frames(c.invoke(envelope(7)))[0]["payload"] == 7


def test_async_handler_blocking_the_loop_past_its_deadline_exits_124(start_runtime):
    rt = start_runtime("inline.async_blocks_loop", env={"ASYA_RUNTIME_CONCURRENCY": "4"})
    with rt.client() as c:
        start = time.monotonic()
        out = invoke_with_deadline(c, envelope({"sleep": 60}, id="blocker"), 300)
        answered = time.monotonic() - start
    assert_timeout_error(out, exiting=True)
    assert "blocked the event loop" in out[0]["error"]["message"]
    assert answered < 5, answered
    assert wait_exit(rt) == 124
    assert not os.path.exists(rt.ready_path)


def test_sync_invoke_waiting_for_a_slot_past_its_deadline_is_answered_and_the_runtime_stays_up(start_runtime):
    # Concurrency 2, sync handler: served on connection threads; a third call waits
    # for a slot, and its deadline passes before one frees: it never ran, so the
    # runtime answers Timeout without exiting.
    rt = start_runtime("kinds.sync_sleep", env={"ASYA_RUNTIME_CONCURRENCY": "2"})
    with rt.client() as a, rt.client() as b, rt.client() as late:
        a.send({"op": "invoke", "envelope": envelope({"sleep": 1.0}, id="a")})
        b.send({"op": "invoke", "envelope": envelope({"sleep": 1.0}, id="b")})
        time.sleep(0.2)
        out = invoke_with_deadline(late, envelope({"sleep": 0.01}, id="late"), 300)
        assert_timeout_error(out, exiting=False)
        assert a.read_until_terminal()[-1] == {"type": "done", "frames": 1}
        assert b.read_until_terminal()[-1] == {"type": "done", "frames": 1}
        assert late.invoke(envelope({"sleep": 0.01}, id="again"))[-1] == {"type": "done", "frames": 1}
    assert os.path.exists(rt.ready_path)
