"""ABI commands yielded by generator handlers: GET, SET, DEL, FLY."""

from client import envelope, frames


def invoke(rt, env):
    with rt.client() as c:
        return c.invoke(env)


def test_get_reads_envelope_metadata(start_runtime):
    rt = start_runtime("abi.read_all")
    paths = [".id", ".parent_id", ".route.prev", ".route.curr", ".route.next", ".route.next[0]",
             ".headers", '.headers["x-a"]', ".headers.x-a", ".status.phase", ".headers.missing"]
    env = envelope({"paths": paths}, id="the-id", prev=["p"], curr="a", nxt=["b", "c"],
                   headers={"x-a": 1}, status={"phase": "processing"}, parent_id="parent")
    out = invoke(rt, env)
    assert frames(out)[0]["payload"] == {
        ".id": "the-id", ".parent_id": "parent", ".route.prev": ["p"], ".route.curr": "a",
        ".route.next": ["b", "c"], ".route.next[0]": "b", ".headers": {"x-a": 1},
        '.headers["x-a"]': 1, ".headers.x-a": 1, ".status.phase": "processing", ".headers.missing": None,
    }


def test_get_returns_a_copy(start_runtime):
    rt = start_runtime("abi.get_is_copy")
    out = invoke(rt, envelope(1, headers={"h": 1}))
    assert frames(out)[0]["payload"] == {"headers_after": {"h": 1}}
    assert frames(out)[0]["headers"] == {"h": 1}


def test_set_route_next_before_emit_changes_the_shift(start_runtime):
    rt = start_runtime("abi.set_next")
    out = invoke(rt, envelope({"next": ["x", "y"]}, prev=[], curr="a", nxt=["b"]))
    assert frames(out)[0]["route"] == {"prev": ["a"], "curr": "x", "next": ["y"]}


def test_set_route_next_empty_ends_the_route(start_runtime):
    rt = start_runtime("abi.set_next")
    out = invoke(rt, envelope({"next": []}, curr="a", nxt=["b"]))
    assert frames(out)[0]["route"] == {"prev": ["a"], "curr": "", "next": []}


def test_each_frame_uses_the_route_at_its_emit_time(start_runtime):
    rt = start_runtime("abi.fan_out_with_routes")
    out = invoke(rt, envelope(1, prev=["p"], curr="a", nxt=["b", "c"]))
    assert [f["route"] for f in frames(out)] == [
        {"prev": ["p", "a"], "curr": "b", "next": ["c"]},
        {"prev": ["p", "a"], "curr": "other", "next": ["z"]},
    ]


def test_set_and_del_headers_and_status_snapshot_per_frame(start_runtime):
    rt = start_runtime("abi.set_headers")
    out = invoke(rt, envelope(1, headers={"keep": 1}, status={"phase": "processing"}))
    f0, f1 = frames(out)
    assert f0["headers"] == {"keep": 1, "x-trace": "abc", "with.dot": {"deep": True}}
    assert f0["status"] == {"phase": "processing", "note": "hi"}
    assert f1["headers"] == {"keep": 1, "with.dot": {"deep": True}}


def test_del_route_next_ends_the_route_instead_of_crashing(start_runtime):
    rt = start_runtime("abi.del_next")
    out = invoke(rt, envelope(1, curr="a", nxt=["b"]))
    assert frames(out)[0]["route"] == {"prev": ["a"], "curr": "", "next": []}


def test_set_with_slice_inserts_actors(start_runtime):
    rt = start_runtime("abi.insert_next")
    out = invoke(rt, envelope(1, curr="a", nxt=["b"]))
    assert frames(out)[0]["route"] == {"prev": ["a"], "curr": "inserted", "next": ["b"]}


def test_fly_sends_upstream_without_a_frame(start_runtime):
    rt = start_runtime("abi.fly")
    out = invoke(rt, envelope(1))
    assert out[0] == {"type": "upstream", "payload": {"progress": 0.5}}
    assert len(frames(out)) == 1
    assert out[-1] == {"type": "done", "frames": 1}


def test_async_generator_uses_abi(start_runtime):
    rt = start_runtime("abi.async_abi")
    out = invoke(rt, envelope(1, id="xyz", curr="a", nxt=["b"]))
    assert out[0] == {"type": "upstream", "payload": {"id": "xyz"}}
    f = frames(out)[0]
    assert f["payload"] == {"id": "xyz"}
    assert f["route"]["curr"] == "async-next"


def test_yielded_none_is_ignored_and_non_command_tuple_is_a_payload(start_runtime):
    rt = start_runtime("abi.yields_none_and_tuple_payload")
    out = invoke(rt, envelope(1))
    assert [f["payload"] for f in frames(out)] == [[1, 2]]


def _abi_error(rt):
    out = invoke(rt, envelope(1))
    assert out[-1]["type"] == "error"
    assert out[-1]["origin"] == "handler"
    return out[-1]["error"]


def test_unknown_verb_is_a_handler_error(start_runtime):
    err = _abi_error(start_runtime("abi.bad_verb"))
    assert err["type"] == "asya.AbiError"
    assert "JUMP" in err["message"]


def test_set_outside_writable_paths_is_refused(start_runtime):
    err = _abi_error(start_runtime("abi.set_forbidden"))
    assert err["type"] == "asya.AbiError"
    assert ".id" in err["message"]


def test_set_route_next_to_non_list_is_refused(start_runtime):
    err = _abi_error(start_runtime("abi.set_next_not_list"))
    assert err["type"] == "asya.AbiError"
    assert "list" in err["message"]


def test_abi_error_points_at_the_handlers_yield(start_runtime):
    err = _abi_error(start_runtime("abi.bad_verb"))
    assert 'yield ("JUMP", ".x")' in err["traceback"]


def test_generator_may_catch_an_abi_error_and_go_on(start_runtime):
    rt = start_runtime("abi.catches_abi_error")
    out = invoke(rt, envelope(1))
    assert [f["payload"] for f in frames(out)] == [{"caught": "AbiError"}]
    assert out[-1] == {"type": "done", "frames": 1}
