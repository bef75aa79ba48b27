"""Test handlers that use the ABI commands (GET/SET/DEL/FLY)."""


def read_all(payload):
    out = {}
    for path in payload["paths"]:
        out[path] = yield ("GET", path)
    yield out


def set_next(payload):
    yield ("SET", ".route.next", payload["next"])
    yield {"after": "set"}


def fan_out_with_routes(payload):
    # frame 0 to the normal next actor, frame 1 re-routed
    yield {"n": 0}
    yield ("SET", ".route.next", ["other", "z"])
    yield {"n": 1}


def set_headers(payload):
    yield ("SET", ".headers.x-trace", "abc")
    yield ("SET", '.headers["with.dot"]', {"deep": True})
    yield ("SET", ".status.note", "hi")
    yield {"headers": "set"}
    yield ("DEL", ".headers.x-trace")
    yield {"headers": "deleted"}


def del_next(payload):
    yield ("DEL", ".route.next")
    yield {"ended": True}


def insert_next(payload):
    yield ("SET", ".route.next[0:0]", ["inserted"])
    yield {"ok": True}


def fly(payload):
    yield ("FLY", {"progress": 0.5})
    yield {"done": True}


def get_is_copy(payload):
    headers = yield ("GET", ".headers")
    headers["mutated"] = True
    yield {"headers_after": (yield ("GET", ".headers"))}


def bad_verb(payload):
    yield ("JUMP", ".x")


def set_forbidden(payload):
    yield ("SET", ".id", "new-id")


def set_next_not_list(payload):
    yield ("SET", ".route.next", "actor")


async def async_abi(payload):
    ident = yield ("GET", ".id")
    yield ("SET", ".route.next", ["async-next"])
    yield ("FLY", {"id": ident})
    yield {"id": ident}


def yields_none_and_tuple_payload(payload):
    yield None
    yield (1, 2)


def catches_abi_error(payload):
    try:
        yield ("SET", ".id", "nope")
    except RuntimeError as exc:  # asya.AbiError is a RuntimeError
        yield {"caught": type(exc).__name__}
