"""What upstream Asya's users already run: envelope mode, legacy routes, dataclass and
pydantic results, upstream variables, routers mounted next to the runtime."""

import shutil
import signal

import pytest

from client import RUNTIME, RuntimeProcess, envelope, frames, runtime_python_can

ENVELOPE_MODE = {"ASYA_HANDLER_MODE": "envelope"}


def route(frame):
    return frame["route"]


# -- ASYA_HANDLER_MODE=envelope


def test_envelope_mode_handler_gets_and_returns_the_whole_envelope(start_runtime):
    rt = start_runtime("migration.env_echo", env=ENVELOPE_MODE)
    with rt.client() as c:
        out = c.invoke(envelope({"v": 1}, id="e-1", curr="a", nxt=["b", "c"], headers={"h": 1}))
    assert out[-1] == {"type": "done", "frames": 1}, out
    f = frames(out)[0]
    assert f["payload"] == {"seen_id": "e-1", "was": {"v": 1}}
    assert route(f) == {"prev": ["a"], "curr": "b", "next": ["c"]}
    assert f["headers"] == {"h": 1}


def test_payload_mode_is_the_default_and_named_payload_works(start_runtime):
    rt = start_runtime("migration.payload_reader", env={"ASYA_HANDLER_MODE": "payload"})
    with rt.client() as c:
        assert frames(c.invoke(envelope({"v": 1})))[0]["payload"] == {"got": {"v": 1}}


def test_envelope_mode_route_next_and_headers_changes_are_applied(start_runtime):
    rt = start_runtime("migration.env_reroute", env=ENVELOPE_MODE)
    with rt.client() as c:
        f = frames(c.invoke(envelope(1, curr="a", nxt=["b"])))[0]
    assert route(f) == {"prev": ["a"], "curr": "review", "next": ["b"]}
    assert f["headers"] == {"x-reviewed": True}


def test_envelope_mode_legacy_route_returned_by_the_handler_is_converted(start_runtime):
    rt = start_runtime("migration.env_legacy_reroute", env=ENVELOPE_MODE)
    with rt.client() as c:
        f = frames(c.invoke(envelope(1, prev=["x"], curr="a", nxt=["b"])))[0]
    assert route(f) == {"prev": ["x", "a"], "curr": "b", "next": ["human-review"]}


def test_envelope_mode_list_and_generator_fan_out(start_runtime):
    rt = start_runtime("migration.env_fanout", env=ENVELOPE_MODE)
    with rt.client() as c:
        assert [f["payload"] for f in frames(c.invoke(envelope(None, nxt=["b"])))] == [0, 1, 2]
    rt = start_runtime("migration.env_gen", env=ENVELOPE_MODE)
    with rt.client() as c:
        assert [f["payload"] for f in frames(c.invoke(envelope(None)))] == [{"i": 0}, {"i": 1}]


@pytest.mark.parametrize("handler, words", [
    ("migration.env_rewrites_history", "only route.next may change"),
    ("migration.env_returns_payload", "must be an envelope (an object with a 'payload' key)"),
])
def test_envelope_mode_bad_results_are_named(start_runtime, handler, words):
    rt = start_runtime(handler, env=ENVELOPE_MODE)
    with rt.client() as c:
        out = c.invoke(envelope(1))
    assert out[-1]["type"] == "error" and out[-1]["origin"] == "handler", out
    assert out[-1]["error"]["type"] == "asya.EnvelopeError"
    assert words in out[-1]["error"]["message"]
    assert "envelope mode: result 0" in out[-1]["error"]["message"]


def test_bad_handler_mode_stops_startup_naming_the_variable():
    rt = RuntimeProcess("kinds.echo", env={"ASYA_HANDLER_MODE": "raw"})
    try:
        assert rt.wait() == 1
        assert "ASYA_HANDLER_MODE: expected 'payload' or 'envelope', got 'raw'" in rt.stderr()
    finally:
        rt.stop()


# -- legacy {actors, current} routes


def legacy(payload, actors, current, id="legacy-1"):
    return {"id": id, "route": {"actors": actors, "current": current}, "headers": {}, "payload": payload}


