"""Handler errors, invalid requests and oversize frames: structured errors, runtime stays up."""

import json
import struct

import pytest

from client import ClosedError, envelope, frames


def test_handler_exception_is_structured_with_type_mro_and_traceback(start_runtime):
    rt = start_runtime("errors.raises")
    with rt.client() as c:
        out = c.invoke(envelope("p"))
        assert c.ping() == {"type": "pong"}
    assert len(out) == 1
    err = out[0]
    assert err["type"] == "error" and err["origin"] == "handler"
    assert err["error"]["type"] == "errors.RateLimitError"
    assert err["error"]["mro"] == ["errors.BaseAppError", "Exception"]
    assert err["error"]["message"] == "slow down: p"
    tb = err["error"]["traceback"]
    assert tb.startswith("Traceback")
    assert "errors.py" in tb and "raise RateLimitError" in tb
    assert "asya_runtime.py" not in tb  # the handler's frames, not the runtime's


def test_handler_error_is_logged_with_type_and_message(start_runtime):
    rt = start_runtime("errors.raises")
    with rt.client() as c:
        c.invoke(envelope("p", id="logged-id"))
    log = rt.stderr()
    assert "logged-id" in log and "errors.RateLimitError" in log and "slow down: p" in log


def test_builtin_error_type_has_no_module_prefix(start_runtime):
    rt = start_runtime("errors.raises_builtin")
    with rt.client() as c:
        err = c.invoke(envelope(1))[-1]["error"]
    assert err["type"] == "ValueError"
    assert err["mro"] == ["Exception"]


def test_async_handler_exception(start_runtime):
    rt = start_runtime("errors.async_raises")
    with rt.client() as c:
        err = c.invoke(envelope(1))[-1]
    assert err["origin"] == "handler"
    assert err["error"]["type"] == "KeyError"
    assert err["error"]["mro"] == ["LookupError", "Exception"]


def test_generator_error_after_a_frame_ends_with_error(start_runtime):
    rt = start_runtime("errors.gen_raises_after_one")
    with rt.client() as c:
        out = c.invoke(envelope(1))
    assert out[0]["type"] == "frame"
    assert out[-1]["type"] == "error" and out[-1]["error"]["type"] == "RuntimeError"


def test_handler_calling_sys_exit_does_not_stop_the_runtime(start_runtime):
    rt = start_runtime("errors.exits")
    with rt.client() as c:
        assert c.invoke(envelope(1))[-1]["error"]["type"] == "SystemExit"
        assert c.ping() == {"type": "pong"}
    assert rt.proc.poll() is None


def test_failing_then_succeeding_on_the_same_connection(start_runtime):
    rt = start_runtime("errors.fails_once_per_call")
    with rt.client() as c:
        assert c.invoke(envelope({"fail": True}))[-1]["type"] == "error"
        assert frames(c.invoke(envelope({"fail": False})))[0]["payload"] == {"fail": False}


@pytest.mark.parametrize("handler, needle", [
    ("kinds.returns_set", "not JSON-serialisable"),
    ("kinds.returns_nan", "not JSON-serialisable"),
])
def test_non_json_result_is_a_handler_error(start_runtime, handler, needle):
    rt = start_runtime(handler)
    with rt.client() as c:
        out = c.invoke(envelope(1))
        assert c.ping() == {"type": "pong"}
    assert out[-1]["origin"] == "handler"
    assert out[-1]["error"]["type"] == "asya.SerializationError"
    assert needle in out[-1]["error"]["message"]


def test_unserialisable_second_frame_keeps_the_first_and_ends_with_error(start_runtime):
    rt = start_runtime("kinds.gen_good_then_unserialisable")
    with rt.client() as c:
        out = c.invoke(envelope(1))
    assert [r["type"] for r in out] == ["frame", "error"]
    assert "frame 1" in out[-1]["error"]["message"]


