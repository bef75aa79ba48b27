"""Handlers as upstream users wrote them: envelope mode, dataclass and pydantic results."""

import dataclasses
import sys


# -- envelope mode (ASYA_HANDLER_MODE=envelope)

def env_echo(envelope):
    """Returns the envelope it got, payload changed: the route moves on as usual."""
    envelope["payload"] = {"seen_id": envelope["id"], "was": envelope["payload"]}
    return envelope


def env_reroute(envelope):
    envelope["route"]["next"] = ["review"] + envelope["route"]["next"]
    envelope["headers"]["x-reviewed"] = True
    return envelope


def env_legacy_reroute(envelope):
    """Upstream's pre-2026 style: append a step to route.actors."""
    route = envelope["route"]
    actors = route["prev"] + [route["curr"]] + route["next"]
    envelope["route"] = {"actors": actors + ["human-review"], "current": len(route["prev"])}
    return envelope


def env_fanout(envelope):
    return [dict(envelope, payload=i) for i in range(3)]


def env_gen(envelope):
    for i in range(2):
        yield dict(envelope, payload={"i": i})


def env_rewrites_history(envelope):
    envelope["route"]["prev"] = ["someone-else"]
    return envelope


def env_returns_payload(envelope):
    return {"result": 1}


def payload_reader(payload):
    """A payload-mode handler, as upstream's KeyError report shows it."""
    return {"got": payload}


# -- dataclass / pydantic results

@dataclasses.dataclass
class Point:
    x: int
    y: int


@dataclasses.dataclass
class Shape:
    name: str
    points: list


def returns_dataclass(payload):
    return Shape("tri", [Point(0, 0), Point(1, 0), Point(0, 1)])


def yields_dataclass(payload):
    yield Point(1, 2)
    yield {"nested": Point(3, 4)}


class Probe:
    """First call: a dataclass. Second call: was pydantic imported behind our back?"""

    def __init__(self):
        self.calls = 0

    def run(self, payload):
        self.calls += 1
        if self.calls == 1:
            return Point(5, 6)
        return {"pydantic_imported": "pydantic" in sys.modules}


def returns_pydantic(payload):
    import datetime

    import pydantic

    class Item(pydantic.BaseModel):
        name: str
        at: datetime.date
        tags: list[str] = []

    return {"item": Item(name="a", at=datetime.date(2026, 1, 2), tags=["x"])}
