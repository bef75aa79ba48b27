"""Test handlers: one of every kind the runtime supports."""

import asyncio
import time


def echo(payload):
    return payload


def double(payload):
    return {"value": payload["value"] * 2}


def returns_none(payload):
    return None


def returns_list(payload):
    return [payload, payload]


async def async_echo(payload):
    await asyncio.sleep(0)
    return {"async": True, "payload": payload}


def gen_three(payload):
    for i in range(3):
        yield {"i": i, "payload": payload}


def gen_nothing(payload):
    if False:
        yield None


async def agen_three(payload):
    for i in range(3):
        await asyncio.sleep(0)
        yield {"i": i}


class Counter:
    """Instantiated once: the count survives across messages."""

    def __init__(self, start=0):
        self.count = start

    def process(self, payload):
        self.count += 1
        return {"count": self.count, "payload": payload}

    async def aprocess(self, payload):
        self.count += 1
        return {"count": self.count}


class Callable:
    def __call__(self, payload):
        return {"called": payload}


callable_instance = Callable()


def returns_set(payload):
    return {1, 2, 3}


def returns_nan(payload):
    return float("nan")


def gen_good_then_unserialisable(payload):
    yield {"ok": 1}
    yield object()


async def async_sleep(payload):
    await asyncio.sleep(payload.get("sleep", 0.5))
    return {"slept": payload.get("sleep", 0.5)}


def sync_sleep(payload):
    time.sleep(payload.get("sleep", 0.5))
    return {"slept": payload.get("sleep", 0.5)}


def big(payload):
    return {"blob": "x" * payload["size"]}


not_callable = 42


class _Service:
    def __init__(self):
        self.prefix = "svc"

    def run(self, payload):
        return {self.prefix: payload}


service = _Service()


def logs_and_raises(payload):
    raise ValueError("for the json log")


async def async_sleep_marks_cancel(payload):
    try:
        await asyncio.sleep(payload.get("sleep", 30))
    except asyncio.CancelledError:
        with open(payload["mark"], "w") as fh:
            fh.write("cancelled")
        raise
    return {"slept": True}
