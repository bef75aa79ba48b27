"""Handlers used by the sidecar's integration tests (one module, many entry points)."""

import os
import time

_calls = {}


class TransientError(Exception):
    """Retried by the tests' policies."""


class FatalError(Exception):
    """Matched by an `action: fail` rule."""


def step_a(payload):
    time.sleep(payload.get("pause", 0))
    payload["trail"].append("a")
    payload["n"] = payload["n"] * 2
    return payload


def step_b(payload):
    time.sleep(payload.get("pause", 0))
    payload["trail"].append("b")
    payload["n"] = payload["n"] + 1
    return payload


def step_c(payload):
    time.sleep(payload.get("pause", 0))
    payload["trail"].append("c")
    payload["n"] = payload["n"] * 10
    return payload


def fan_out(payload):
    for i in range(payload["count"]):
        yield {"index": i}


def flaky(payload):
    """Fails `fail_times` times per key, then succeeds; returns call times."""
    key = payload["key"]
    _calls.setdefault(key, []).append(time.time())
    if len(_calls[key]) <= payload.get("fail_times", 2):
        raise TransientError(f"call {len(_calls[key])} of {key} fails")
    return {"key": key, "calls": _calls[key]}


def always_fails(payload):
    raise TransientError("this handler always fails")


def fatal(payload):
    time.sleep(payload.get("pause", 0) if isinstance(payload, dict) else 0)
    raise FatalError("not worth retrying")


def echo(payload):
    return payload


def echo_briefly(payload):
    time.sleep(0.002)
    return payload


def slow(payload):
    time.sleep(payload.get("sleep", 3))
    return payload


def crash_until(payload):
    """Kills the runtime `crashes` times (counted in the file `marker`), then
    returns how many times it did."""
    marker = payload["marker"]
    try:
        with open(marker) as fh:
            done = len(fh.read().splitlines())
    except FileNotFoundError:
        done = 0
    if done < payload["crashes"]:
        with open(marker, "a") as fh:
            fh.write("crash\n")
        os._exit(1)
    return {"survived": done}
