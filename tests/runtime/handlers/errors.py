"""Test handlers that fail."""


class BaseAppError(Exception):
    pass


class RateLimitError(BaseAppError):
    pass


def raises(payload):
    raise RateLimitError(f"slow down: {payload}")


def raises_builtin(payload):
    raise ValueError("bad value")


async def async_raises(payload):
    raise KeyError("missing")


def gen_raises_after_one(payload):
    yield {"first": True}
    raise RuntimeError("generator broke")


def exits(payload):
    raise SystemExit(3)


def fails_once_per_call(payload):
    if payload.get("fail"):
        raise RateLimitError("asked to fail")
    return payload


class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no str for you")


def raises_unprintable(payload):
    raise Unprintable()
