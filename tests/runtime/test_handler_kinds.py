"""Every handler kind, served by a real runtime process over its real socket."""

from client import envelope, frames


def invoke(rt, env):
    with rt.client() as c:
        return c.invoke(env)


def test_function_result_is_one_frame_with_shifted_route(start_runtime):
    rt = start_runtime("kinds.double")
    out = invoke(rt, envelope({"value": 21}, prev=["p"], curr="a", nxt=["b", "c"], headers={"h": 1}))
    assert out == [
        {"type": "frame", "frame": {"payload": {"value": 42},
                                    "route": {"prev": ["p", "a"], "curr": "b", "next": ["c"]},
                                    "headers": {"h": 1}}},
        {"type": "done", "frames": 1},
    ]


def test_last_actor_shifts_to_empty_curr(echo_runtime):
    rt = echo_runtime
    out = invoke(rt, envelope("x", prev=["p"], curr="a", nxt=[]))
    assert frames(out)[0]["route"] == {"prev": ["p", "a"], "curr": "", "next": []}


def test_status_is_carried_into_frames(echo_runtime):
    rt = echo_runtime
    out = invoke(rt, envelope(1, status={"phase": "processing", "attempt": 2}))
    assert frames(out)[0]["status"] == {"phase": "processing", "attempt": 2}


def test_class_method_instance_is_created_once(start_runtime):
    rt = start_runtime("kinds.Counter.process")
    with rt.client() as c:
        first = frames(c.invoke(envelope("a")))[0]["payload"]
        second = frames(c.invoke(envelope("b")))[0]["payload"]
    assert first == {"count": 1, "payload": "a"}
    assert second == {"count": 2, "payload": "b"}


def test_async_class_method(start_runtime):
    rt = start_runtime("kinds.Counter.aprocess")
    assert frames(invoke(rt, envelope(0)))[0]["payload"] == {"count": 1}


def test_callable_instance(start_runtime):
    rt = start_runtime("kinds.callable_instance")
    assert frames(invoke(rt, envelope(5)))[0]["payload"] == {"called": 5}


def test_async_function(start_runtime):
    rt = start_runtime("kinds.async_echo")
    out = invoke(rt, envelope({"k": "v"}))
    assert frames(out)[0]["payload"] == {"async": True, "payload": {"k": "v"}}
    assert out[-1] == {"type": "done", "frames": 1}


def test_generator_streams_one_frame_per_yield(start_runtime):
    rt = start_runtime("kinds.gen_three")
    out = invoke(rt, envelope("p", nxt=["b"]))
    assert [f["payload"] for f in frames(out)] == [{"i": i, "payload": "p"} for i in range(3)]
    assert all(f["route"] == {"prev": ["a"], "curr": "b", "next": []} for f in frames(out))
    assert out[-1] == {"type": "done", "frames": 3}


def test_async_generator_streams_frames(start_runtime):
    rt = start_runtime("kinds.agen_three")
    out = invoke(rt, envelope(None))
    assert [f["payload"] for f in frames(out)] == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert out[-1] == {"type": "done", "frames": 3}


def test_returning_none_means_zero_frames(start_runtime):
    rt = start_runtime("kinds.returns_none")
    assert invoke(rt, envelope(1)) == [{"type": "done", "frames": 0}]


def test_generator_yielding_nothing_means_zero_frames(start_runtime):
    rt = start_runtime("kinds.gen_nothing")
    assert invoke(rt, envelope(1)) == [{"type": "done", "frames": 0}]


def test_returned_list_is_a_single_payload(start_runtime):
    rt = start_runtime("kinds.returns_list")
    out = invoke(rt, envelope({"a": 1}))
    assert [f["payload"] for f in frames(out)] == [[{"a": 1}, {"a": 1}]]


def test_dotted_package_path(start_runtime):
    rt = start_runtime("pkg.sub.mod.func")
    assert frames(invoke(rt, envelope(3)))[0]["payload"] == {"from": "pkg.sub.mod.func", "payload": 3}


def test_dotted_package_class_method(start_runtime):
    rt = start_runtime("pkg.sub.mod.Model.predict")
    assert frames(invoke(rt, envelope(3)))[0]["payload"] == {"from": "model", "payload": 3}


def test_handler_module_found_in_working_directory(start_runtime, tmp_path):
    (tmp_path / "cwd_handler.py").write_text("def run(p):\n    return {'cwd': p}\n")
    rt = start_runtime("cwd_handler.run", cwd=str(tmp_path), pythonpath="")
    assert frames(invoke(rt, envelope(7)))[0]["payload"] == {"cwd": 7}


def test_persistent_connection_serves_many_requests(echo_runtime):
    rt = echo_runtime
    with rt.client() as c:
        for i in range(50):
            assert frames(c.invoke(envelope(i, id=f"e{i}")))[0]["payload"] == i
        assert c.ping() == {"type": "pong"}


def test_unicode_and_large_payload_round_trip(echo_runtime):
    rt = echo_runtime
    payload = {"text": "héllo 🌍 ✓", "blob": "x" * 2_000_000}
    assert frames(invoke(rt, envelope(payload)))[0]["payload"] == payload


def test_method_of_module_level_object(start_runtime):
    rt = start_runtime("kinds.service.run")
    assert frames(invoke(rt, envelope(1)))[0]["payload"] == {"svc": 1}