@pytest.mark.parametrize("env, needle", [
    ({"route": {"prev": [], "curr": "a", "next": []}, "payload": 1}, "missing 'id'"),
    ({"id": "x", "payload": 1}, "missing 'route'"),
    ({"id": "x", "route": {"prev": [], "curr": "a", "next": []}}, "missing 'payload'"),
    ({"id": "x", "route": {"prev": [], "curr": 3, "next": []}, "payload": 1}, "'route.curr' must be a string"),
    ({"id": "x", "route": {"prev": [], "curr": "a", "next": "b"}, "payload": 1}, "'route.next' must be a list"),
    ({"id": "x", "route": {"prev": [1], "curr": "a", "next": []}, "payload": 1}, "'route.prev' must be a list"),
    ({"id": "x", "route": ["a"], "payload": 1}, "'route' must be an object"),
    ({"id": "x", "route": {"prev": [], "curr": "a", "next": []}, "headers": [], "payload": 1}, "'headers'"),
    ({"id": 5, "route": {"prev": [], "curr": "a", "next": []}, "payload": 1}, "'id' must be a non-empty string"),
    ("not an object", "must be a JSON object"),
    (None, "must be a JSON object"),
])
def test_invalid_envelope_is_a_runtime_error_and_the_runtime_stays_up(echo_runtime, env, needle):
    rt = echo_runtime
    with rt.client() as c:
        out = c.invoke(env)
        assert len(out) == 1
        assert out[0]["type"] == "error" and out[0]["origin"] == "runtime"
        assert out[0]["error"]["type"] == "asya.EnvelopeError"
        assert needle in out[0]["error"]["message"]
        # the same connection keeps working
        assert frames(c.invoke(envelope(2)))[0]["payload"] == 2


@pytest.mark.parametrize("request_body, needle", [
    (b"{not json", "not valid UTF-8 JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"op": "dance"}', "unknown op 'dance'"),
])
def test_protocol_errors_are_runtime_errors(echo_runtime, request_body, needle):
    rt = echo_runtime
    with rt.client() as c:
        c.send_raw(struct.pack(">I", len(request_body)) + request_body)
        reply = c.recv()
        assert reply["type"] == "error" and reply["origin"] == "runtime"
        assert reply["error"]["type"] == "asya.ProtocolError"
        assert needle in reply["error"]["message"]
        assert c.ping() == {"type": "pong"}


def test_oversize_request_frame_is_refused_and_connection_closed(start_runtime):
    rt = start_runtime("kinds.echo", env={"ASYA_MAX_FRAME_BYTES": "4096"})
    with rt.client() as c:
        body = json.dumps({"op": "invoke", "envelope": envelope("x" * 10_000)}).encode()
        c.send_raw(struct.pack(">I", len(body)))  # the header alone is enough to refuse
        reply = c.recv()
        assert reply["type"] == "error" and reply["origin"] == "runtime"
        assert reply["error"]["type"] == "asya.FrameTooLarge"
        with pytest.raises((ClosedError, ConnectionError)):
            c.recv()
    with rt.client() as c:  # the runtime is still serving
        assert frames(c.invoke(envelope("small")))[0]["payload"] == "small"


def test_oversize_result_frame_is_a_handler_error(start_runtime):
    rt = start_runtime("kinds.big", env={"ASYA_MAX_FRAME_BYTES": "4096"})
    with rt.client() as c:
        out = c.invoke(envelope({"size": 10_000}))
        assert out[-1]["origin"] == "handler"
        assert "ASYA_MAX_FRAME_BYTES" in out[-1]["error"]["message"]
        assert frames(c.invoke(envelope({"size": 10})))[0]["payload"] == {"blob": "x" * 10}


def test_exception_with_broken_str_is_still_reported(start_runtime):
    rt = start_runtime("errors.raises_unprintable")
    with rt.client() as c:
        err = c.invoke(envelope(1))[-1]
        assert c.ping() == {"type": "pong"}
    assert err["origin"] == "handler"
    assert err["error"]["type"] == "errors.Unprintable"
    assert "unprintable" in err["error"]["message"]
