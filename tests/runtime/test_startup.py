"""Bad ASYA_HANDLER values: exit 1 with one readable line on stderr."""

import os

import pytest

from client import RuntimeProcess


def failed_start(handler, **kw):
    rt = RuntimeProcess(handler, **kw)
    try:
        code = rt.wait(timeout=30)
        err = rt.stderr()
        ready = os.path.exists(rt.ready_path)
    finally:
        rt.stop()
    return code, err, ready


@pytest.mark.parametrize("handler, reason", [
    ("nodots", "malformed handler string"),
    ("kinds.", "malformed handler string"),
    ("kinds..echo", "malformed handler string"),
    ("kinds.echo-x", "malformed handler string"),
    ("1kinds.echo", "malformed handler string"),
    ("no_such_module_abc.run", "module not found: no module named 'no_such_module_abc'"),
    ("pkg.nope.func", "module 'pkg' has no attribute 'nope'"),
    ("kinds.no_such_function", "module 'kinds' has no attribute 'no_such_function'"),
    ("kinds.Counter.no_such_method", "class 'kinds.Counter' has no attribute 'no_such_method'"),
    ("kinds.not_callable", "is not callable"),
    ("kinds.Counter", "is a class"),
    ("kinds.a.b.c", "too deep"),
    ("bad_class.NeedsArgs.process", "class 'bad_class.NeedsArgs' needs constructor arguments (model_path)"),
    ("bad_class.InitFails.process", "constructing 'bad_class.InitFails()' failed: RuntimeError: cannot load model"),
    ("bad_class.ExitsInInit.process", "constructing 'bad_class.ExitsInInit()' failed: SystemExit: no config"),
    ("broken_import.handler", "importing module 'broken_import' failed: ModuleNotFoundError"),
])
def test_bad_handler_exits_1_with_one_line_naming_handler_and_reason(handler, reason):
    code, err, ready = failed_start(handler)
    assert code == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert f"cannot load handler '{handler}'" in lines[0]
    assert reason in lines[0]
    assert not ready


def test_missing_handler_env_is_a_startup_error():
    code, err, _ = failed_start(None)
    assert code == 1
    assert "ASYA_HANDLER is not set" in err


@pytest.mark.parametrize("env, needle", [
    ({"ASYA_RUNTIME_CONCURRENCY": "many"}, "ASYA_RUNTIME_CONCURRENCY: not an integer"),
    ({"ASYA_RUNTIME_CONCURRENCY": "0"}, "ASYA_RUNTIME_CONCURRENCY: must be at least 1"),
    ({"ASYA_SHUTDOWN_GRACE": "soon"}, "ASYA_SHUTDOWN_GRACE"),
])
def test_bad_configuration_is_a_startup_error(env, needle):
    code, err, _ = failed_start("kinds.echo", env=env)
    assert code == 1
    assert needle in err
    assert len(err.strip().splitlines()) == 1