def test_legacy_route_on_input_is_converted(start_runtime):
    rt = start_runtime("kinds.echo")
    with rt.client() as c:
        out = c.invoke(legacy({"v": 1}, ["a", "b", "c"], 1))
        assert out[-1] == {"type": "done", "frames": 1}, out
        assert route(frames(out)[0]) == {"prev": ["a", "b"], "curr": "c", "next": []}
        last = frames(c.invoke(legacy(2, ["a", "b"], 1)))[0]
        assert route(last) == {"prev": ["a", "b"], "curr": "", "next": []}
    assert rt.stderr().count("legacy route") == 1  # logged once


def test_legacy_route_in_envelope_mode_reaches_the_handler_converted(start_runtime):
    rt = start_runtime("migration.env_reroute", env=ENVELOPE_MODE)
    with rt.client() as c:
        f = frames(c.invoke(legacy(1, ["a", "b"], 0)))[0]
    assert route(f) == {"prev": ["a"], "curr": "review", "next": ["b"]}


@pytest.mark.parametrize("bad, words", [
    ({"actors": "a,b", "current": 0}, "legacy 'route.actors' must be a list of strings"),
    ({"actors": ["a"], "current": 5}, "legacy 'route.current' must be an integer from 0 to 1"),
    ({"actors": ["a"], "current": "0"}, "legacy 'route.current' must be an integer"),
])
def test_bad_legacy_routes_are_named(echo_runtime, bad, words):
    env = {"id": "x", "route": bad, "payload": 1}
    with echo_runtime.client() as c:
        out = c.invoke(env)
    assert out[-1]["type"] == "error" and out[-1]["origin"] == "runtime"
    assert out[-1]["error"]["type"] == "asya.EnvelopeError"
    assert words in out[-1]["error"]["message"]


# -- dataclass and pydantic results


def test_dataclass_results_are_serialised(start_runtime):
    rt = start_runtime("migration.returns_dataclass")
    with rt.client() as c:
        out = c.invoke(envelope(None))
    assert frames(out)[0]["payload"] == {
        "name": "tri", "points": [{"x": 0, "y": 0}, {"x": 1, "y": 0}, {"x": 0, "y": 1}],
    }, out
    rt = start_runtime("migration.yields_dataclass")
    with rt.client() as c:
        out = c.invoke(envelope(None))
    assert [f["payload"] for f in frames(out)] == [{"x": 1, "y": 2}, {"nested": {"x": 3, "y": 4}}], out


def test_serialising_a_dataclass_does_not_import_pydantic(start_runtime):
    rt = start_runtime("migration.Probe.run")
    with rt.client() as c:
        assert frames(c.invoke(envelope(None)))[0]["payload"] == {"x": 5, "y": 6}
        assert frames(c.invoke(envelope(None)))[0]["payload"] == {"pydantic_imported": False}


def test_pydantic_results_are_serialised(start_runtime):
    if not runtime_python_can("import pydantic"):
        pytest.skip("pydantic is not installed for the runtime's interpreter")
    rt = start_runtime("migration.returns_pydantic")
    with rt.client() as c:
        out = c.invoke(envelope(None))
    assert frames(out)[0]["payload"] == {"item": {"name": "a", "at": "2026-01-02", "tags": ["x"]}}, out


# -- ASYA_* variables this runtime does not read


def test_unknown_and_upstream_variables_are_logged_once_as_ignored(start_runtime):
    rt = start_runtime("kinds.echo", env={
        "ASYA_ENABLE_VALIDATION": "false", "ASYA_SOCKET_PATH": "/var/run/asya/x.sock",
        "ASYA_CHUNK_SIZE": "4096", "ASYA_HANDLR": "typo.run",
    })
    with rt.client() as c:
        c.invoke(envelope(1))
    rt.signal(signal.SIGTERM)
    assert rt.wait() == 0
    lines = [ln for ln in rt.stderr().splitlines() if "ignoring environment variables" in ln]
    assert len(lines) == 1, rt.stderr()
    for name in ("ASYA_ENABLE_VALIDATION (envelopes are always validated", "ASYA_SOCKET_PATH (set ASYA_SOCKET_DIR",
                 "ASYA_CHUNK_SIZE (", "ASYA_HANDLR (not a variable of this runtime)"):
        assert name in lines[0], lines[0]
    assert "ASYA_HANDLER " not in lines[0] and "ASYA_SOCKET_DIR (" not in lines[0]


