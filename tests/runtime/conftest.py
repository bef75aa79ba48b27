import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from client import RuntimeProcess  # noqa: E402


@pytest.fixture
def start_runtime():
    """Factory: start_runtime("module.func", env={...}) -> a ready RuntimeProcess.

    Every process started here is stopped (SIGTERM, then SIGKILL) at teardown.
    """
    started = []

    def start(handler, env=None, ready=True, **kw):
        rt = RuntimeProcess(handler, env=env, **kw)
        started.append(rt)
        if ready:
            rt.wait_ready()
        return rt

    yield start
    for rt in started:
        rt.stop()


@pytest.fixture(scope="module")
def echo_runtime():
    """One `kinds.echo` runtime shared by a module's tests that only need echo."""
    rt = RuntimeProcess("kinds.echo")
    try:
        rt.wait_ready()
        yield rt
    finally:
        rt.stop()