def test_no_warning_when_only_known_variables_are_set(start_runtime):
    rt = start_runtime("kinds.echo", env={"ASYA_LOG_LEVEL": "info", "ASYA_RUNTIME_CONCURRENCY": "1"})
    rt.signal(signal.SIGTERM)
    assert rt.wait() == 0
    assert "ignoring environment variables" not in rt.stderr()


# -- routers mounted next to the runtime (/opt/asya/routers.py, as upstream's flow compiler emits)

ROUTERS_PY = '''
"""Like a flow compiler's generated router: decides the route, passes the payload on."""


def start_review_flow(payload):
    yield "SET", ".route.next", ["classify", "review"] if payload.get("risky") else ["classify"]
    yield payload
'''


@pytest.mark.parametrize("safe_path", [False, True], ids=["default", "PYTHONSAFEPATH"])
def test_router_mounted_next_to_the_runtime_is_importable(tmp_path, safe_path):
    opt_asya = tmp_path / "opt" / "asya"
    opt_asya.mkdir(parents=True)
    shutil.copy(RUNTIME, opt_asya / "asya_runtime.py")
    (opt_asya / "routers.py").write_text(ROUTERS_PY)
    workdir = tmp_path / "app"
    workdir.mkdir()
    env = {"PYTHONSAFEPATH": "1"} if safe_path else {}
    rt = RuntimeProcess("routers.start_review_flow", env=env, cwd=str(workdir), pythonpath="",
                        runtime=str(opt_asya / "asya_runtime.py"))
    try:
        rt.wait_ready()
        with rt.client() as c:
            out = c.invoke(envelope({"risky": True}, curr="start-review-flow", nxt=["ignored"]))
        assert out[-1] == {"type": "done", "frames": 1}, out
        assert route(frames(out)[0]) == {"prev": ["start-review-flow"], "curr": "classify", "next": ["review"]}
    finally:
        rt.stop()


def test_module_next_to_the_runtime_never_shadows_a_user_module_under_safe_path(tmp_path):
    if not runtime_python_can("import sys; assert sys.version_info >= (3, 11)"):
        pytest.skip("PYTHONSAFEPATH needs Python >= 3.11")
    opt_asya = tmp_path / "opt" / "asya"
    opt_asya.mkdir(parents=True)
    shutil.copy(RUNTIME, opt_asya / "asya_runtime.py")
    (opt_asya / "handler.py").write_text("def run(p):\n    return 'from /opt/asya'\n")
    workdir = tmp_path / "app"
    workdir.mkdir()
    (workdir / "handler.py").write_text("def run(p):\n    return 'from the working dir'\n")
    rt = RuntimeProcess("handler.run", env={"PYTHONSAFEPATH": "1"}, cwd=str(workdir), pythonpath="",
                        runtime=str(opt_asya / "asya_runtime.py"))
    try:
        rt.wait_ready()
        with rt.client() as c:
            assert frames(c.invoke(envelope(None)))[0]["payload"] == "from the working dir"
    finally:
        rt.stop()


PYDANTIC_V1_STUB = '''
"""Stands in for pydantic 1.x: models have .json(), no .model_dump()."""
import json


class BaseModel:
    def __init__(self, **fields):
        self.__dict__.update(fields)

    def json(self):
        return json.dumps(self.__dict__)
'''


def test_pydantic_v1_style_models_are_serialised(tmp_path):
    stub = tmp_path / "stub"
    stub.mkdir()
    (stub / "pydantic.py").write_text(PYDANTIC_V1_STUB)
    (stub / "v1_handler.py").write_text(
        "import pydantic\n\n\nclass Item(pydantic.BaseModel):\n    pass\n\n\n"
        "def run(payload):\n    return [Item(name='a', n=1)]\n"
    )
    rt = RuntimeProcess("v1_handler.run", pythonpath=str(stub))
    try:
        rt.wait_ready()
        with rt.client() as c:
            out = c.invoke(envelope(None))
        assert frames(out)[0]["payload"] == [{"name": "a", "n": 1}], out
    finally:
        rt.stop()
