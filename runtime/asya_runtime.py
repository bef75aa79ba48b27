#!/usr/bin/env python3
"""Asya runtime: serves one Python handler to the asya-sidecar over a Unix socket.

One file, standard library only, Python >= 3.10. It runs inside the user's image
as ``python3 /opt/asya/asya_runtime.py``; ``--probe`` turns it into a shell-free
readiness/liveness check. The wire protocol is ``docs/runtime-protocol.md``; the
environment variables and handler kinds are in ``docs/runtime.md``.

Design in brief: a thread accepts connections and answers pings on them until
their first other request; then the connection joins one persistent asyncio
event loop. ``async def`` handlers run on that loop (at most
``ASYA_RUNTIME_CONCURRENCY`` at once). Synchronous handlers run inline on the
main thread when the concurrency is 1 (no thread hop; ``signal`` works), else on
the thread of the connection that asked (the sidecar holds one per slot), which
then serves that connection without the loop. A watchdog enforces the sidecar's
``deadline_ms``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import concurrent.futures.thread
import copy
import dataclasses
import importlib
import inspect
import json
import logging
import os
import re
import secrets
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback

__version__ = "0.1.0"

LOG = logging.getLogger("asya.runtime")

DEFAULT_SOCKET_DIR = "/var/run/asya"
DEFAULT_SOCKET_NAME = "asya-runtime.sock"
READY_FILE = "runtime-ready"
DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024
DEFAULT_SHUTDOWN_GRACE = 25.0
PROBE_TIMEOUT = 2.0
# Exit status after a sync handler overran its deadline (the value coreutils'
# `timeout` uses): Kubernetes restarts the container, the sidecar sees a new boot id.
EXIT_TIMEOUT = 124
# How often the watchdog looks for a handler to watch (a deadline it
# has seen is then met to the millisecond); polled: signalling it per call costs more.
_WATCH_TICK = 0.05
# An invocation still unanswered this long after its deadline means the event
# loop itself is blocked (its timer would have answered): e.g. an `async def`
# handler that calls time.sleep().
_LOOP_STUCK_AFTER = 1.0

_HEADER = struct.Struct(">I")
# Stream buffer size: big enough that a large frame is not read in many small pauses.
_READ_LIMIT = 4 * 1024 * 1024
_HANDLER_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")


# --------------------------------------------------------------------------- errors
# Errors the runtime raises itself. ``__module__ = "asya"`` gives them stable type
# names on the wire (``asya.AbiError``) whether this file runs as a script or not.


class AsyaError(Exception):
    """Base of the runtime's own errors."""

    __module__ = "asya"


class ProtocolError(AsyaError):
    """The request is not a valid protocol message (origin: runtime)."""

    __module__ = "asya"


class EnvelopeError(AsyaError, ValueError):
    """The envelope inside an invoke request is invalid (origin: runtime)."""

    __module__ = "asya"


class FrameTooLarge(AsyaError):
    """A frame exceeds ASYA_MAX_FRAME_BYTES."""

    __module__ = "asya"


class AbiError(AsyaError, RuntimeError):
    """A generator yielded a malformed ABI command (origin: handler)."""

    __module__ = "asya"


class SerializationError(AsyaError, TypeError):
    """A handler produced a value that is not JSON (origin: handler)."""

    __module__ = "asya"


class Timeout(AsyaError, TimeoutError):
    """The handler ran past the request's ``deadline_ms`` (origin: runtime)."""

    __module__ = "asya"


class HandlerLoadError(Exception):
    """ASYA_HANDLER cannot be resolved to a callable; fatal at startup."""


class ConfigError(Exception):
    """An environment variable has an unusable value; fatal at startup."""


def error_type_name(cls: type) -> str:
    """``module.QualName``; builtins without a module prefix (``ValueError``)."""
    module = getattr(cls, "__module__", None)
    qualname = getattr(cls, "__qualname__", cls.__name__)
    if not module or module == "builtins":
        return qualname
    return f"{module}.{qualname}"


_INTERNAL_CODE = (
    os.path.abspath(__file__),
    os.path.abspath(concurrent.futures.thread.__file__),
    os.path.dirname(os.path.abspath(asyncio.__file__)) + os.sep,
)


def _is_internal(filename: str) -> bool:
    path = os.path.abspath(filename)
    return path == _INTERNAL_CODE[0] or path == _INTERNAL_CODE[1] or path.startswith(_INTERNAL_CODE[2])


def error_info(exc: BaseException, user_frames_only: bool = False) -> dict:
    """The structured error object: ``{type, mro, message, traceback}``.

    ``mro`` lists the ancestors of the exception's class, most derived first,
    without the class itself, ``BaseException`` and ``object``. With
    ``user_frames_only`` the traceback starts at the first frame outside the
    runtime (the handler's code), unless nothing would be left.
    """
    cls = type(exc)
    mro = [error_type_name(c) for c in cls.__mro__[1:] if c not in (BaseException, object)]
    tb = exc.__traceback__
    if user_frames_only:
        first_user = tb
        while first_user is not None and _is_internal(first_user.tb_frame.f_code.co_filename):
            first_user = first_user.tb_next
        if first_user is not None:
            tb = first_user
    try:
        text = "".join(traceback.format_exception(cls, exc, tb))
    except Exception:  # noqa: BLE001 - a broken __str__ must not break error reporting
        text = f"{error_type_name(cls)} (traceback unavailable)"
    try:
        message = str(exc)
    except Exception:  # noqa: BLE001
        message = f"<unprintable {cls.__name__}>"
    return {"type": error_type_name(cls), "mro": mro, "message": message, "traceback": text}


# --------------------------------------------------------------------------- config


def parse_duration(text: str) -> float:
    """Seconds from a Go-style duration (``25s``, ``1m30s``, ``500ms``) or a bare number."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r} (examples: 25s, 1m30s, 500ms)")
    return sum(float(n) * units[u] for n, u in parts)


class Config:
    """Runtime settings read from ``ASYA_*`` environment variables."""

    def __init__(self, env: dict | None = None):
        env = os.environ if env is None else env
        self.handler = env.get("ASYA_HANDLER", "").strip()
        self.socket_dir = env.get("ASYA_SOCKET_DIR", "") or DEFAULT_SOCKET_DIR
        self.socket_name = env.get("ASYA_SOCKET_NAME", "") or DEFAULT_SOCKET_NAME
        self.concurrency = self._int(env, "ASYA_RUNTIME_CONCURRENCY", 1, minimum=1)
        self.max_frame_bytes = self._int(env, "ASYA_MAX_FRAME_BYTES", DEFAULT_MAX_FRAME_BYTES, minimum=1024)
        grace = env.get("ASYA_SHUTDOWN_GRACE", "")
        try:
            self.shutdown_grace = parse_duration(grace) if grace else DEFAULT_SHUTDOWN_GRACE
        except ValueError as exc:
            raise ConfigError(f"ASYA_SHUTDOWN_GRACE: {exc}") from None
        chmod = env.get("ASYA_SOCKET_CHMOD", "0o666").strip()
        try:
            self.socket_chmod = int(chmod, 8) if chmod else None
        except ValueError:
            raise ConfigError(f"ASYA_SOCKET_CHMOD: not an octal mode: {chmod!r}") from None
        self.log_level = env.get("ASYA_LOG_LEVEL", "info")
        self.log_format = env.get("ASYA_LOG_FORMAT", "text")
        mode = env.get("ASYA_HANDLER_MODE", "").strip().lower() or "payload"
        if mode not in ("payload", "envelope"):
            raise ConfigError(f"ASYA_HANDLER_MODE: expected 'payload' or 'envelope', got {mode!r}")
        self.handler_mode = mode
        self.ignored = ignored_variables(env)

    @staticmethod
    def _int(env, name: str, default: int, minimum: int) -> int:
        raw = env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name}: not an integer: {raw!r}") from None
        if value < minimum:
            raise ConfigError(f"{name}: must be at least {minimum}, got {value}")
        return value

    @property
    def socket_path(self) -> str:
        return os.path.join(self.socket_dir, self.socket_name)

    @property
    def ready_path(self) -> str:
        return os.path.join(self.socket_dir, READY_FILE)


# Every ASYA_* variable this runtime reads.
KNOWN_VARIABLES = frozenset({
    "ASYA_HANDLER", "ASYA_HANDLER_MODE", "ASYA_SOCKET_DIR", "ASYA_SOCKET_NAME", "ASYA_SOCKET_CHMOD",
    "ASYA_RUNTIME_CONCURRENCY", "ASYA_SHUTDOWN_GRACE", "ASYA_MAX_FRAME_BYTES", "ASYA_LOG_LEVEL",
    "ASYA_LOG_FORMAT",
})
# Upstream's runtime variables that have no effect here, and why.
UPSTREAM_VARIABLES = {
    "ASYA_ENABLE_VALIDATION": "envelopes are always validated (shape only, any route state is accepted)",
    "ASYA_SOCKET_PATH": "set ASYA_SOCKET_DIR and ASYA_SOCKET_NAME instead",
    "ASYA_CHUNK_SIZE": "responses are length-prefixed frames, not chunked",
    "ASYA_STATE_PROXY_MOUNTS": "the state proxy is not implemented",
    "ASYA_MSG_ROOT": "the /proc/asya/msg files were replaced by the ABI (yield GET/SET/DEL/FLY)",
    "ASYA_PYTHONEXECUTABLE": "the interpreter is the container's command (spec.pythonExecutable)",
}


def ignored_variables(env) -> list[str]:
    """One description per ASYA_* variable set in ``env`` that this runtime does not read."""
    out = []
    for name in sorted(k for k in env if k.startswith("ASYA_") and k not in KNOWN_VARIABLES):
        why = UPSTREAM_VARIABLES.get(name, "not a variable of this runtime")
        out.append(f"{name} ({why})")
    return out


class _JsonLogFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup_logging(level: str, fmt: str) -> None:
    names = {"trace": "DEBUG", "warn": "WARNING", "fatal": "CRITICAL"}
    level_name = names.get(level.strip().lower(), level.strip().upper())
    numeric = logging.getLevelName(level_name)
    unknown = not isinstance(numeric, int)
    if unknown:
        numeric = logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    if fmt.strip().lower() == "json":
        handler.setFormatter(_JsonLogFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
        )
        handler.formatter.converter = time.gmtime
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    if unknown:
        LOG.warning("ASYA_LOG_LEVEL=%r is not a log level (debug, info, warning, error); using info", level)


# --------------------------------------------------------------------------- handler loading


class Handler:
    """A resolved handler: the callable plus what kind it is."""

    def __init__(self, spec: str, func, kind: str):
        self.spec = spec
        self.func = func
        self.kind = kind  # "function" | "async function" | "generator" | "async generator"

    @property
    def runs_on_loop(self) -> bool:
        """Called on the event loop (async kinds, and sync generator functions,
        whose call only creates the generator object)."""
        return self.kind != "function"


def _callable_kind(func) -> str:
    # A callable object is classified by its __call__; anything that turns out to
    # return a coroutine or a generator is still handled by its result at call time.
    candidates = [func]
    if not (inspect.isfunction(func) or inspect.ismethod(func)):
        call = getattr(func, "__call__", None)
        if call is not None:
            candidates.append(call)
    for target in candidates:
        if inspect.isasyncgenfunction(target):
            return "async generator"
        if inspect.iscoroutinefunction(target):
            return "async function"
        if inspect.isgeneratorfunction(target):
            return "generator"
    return "function"


def _required_params(cls: type) -> list[str]:
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        return []
    return [
        p.name
        for p in sig.parameters.values()
        if p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def load_handler(spec: str) -> Handler:
    """Resolve ``module.function``, ``module.Class.method`` or dotted-package forms.

    The longest importable module prefix wins, so ``pkg.sub.mod.func`` imports
    ``pkg.sub.mod``. A class named in ``module.Class.method`` is instantiated once
    with no arguments.
    """
    if not spec:
        raise HandlerLoadError("ASYA_HANDLER is not set (expected module.function or module.Class.method)")
    if not _HANDLER_RE.match(spec):
        raise HandlerLoadError(
            "malformed handler string: expected dotted Python identifiers such as "
            "'module.function' or 'module.Class.method'"
        )
    parts = spec.split(".")
    module = None
    tried = []
    for cut in range(len(parts) - 1, 0, -1):
        name = ".".join(parts[:cut])
        tried.append(name)
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            missing = exc.name or ""
            if name == missing or name.startswith(missing + "."):
                continue  # this prefix is not a module; try a shorter one
            raise HandlerLoadError(
                f"importing module '{name}' failed: ModuleNotFoundError: {_one_line(exc)}"
            ) from None
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - any import-time failure is fatal and reported
            raise HandlerLoadError(
                f"importing module '{name}' failed: {error_type_name(type(exc))}: {_one_line(exc)}"
            ) from None
        attrs = parts[cut:]
        break
    if module is None:
        raise HandlerLoadError(
            f"module not found: no module named '{parts[0]}' "
            f"(tried {', '.join(repr(t) for t in tried)}; searched sys.path and the working directory)"
        )
    mod_name = module.__name__
    if len(attrs) > 2:
        raise HandlerLoadError(
            f"module '{mod_name}' was imported but '{'.'.join(attrs)}' is too deep: "
            "expected module.function or module.Class.method"
        )
    first = attrs[0]
    if not hasattr(module, first):
        raise HandlerLoadError(f"module '{mod_name}' has no attribute '{first}'")
    obj = getattr(module, first)
    if len(attrs) == 1:
        if inspect.isclass(obj):
            raise HandlerLoadError(
                f"'{mod_name}.{first}' is a class; name one of its methods: '{mod_name}.{first}.<method>'"
            )
        func = obj
    else:
        method = attrs[1]
        if inspect.isclass(obj):
            required = _required_params(obj)
            if required:
                raise HandlerLoadError(
                    f"class '{mod_name}.{first}' needs constructor arguments ({', '.join(required)}); "
                    "handler classes are instantiated once with no arguments"
                )
            if not hasattr(obj, method):
                raise HandlerLoadError(f"class '{mod_name}.{first}' has no attribute '{method}'")
            try:
                instance = obj()
            except (Exception, SystemExit) as exc:  # noqa: BLE001
                raise HandlerLoadError(
                    f"constructing '{mod_name}.{first}()' failed: {error_type_name(type(exc))}: {_one_line(exc)}"
                ) from None
        else:
            instance = obj
        if not hasattr(instance, method):
            raise HandlerLoadError(f"'{mod_name}.{first}' has no attribute '{method}'")
        func = getattr(instance, method)
    if not callable(func):
        raise HandlerLoadError(f"'{spec}' is not callable (it is a {type(func).__name__})")
    return Handler(spec, func, _callable_kind(func))


# --------------------------------------------------------------------------- envelope + ABI


def legacy_route(route: dict, where: str = "route") -> dict:
    """``{actors, current}`` (upstream before 2026) as ``{prev, curr, next}``.

    ``actors[current]`` is the actor handling the envelope; ``current ==
    len(actors)`` means the route is exhausted (``curr`` is ``""``).
    """
    actors, current = route.get("actors"), route.get("current", 0)
    if not isinstance(actors, list) or not all(isinstance(a, str) for a in actors):
        raise EnvelopeError(f"invalid envelope: legacy '{where}.actors' must be a list of strings, got {_json_type(actors)}")
    if not isinstance(current, int) or isinstance(current, bool) or not 0 <= current <= len(actors):
        raise EnvelopeError(
            f"invalid envelope: legacy '{where}.current' must be an integer from 0 to {len(actors)} "
            f"(an index into {where}.actors), got {current!r}"
        )
    return {
        "prev": actors[:current],
        "curr": actors[current] if current < len(actors) else "",
        "next": actors[current + 1:],
    }


def is_legacy_route(route) -> bool:
    return isinstance(route, dict) and "actors" in route and not any(k in route for k in ("prev", "curr", "next"))


_legacy_logged = False


def validate_envelope(env) -> None:
    """Raise EnvelopeError unless ``env`` has the shape in docs/runtime-protocol.md.

    A legacy ``{actors, current}`` route is converted in place first.
    """
    global _legacy_logged
    if not isinstance(env, dict):
        raise EnvelopeError(f"envelope must be a JSON object, got {_json_type(env)}")
    if is_legacy_route(env.get("route")):
        env["route"] = legacy_route(env["route"])
        if not _legacy_logged:
            _legacy_logged = True
            LOG.warning(
                "envelope %s has a legacy route {actors, current}; converted to {prev, curr, next} "
                "(logged once; later ones are converted silently)", env.get("id"),
            )
    problems = []
    if "id" not in env:
        problems.append("missing 'id'")
    elif not isinstance(env["id"], str) or not env["id"]:
        problems.append(f"'id' must be a non-empty string, got {_json_type(env['id'])}")
    if "payload" not in env:
        problems.append("missing 'payload'")
    route = env.get("route")
    if "route" not in env:
        problems.append("missing 'route'")
    elif not isinstance(route, dict):
        problems.append(f"'route' must be an object, got {_json_type(route)}")
    else:
        for key in ("prev", "next"):
            if key not in route:
                problems.append(f"missing 'route.{key}'")
            elif not isinstance(route[key], list) or not all(isinstance(a, str) for a in route[key]):
                problems.append(f"'route.{key}' must be a list of strings")
        if "curr" not in route:
            problems.append("missing 'route.curr'")
        elif not isinstance(route["curr"], str):
            problems.append(f"'route.curr' must be a string, got {_json_type(route['curr'])}")
    if env.get("headers") is not None and not isinstance(env["headers"], dict):
        problems.append(f"'headers' must be an object, got {_json_type(env['headers'])}")
    if env.get("status") is not None and not isinstance(env["status"], dict):
        problems.append(f"'status' must be an object, got {_json_type(env['status'])}")
    if env.get("parent_id") is not None and not isinstance(env["parent_id"], str):
        problems.append(f"'parent_id' must be a string, got {_json_type(env['parent_id'])}")
    if problems:
        raise EnvelopeError("invalid envelope: " + "; ".join(problems))


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


_PATH_TOKEN = re.compile(
    r"""\.(?P<name>[A-Za-z_][\w-]*)
      | \.?\[\s*(?:
            "(?P<quoted>(?:[^"\\]|\\.)*)"
          | (?P<index>-?\d+)
          | (?P<start>-?\d*)\s*:\s*(?P<stop>-?\d*)
        )\s*\]""",
    re.VERBOSE,
)


def parse_path(path) -> list:
    """Tokens of a jq-like path: ``.a.b``, ``["key"]``, ``[0]``, ``[1:3]``."""
    if not isinstance(path, str) or not path.startswith("."):
        raise AbiError(f"ABI path must be a string starting with '.', got {path!r}")
    tokens = []
    pos = 0
    while pos < len(path):
        m = _PATH_TOKEN.match(path, pos)
        if not m:
            raise AbiError(f"malformed ABI path {path!r} at position {pos}")
        if m.group("name") is not None:
            tokens.append(m.group("name"))
        elif m.group("quoted") is not None:
            tokens.append(json.loads('"' + m.group("quoted") + '"'))
        elif m.group("index") is not None:
            tokens.append(int(m.group("index")))
        else:
            start, stop = m.group("start"), m.group("stop")
            tokens.append(slice(int(start) if start else None, int(stop) if stop else None))
        pos = m.end()
    if not tokens:
        raise AbiError(f"ABI path {path!r} names nothing")
    return tokens


_GET_ROOTS = {"id", "parent_id", "route", "headers", "status"}
_ROUTE_KEYS = {"prev", "curr", "next"}


class AbiState:
    """The envelope metadata a generator can read and change between frames."""

    def __init__(self, env: dict):
        route = env["route"]
        self.data = {
            "id": env["id"],
            "parent_id": env.get("parent_id"),
            "route": {"prev": list(route["prev"]), "curr": route["curr"], "next": list(route["next"])},
            "headers": env.get("headers") or {},
        }
        if env.get("status") is not None:
            self.data["status"] = env["status"]

    # -- frames
    def shifted_route(self) -> dict:
        route = self.data["route"]
        nxt = route.get("next") or []
        return {
            "prev": list(route["prev"]) + [route["curr"]],
            "curr": nxt[0] if nxt else "",
            "next": list(nxt[1:]),
        }

    def frame(self, payload) -> dict:
        out = {"payload": payload, "route": self.shifted_route(), "headers": self.data["headers"]}
        if self.data.get("status") is not None:
            out["status"] = self.data["status"]
        return out

    def envelope_frame(self, env, n: int) -> dict:
        """The frame for an envelope returned in envelope mode (ASYA_HANDLER_MODE=envelope).

        Its payload, headers, status and ``route.next`` are taken; missing keys
        keep the current values; ``route.prev``/``route.curr`` must be unchanged
        (history is not rewritten); ``id``/``parent_id`` are the sidecar's.
        """
        where = f"envelope mode: result {n}"
        if not isinstance(env, dict) or "payload" not in env:
            got = "an object without 'payload'" if isinstance(env, dict) else _json_type(env)
            raise EnvelopeError(f"{where} must be an envelope (an object with a 'payload' key), got {got}")
        route = self.data["route"]
        nxt = route["next"]
        if env.get("route") is not None:
            r = env["route"]
            if is_legacy_route(r):
                r = legacy_route(r, f"result {n} route")
            if not isinstance(r, dict):
                raise EnvelopeError(f"{where}: 'route' must be an object, got {_json_type(r)}")
            if r.get("prev", route["prev"]) != route["prev"] or r.get("curr", route["curr"]) != route["curr"]:
                raise EnvelopeError(
                    f"{where}: route.prev/route.curr were changed to {r.get('prev')!r}/{r.get('curr')!r} "
                    f"(received {route['prev']!r}/{route['curr']!r}); only route.next may change"
                )
            nxt = r.get("next", nxt)
            if not isinstance(nxt, list) or not all(isinstance(a, str) for a in nxt):
                raise EnvelopeError(f"{where}: 'route.next' must be a list of strings")
        headers = env.get("headers")
        headers = self.data["headers"] if headers is None else headers
        if not isinstance(headers, dict):
            raise EnvelopeError(f"{where}: 'headers' must be an object, got {_json_type(headers)}")
        out = {
            "payload": env["payload"],
            "route": {"prev": list(route["prev"]) + [route["curr"]], "curr": nxt[0] if nxt else "", "next": list(nxt[1:])},
            "headers": headers,
        }
        status = env["status"] if env.get("status") is not None else self.data.get("status")
        if status is not None:
            if not isinstance(status, dict):
                raise EnvelopeError(f"{where}: 'status' must be an object, got {_json_type(status)}")
            out["status"] = status
        return out

    # -- commands
    def command(self, cmd: tuple):
        verb = cmd[0].upper() if isinstance(cmd[0], str) else cmd[0]
        args = cmd[1:]
        if verb == "GET":
            self._arity("GET", args, 1)
            return self.get(args[0])
        if verb == "SET":
            self._arity("SET", args, 2)
            self.set(args[0], args[1])
            return None
        if verb == "DEL":
            self._arity("DEL", args, 1)
            self.delete(args[0])
            return None
        raise AbiError(f"unknown ABI command {cmd[0]!r} (known: GET, SET, DEL, FLY)")

    @staticmethod
    def _arity(verb: str, args: tuple, n: int) -> None:
        if len(args) != n:
            raise AbiError(f"ABI {verb} takes {n} argument(s) after the verb, got {len(args)}")

    def get(self, path):
        tokens = parse_path(path)
        if tokens[0] not in _GET_ROOTS or (tokens[0] == "route" and len(tokens) > 1 and tokens[1] not in _ROUTE_KEYS):
            raise AbiError(
                f"ABI GET {path!r} not allowed: readable are .id, .parent_id, .route(.prev|.curr|.next), .headers, .status"
            )
        node = self.data
        for tok in tokens:
            try:
                node = node[tok]
            except (KeyError, IndexError, TypeError):
                return None
        return copy.deepcopy(node)

    @staticmethod
    def _check_writable(verb: str, path, tokens: list) -> None:
        ok = tokens[0] in ("headers", "status") or (tokens[0] == "route" and len(tokens) > 1 and tokens[1] == "next")
        if not ok:
            raise AbiError(f"ABI {verb} {path!r} not allowed: writable are .route.next, .headers and .status")

    def set(self, path, value) -> None:
        tokens = parse_path(path)
        self._check_writable("SET", path, tokens)
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise AbiError(f"ABI SET {path!r}: value is not JSON: {exc}") from None
        value = copy.deepcopy(value)
        node = self.data
        for i, tok in enumerate(tokens[:-1]):
            try:
                if isinstance(node, dict) and isinstance(tok, str) and tok not in node:
                    node[tok] = {}  # SET creates intermediate objects
                node = node[tok]
            except (KeyError, IndexError, TypeError) as exc:
                raise AbiError(f"ABI SET {path!r}: cannot descend at {tokens[: i + 1]!r}: {exc}") from None
        last = tokens[-1]
        try:
            if isinstance(last, slice) and not isinstance(value, list):
                raise TypeError("a slice takes a list value")
            if isinstance(node, dict) and not isinstance(last, str):
                raise TypeError("an object takes a string key")
            node[last] = value
        except (KeyError, IndexError, TypeError) as exc:
            raise AbiError(f"ABI SET {path!r}: {exc}") from None
        self._normalise(f"SET {path!r}")

    def delete(self, path) -> None:
        tokens = parse_path(path)
        self._check_writable("DEL", path, tokens)
        node = self.data
        for tok in tokens[:-1]:
            try:
                node = node[tok]
            except (KeyError, IndexError, TypeError):
                return  # nothing there: DEL is idempotent
        try:
            del node[tokens[-1]]
        except (KeyError, IndexError):
            pass
        except TypeError as exc:
            raise AbiError(f"ABI DEL {path!r}: {exc}") from None
        self._normalise(f"DEL {path!r}")

    def _normalise(self, what: str) -> None:
        """Keep the shapes frames rely on; a deleted ``.route.next`` means ``[]``."""
        route = self.data["route"]
        if "next" not in route or route["next"] is None:
            route["next"] = []
        if not isinstance(route["next"], list) or not all(isinstance(a, str) for a in route["next"]):
            raise AbiError(f"ABI {what}: .route.next must stay a list of actor names (strings)")
        if "headers" not in self.data or self.data["headers"] is None:
            self.data["headers"] = {}
        if not isinstance(self.data["headers"], dict):
            raise AbiError(f"ABI {what}: .headers must stay an object")
        if "status" in self.data and self.data["status"] is not None and not isinstance(self.data["status"], dict):
            raise AbiError(f"ABI {what}: .status must stay an object")


def _is_command(value) -> bool:
    return isinstance(value, tuple) and len(value) >= 2 and isinstance(value[0], str)


# --------------------------------------------------------------------------- wire


def _jsonable(obj):
    """``default`` hook of the encoder: dataclass instances and pydantic models
    become plain JSON; anything else is still an error."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    # Only a handler that imported pydantic can return its models: never import it here.
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and isinstance(obj, getattr(pydantic, "BaseModel", ())):
        if hasattr(obj, "model_dump"):
            return obj.model_dump(mode="json")  # pydantic 2
        return json.loads(obj.json())  # pydantic 1
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_jsonable)
_ASCII_ENCODER = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":"), default=_jsonable)


def encode(obj) -> bytes:
    """One frame: 4-byte big-endian length + UTF-8 JSON (strict: no NaN/Infinity)."""
    try:
        body = _ENCODER.encode(obj).encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: escape them
        body = _ASCII_ENCODER.encode(obj).encode("ascii")
    return _HEADER.pack(len(body)) + body


class _Reader(asyncio.StreamReader):
    """A StreamReader that tells its connection as soon as the peer has gone, so
    an invocation whose caller disconnected (e.g. the sidecar timed out) is
    cancelled instead of holding a concurrency slot until it ends."""

    on_eof = None

    def feed_eof(self) -> None:
        super().feed_eof()
        callback, self.on_eof = self.on_eof, None
        if callback is not None:
            callback()


def _close_quietly(gen) -> None:
    try:
        gen.close()
    except Exception:  # noqa: BLE001 - e.g. still running in its thread after a cancel
        pass


class _Stop(Exception):
    """The client went away; stop the invocation's output."""


# --------------------------------------------------------------------------- server

_PING_MAX = 1024  # a first request longer than this is not a ping: hand it to the loop
_PONG = encode({"type": "pong"})
_DONE = [encode({"type": "done", "frames": n}) for n in range(4)]


def _done_bytes(frames: int) -> bytes:
    return _DONE[frames] if frames < len(_DONE) else encode({"type": "done", "frames": frames})


def _is_ping(body: bytes) -> bool:
    if body == b'{"op":"ping"}':
        return True
    try:
        req = json.loads(body)
    except ValueError:
        return False
    return isinstance(req, dict) and req.get("op") == "ping" and len(req) == 1


def _recv_blocking(conn: socket.socket, n: int, eof_ok: bool = False):
    buf = bytearray()
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            if eof_ok and not buf:
                return None
            raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def _write_all(fd: int, data: bytes, timeout: float) -> bool:
    """Write ``data`` to a (non-blocking) socket fd from outside the event loop."""
    end = time.monotonic() + timeout
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            left = end - time.monotonic()
            if left <= 0:
                return False
            select.select([], [fd], [], left)
        except OSError:
            return False
    return True


class _Invocation:
    """One invoke in progress, as the deadline machinery sees it."""

    __slots__ = ("env_id", "deadline", "deadline_ms", "writer", "expired", "in_thread", "answered")

    def __init__(self, env_id: str, deadline: float | None, deadline_ms: int | None, writer):
        self.env_id = env_id
        self.deadline = deadline  # time.monotonic() value, or None
        self.deadline_ms = deadline_ms
        self.writer = writer
        self.expired = False
        self.in_thread = False  # a sync handler runs on a thread (pool or its connection's) and cannot be stopped
        self.answered = False  # threaded mode: its terminal response was written (by whom decides the race)


class _Conn:
    """A connection served on its own thread (threaded mode). Its lock keeps the
    handler thread's writes and the watchdog's Timeout answer from interleaving."""

    __slots__ = ("sock", "lock")

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.lock = threading.Lock()


class _Answered(Exception):
    """The watchdog already answered this invocation (Timeout): drop its output."""


def _fly_value(cmd: tuple):
    """The object of a ('FLY', {...}) command; None for another command."""
    if cmd[0].upper() != "FLY":
        return None
    if len(cmd) != 2 or not isinstance(cmd[1], dict):
        raise AbiError("ABI FLY takes one object: ('FLY', {...})")
    return cmd[1]


def _error_bytes(exc: BaseException) -> bytes:
    """A runtime error response (origin: runtime)."""
    return encode({"type": "error", "origin": "runtime", "error": error_info(exc)})


def _too_large_bytes(length: int, max_bytes: int) -> bytes:
    """Logs the refusal of a request frame over ASYA_MAX_FRAME_BYTES; the error to answer
    before closing the connection."""
    LOG.error("refusing a %d-byte request frame (ASYA_MAX_FRAME_BYTES=%d); closing the connection", length, max_bytes)
    return _error_bytes(FrameTooLarge(f"request frame of {length} bytes exceeds ASYA_MAX_FRAME_BYTES={max_bytes}"))


def _fly_bytes(value) -> bytes:
    try:
        return encode({"type": "upstream", "payload": value})
    except (TypeError, ValueError) as exc:
        raise AbiError(f"ABI FLY value is not JSON: {exc}") from None


def _parse_request(body: bytes, received: float):
    """One request frame: None for a ping, (envelope, deadline, deadline_ms) for
    an invoke, or the ProtocolError to answer with."""
    try:
        req = json.loads(body)
    except ValueError as exc:
        return ProtocolError(f"request is not valid UTF-8 JSON: {exc}")
    op = req.get("op") if isinstance(req, dict) else None
    if op == "ping":
        return None
    if op == "invoke":
        ms = req.get("deadline_ms")
        if ms is not None and (not isinstance(ms, int) or isinstance(ms, bool) or ms < 0):
            return ProtocolError(f"'deadline_ms' must be a non-negative integer (milliseconds), got {json.dumps(ms)}")
        return req.get("envelope"), (None if ms is None else received + ms / 1000), ms
    what = f"unknown op {op!r}" if isinstance(req, dict) else f"request must be a JSON object, got {_json_type(req)}"
    return ProtocolError(f"{what} (expected 'invoke' or 'ping')")


def _uncancel(task) -> None:
    uncancel = getattr(task, "uncancel", None)  # Python >= 3.11
    if uncancel is not None:
        uncancel()


class Runtime:
    def __init__(self, config: Config, handler: Handler):
        self.config = config
        self.handler = handler
        self.envelope_mode = config.handler_mode == "envelope"
        # With one invocation at a time a sync handler is called right on the main
        # thread (which runs the loop): no hop to a worker thread per message, and
        # `signal` works in the handler. A watchdog thread enforces deadlines then.
        self.inline = config.concurrency == 1 and not handler.kind.startswith("async")
        # Above concurrency 1 a sync handler is served on its connection's own thread
        # (the sidecar keeps one connection per slot): no hop from the loop to a pool
        # thread and back per message, which cost about as much as the rest of an
        # echo invocation. The loop then only handles signals and shutdown.
        self.threaded = not self.inline and not handler.kind.startswith("async")
        self.boot = secrets.token_hex(16)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pool = None
        # Threaded mode: one lock for inflight, running handlers, _t_watched and claims.
        self._t_lock = threading.Lock()
        self._t_free = threading.Condition(self._t_lock)  # a running handler returned
        self._t_running = 0  # handlers running on connection threads (<= concurrency)
        self._t_idle = threading.Event()
        self._t_idle.set()
        self._t_watched: set[_Invocation] = set()  # threaded invocations with a deadline, unanswered
        if not self.inline and not self.threaded:
            self.pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=config.concurrency, thread_name_prefix="asya-handler"
            )
        self.sem: asyncio.Semaphore | None = None
        self.listener: socket.socket | None = None
        self.accepting = False
        self.inflight = 0
        self.idle: asyncio.Event | None = None
        self.stopping: asyncio.Event | None = None
        self.conn_tasks: set[asyncio.Task] = set()
        self.tasks: set[asyncio.Task] = set()
        self.signals = 0
        self.stop_requested_at: float | None = None
        self.exit_code: int | None = None  # set when a sync handler overran its deadline
        self._busy: _Invocation | None = None  # the invocation running inline right now
        self._watched: set[_Invocation] = set()  # invocations with a deadline, not yet answered
        self._busy_lock = threading.Lock()

    # -- lifecycle
    async def serve(self) -> int:
        self.loop = asyncio.get_running_loop()
        self.sem = asyncio.Semaphore(self.config.concurrency)
        self.idle = asyncio.Event()
        self.idle.set()
        self.stopping = asyncio.Event()
        cfg = self.config
        os.makedirs(cfg.socket_dir, exist_ok=True)
        for stale in (cfg.ready_path, cfg.socket_path):
            try:
                os.unlink(stale)
            except FileNotFoundError:
                pass
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(cfg.socket_path)
            listener.listen(128)
        except OSError:
            listener.close()
            raise
        self.listener = listener
        if cfg.socket_chmod is not None:
            os.chmod(cfg.socket_path, cfg.socket_chmod)
        # Python-level handlers run even while a sync handler runs inline on the
        # main thread, so a second signal and the grace period still work then.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._signal_handler)
        self.accepting = True
        threading.Thread(target=self._accept_loop, name="asya-accept", daemon=True).start()
        threading.Thread(target=self._watchdog, name="asya-watchdog", daemon=True).start()
        tmp = cfg.ready_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(json.dumps({"pid": os.getpid(), "handler": self.handler.spec, "boot": self.boot}) + "\n")
        os.replace(tmp, cfg.ready_path)
        LOG.info(
            "serving %s handler %s on %s (concurrency %d, %s, %s mode, boot %s)",
            self.handler.kind, self.handler.spec, cfg.socket_path, cfg.concurrency,
            "sync calls inline on the main thread" if self.inline
            else "sync calls on each connection's thread" if self.threaded else "async calls on the event loop",
            cfg.handler_mode, self.boot,
        )
        try:
            await self.stopping.wait()
            code = await self._drain()
            return self.exit_code if self.exit_code is not None else code
        finally:
            self._cleanup()

    def _signal_handler(self, sig: int, frame) -> None:
        self.signals += 1
        if self.signals == 1:
            self.stop_requested_at = time.monotonic()
            # Done here, not on the loop: the loop may be busy with an inline handler.
            self._stop_accepting()
            try:
                os.unlink(self.config.ready_path)
            except OSError:
                pass
            try:
                self.loop.call_soon_threadsafe(self._on_signal, sig)
            except RuntimeError:  # the loop has already finished: the process is exiting
                pass
        else:
            # May run in the middle of a handler or of logging: no locks here.
            os.write(2, f"asya-runtime: second {signal.Signals(sig).name}: exiting now\n".encode())
            self._cleanup()
            os._exit(1)

    def _on_signal(self, sig: int) -> None:
        LOG.info(
            "%s received: not accepting new connections; %d invocation(s) in flight, grace %.1fs",
            signal.Signals(sig).name, self.inflight, self.config.shutdown_grace,
        )
        self.stopping.set()

    def _stop_accepting(self) -> None:
        self.accepting = False
        if self.listener is not None:
            try:
                self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accept thread; connects are refused
            except OSError:
                pass

    async def _drain(self) -> int:
        self._stop_accepting()
        try:
            os.unlink(self.config.ready_path)
        except FileNotFoundError:
            pass
        started = self.stop_requested_at if self.stop_requested_at is not None else time.monotonic()
        left = max(0.0, self.config.shutdown_grace - (time.monotonic() - started))
        code = 0
        try:
            if self.threaded:
                if not await self.loop.run_in_executor(None, self._t_idle.wait, left):
                    raise asyncio.TimeoutError
            else:
                await asyncio.wait_for(self.idle.wait(), timeout=left)
            LOG.info("all in-flight invocations finished; exiting")
        except asyncio.TimeoutError:
            LOG.error("shutdown grace %.1fs expired with %d invocation(s) in flight", self.config.shutdown_grace, self.inflight)
            code = 1
        for task in list(self.conn_tasks):
            task.cancel()
        if self.conn_tasks:
            await asyncio.wait(list(self.conn_tasks), timeout=1.0)
        return code

    def _cleanup(self) -> None:
        for path in (self.config.ready_path, self.config.socket_path):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                LOG.warning("cannot remove %s: %s", path, exc)

    # -- accepting: a thread, so probes are answered even while a handler runs inline
    def _accept_loop(self) -> None:
        listener = self.listener
        while self.accepting:
            try:
                conn, _ = listener.accept()
            except OSError as exc:
                if not self.accepting:
                    break
                LOG.warning("accepting a connection failed: %s", exc)
                time.sleep(0.05)  # e.g. out of file descriptors: do not spin
                continue
            if not self.accepting:
                conn.close()
                break
            serve = self._serve_thread if self.threaded else self._first_requests
            threading.Thread(target=serve, args=(conn,), name="asya-conn", daemon=True).start()
        listener.close()

    def _first_requests(self, conn: socket.socket) -> None:
        """Answer pings on a new connection here; hand it to the event loop with
        its first other request (the bytes already read go along)."""
        try:
            while True:
                header = _recv_blocking(conn, 4, eof_ok=True)
                if header is None:
                    conn.close()
                    return
                (length,) = _HEADER.unpack(header)
                if length > _PING_MAX:
                    prefix = header
                    break
                body = _recv_blocking(conn, length)
                if _is_ping(body):
                    conn.sendall(_PONG)
                    continue
                prefix = header + body
                break
        except OSError:
            conn.close()
            return
        try:
            self.loop.call_soon_threadsafe(self._adopt, conn, prefix)
        except RuntimeError:  # the loop has closed: the runtime is exiting
            conn.close()

    def _adopt(self, conn: socket.socket, prefix: bytes) -> None:
        if self.exit_code is not None:
            conn.close()  # closed before any response: the request was not processed
            return
        reader = _Reader(limit=_READ_LIMIT)
        reader.feed_data(prefix)
        protocol = asyncio.StreamReaderProtocol(reader, self._on_connection)
        task = self.loop.create_task(self._attach(conn, protocol))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _attach(self, conn: socket.socket, protocol) -> None:
        try:
            await self.loop.connect_accepted_socket(lambda: protocol, sock=conn)
        except OSError as exc:
            LOG.debug("client went away before its connection was set up: %s", exc)
            conn.close()

    # -- connections
    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self.conn_tasks.add(task)
        reader.on_eof = task.cancel
        # Every write is flushed before the handler goes on, so while a handler
        # runs its connection's buffer is empty and the watchdog can write a
        # Timeout error straight to the socket.
        writer.transport.set_write_buffer_limits(high=0)
        try:
            await self._serve_connection(reader, writer)
        except asyncio.CancelledError:
            pass
        except (ConnectionError, _Stop):
            LOG.debug("client disconnected")
        except Exception:  # noqa: BLE001 - a bug here must not take the runtime down
            LOG.exception("connection failed")
        finally:
            reader.on_eof = None
            self.conn_tasks.discard(task)
            writer.close()

    async def _serve_connection(self, reader, writer) -> None:
        max_bytes = self.config.max_frame_bytes
        while True:
            try:
                header = await reader.readexactly(4)
            except asyncio.IncompleteReadError:
                return  # clean close between requests
            if self.exit_code is not None:
                return  # exiting after a timeout: close without a response (= not processed)
            (length,) = _HEADER.unpack(header)
            if length > max_bytes:
                writer.write(_too_large_bytes(length, max_bytes))
                await writer.drain()
                return
            body = await reader.readexactly(length)
            received = time.monotonic()
            self._begin()
            try:
                await self._handle_request(body, writer, received)
            finally:
                self._end()

    def _begin(self) -> None:
        self.inflight += 1
        self.idle.clear()

    def _end(self) -> None:
        self.inflight -= 1
        if self.inflight == 0:
            self.idle.set()

    async def _runtime_error(self, writer, exc: BaseException) -> None:
        writer.write(_error_bytes(exc))
        await writer.drain()

    async def _handle_request(self, body: bytes, writer, received: float) -> None:
        req = _parse_request(body, received)
        if isinstance(req, ProtocolError):
            await self._runtime_error(writer, req)
        elif req is None:
            writer.write(_PONG)
            await writer.drain()
        else:
            env, deadline, deadline_ms = req
            await self._invoke(env, writer, deadline, deadline_ms)

    # -- invocation
    async def _invoke(self, env, writer, deadline: float | None, deadline_ms: int | None) -> None:
        try:
            validate_envelope(env)
        except EnvelopeError as exc:
            LOG.error("rejecting invoke: %s", exc)
            await self._runtime_error(writer, exc)
            return
        state = AbiState(env)
        env_id = env["id"]
        inv = _Invocation(env_id, deadline, deadline_ms, writer)
        frames = 0

        async def emit(value) -> None:
            nonlocal frames
            data = self._frame_bytes(state, value, frames)
            try:
                writer.write(data)
                await writer.drain()
            except ConnectionError as exc:
                raise _Stop() from exc
            frames += 1

        async def fly(value) -> None:
            data = _fly_bytes(value)
            try:
                writer.write(data)
                await writer.drain()
            except ConnectionError as exc:
                raise _Stop() from exc

        task = asyncio.current_task()
        timer = None
        if deadline is not None:
            timer = self.loop.call_at(deadline, self._expire, inv, task)
            self._watched.add(inv)
        started = time.monotonic()
        answer = None
        pending = b""  # a returned value's frames: sent in one write with `done`
        try:
            async with self.sem:
                if deadline is not None and time.monotonic() >= deadline:
                    inv.expired = True  # never started: nothing to interrupt
                else:
                    results = await self._run_handler(env if self.envelope_mode else env["payload"], state, emit, fly, inv)
                    pending = b"".join(self._frame_bytes(state, v, frames + i) for i, v in enumerate(results))
                    frames += len(results)
        except _Stop:
            LOG.warning("envelope %s: client disconnected before the result was delivered", env_id)
            raise
        except asyncio.CancelledError:
            if not inv.expired:
                LOG.warning(
                    "envelope %s: invocation cancelled (client disconnected or shutdown grace expired)%s",
                    env_id, "; the sync handler's thread runs on" if inv.in_thread else "",
                )
                raise
            _uncancel(task)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - handler errors are data
            answer = self._handler_error_bytes(env_id, exc)
        finally:
            if timer is not None:
                timer.cancel()
                with self._busy_lock:  # blocks for good if the watchdog is answering
                    self._watched.discard(inv)
        if answer is not None:
            writer.write(answer)
            await writer.drain()
            return
        if inv.expired:
            await self._timed_out(inv)
            return
        LOG.debug("envelope %s: done, %d frame(s) in %.1f ms", env_id, frames, (time.monotonic() - started) * 1000)
        writer.write(pending + _done_bytes(frames))
        await writer.drain()

    def _expire(self, inv: _Invocation, task) -> None:
        inv.expired = True
        task.cancel()

    async def _timed_out(self, inv: _Invocation) -> None:
        exc = self._timeout_error(inv)
        LOG.error("envelope %s: %s", inv.env_id, exc)
        if inv.in_thread:
            self._fatal_timeout()  # before answering: the sidecar may look for runtime-ready at once
        await self._runtime_error(inv.writer, exc)

    def _timeout_error(self, inv: _Invocation) -> Timeout:
        if inv.in_thread:
            # A thread cannot be stopped: answer, then exit once the other
            # invocations are done so the slot never stays blocked.
            return Timeout(
                f"handler {self.handler.spec} still running at the deadline of {inv.deadline_ms} ms; "
                f"a sync handler cannot be interrupted, so the runtime exits (code {EXIT_TIMEOUT}) and is restarted"
            )
        return Timeout(f"handler {self.handler.spec} cancelled at the deadline of {inv.deadline_ms} ms")

    def _fatal_timeout(self) -> None:
        if self.exit_code is None:
            LOG.error(
                "exiting with code %d once the other %d invocation(s) in flight end (grace %.1fs)",
                EXIT_TIMEOUT, max(0, self.inflight - 1), self.config.shutdown_grace,
            )
            self.exit_code = EXIT_TIMEOUT
            try:
                os.unlink(self.config.ready_path)
            except FileNotFoundError:
                pass
            self.loop.call_soon_threadsafe(self.stopping.set)  # also called from the watchdog

    # -- inline calls (concurrency 1, sync handler) and their watchdog
    def _call_inline(self, inv: _Invocation, func, *args):
        self._busy = inv
        try:
            return func(*args)
        finally:
            with self._busy_lock:
                self._busy = None

    def _watchdog(self) -> None:
        """Polls for handlers that cannot be stopped from the event loop: a sync
        handler running inline, or a handler that blocks the loop itself."""
        grace = self.config.shutdown_grace
        pause = _WATCH_TICK
        while True:
            time.sleep(pause)
            pause = _WATCH_TICK
            now = time.monotonic()
            inv = self._busy
            if inv is not None:
                if inv.deadline is not None and now >= inv.deadline:
                    self._overrun(inv, now, "inline")
                elif self.stop_requested_at is not None and now >= self.stop_requested_at + grace:
                    self._overrun(inv, now, "grace")
                elif inv.deadline is not None:
                    pause = max(0.001, min(_WATCH_TICK, inv.deadline - now))
            for inv in list(self._watched):
                if now >= inv.deadline + _LOOP_STUCK_AFTER:
                    self._overrun(inv, now, "loop")
            if self.threaded:
                with self._t_lock:
                    watched = list(self._t_watched)
                for inv in watched:
                    if now >= inv.deadline:
                        self._thread_overrun(inv)
                    else:
                        pause = max(0.001, min(pause, inv.deadline - now))

    def _overrun(self, inv: _Invocation, now: float, why: str) -> None:
        """Answer for a handler the event loop cannot stop, and end the process."""
        self._busy_lock.acquire()  # never released: the loop must not answer too
        if not (self._busy is inv if why != "loop" else inv in self._watched):
            self._busy_lock.release()
            return
        self._cleanup()  # runtime-ready goes before the answer: the sidecar may look at once
        if why == "grace":
            LOG.error(
                "shutdown grace %.1fs expired while envelope %s was running; exiting",
                self.config.shutdown_grace, inv.env_id,
            )
            code = 1
        else:
            late = int((now - inv.deadline) * 1000)
            if why == "inline":
                what = "still running"
                cannot = "a sync handler cannot be interrupted"
            else:
                what = "blocked the event loop"
                cannot = "a handler that blocks the event loop cannot be cancelled"
            exc = Timeout(
                f"handler {self.handler.spec} {what} {late} ms past the deadline of {inv.deadline_ms} ms; "
                f"{cannot}, so the runtime exits (code {EXIT_TIMEOUT}) and is restarted"
            )
            transport = inv.writer.transport
            sock = inv.writer.get_extra_info("socket")
            # Written only on a quiet connection: bytes still buffered would interleave.
            if sock is not None and transport.get_write_buffer_size() == 0:
                _write_all(sock.fileno(), encode({"type": "error", "origin": "runtime", "error": error_info(exc)}), 1.0)
            LOG.error("envelope %s: %s", inv.env_id, exc)
            code = EXIT_TIMEOUT
        for h in logging.getLogger().handlers:
            h.flush()
        os._exit(code)

    # -- threaded mode: a sync handler above concurrency 1, on its connection's thread
    def _serve_thread(self, sock: socket.socket) -> None:
        """Serves one connection's requests (pings too) until it closes."""
        conn = _Conn(sock)
        rfile = sock.makefile("rb")
        max_bytes = self.config.max_frame_bytes
        try:
            while True:
                header = rfile.read(4)
                if len(header) < 4 or self.exit_code is not None:
                    return  # closed; or exiting after a timeout: close unanswered (= not processed)
                (length,) = _HEADER.unpack(header)
                if length > max_bytes:
                    self._t_send(conn, _too_large_bytes(length, max_bytes))
                    return
                body = rfile.read(length)
                if len(body) < length:
                    return
                req = _parse_request(body, time.monotonic())
                if isinstance(req, ProtocolError):
                    self._t_send(conn, _error_bytes(req))
                elif req is None:
                    self._t_send(conn, _PONG)
                else:
                    self._invoke_in_thread(conn, *req)
        except (OSError, _Stop):
            LOG.debug("client disconnected")
        except Exception:  # noqa: BLE001 - a bug here must not take the runtime down
            LOG.exception("connection failed")
        finally:
            rfile.close()
            sock.close()

    @staticmethod
    def _t_send(conn: _Conn, data: bytes) -> None:
        with conn.lock:
            conn.sock.sendall(data)

    def _invoke_in_thread(self, conn: _Conn, env, deadline: float | None, deadline_ms: int | None) -> None:
        try:
            validate_envelope(env)
        except EnvelopeError as exc:
            LOG.error("rejecting invoke: %s", exc)
            self._t_send(conn, _error_bytes(exc))
            return
        state = AbiState(env)
        inv = _Invocation(env["id"], deadline, deadline_ms, conn)
        with self._t_lock:
            self.inflight += 1
            self._t_idle.clear()
            started = self._t_admit(inv)
        answer = None
        try:
            if not inv.in_thread:
                exc = self._timeout_error(inv)  # never started: nothing to interrupt, the runtime stays up
                LOG.error("envelope %s: %s", inv.env_id, exc)
                answer = _error_bytes(exc)
                return
            answer = self._run_in_thread(env if self.envelope_mode else env["payload"], state, inv)
        except _Answered:
            LOG.debug("envelope %s: output after the Timeout answer dropped", inv.env_id)
        except _Stop:
            LOG.warning("envelope %s: client disconnected before the result was delivered", inv.env_id)
            raise
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - handler errors are data
            answer = self._handler_error_bytes(inv.env_id, exc)
        finally:
            self._t_finish(inv, answer, started)

    def _t_admit(self, inv: _Invocation) -> bool:
        """Under ``_t_lock``: waits for one of the ``concurrency`` slots until the
        deadline. True once a slot is taken; ``inv.in_thread`` then says whether the
        handler is to run (False: the deadline passed first)."""
        deadline = inv.deadline
        while self._t_running >= self.config.concurrency:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            self._t_free.wait(left)
        self._t_running += 1
        if deadline is not None:
            if time.monotonic() >= deadline:
                return True
            self._t_watched.add(inv)  # the watchdog answers if it overruns
        inv.in_thread = True
        return True

    def _t_finish(self, inv: _Invocation, answer: bytes | None, started: bool) -> None:
        """Frees the slot, writes the terminal response (None: none) unless the
        watchdog answered first, and ends the invocation; exactly one of the two
        ends it."""
        conn = inv.writer
        with conn.lock:
            with self._t_lock:
                if started:
                    self._t_running -= 1
                    self._t_free.notify()
                if inv.answered:
                    return
                inv.answered = True
                self._t_watched.discard(inv)
            try:
                if answer is not None:
                    conn.sock.sendall(answer)
            finally:
                self._t_end()

    def _t_end(self) -> None:
        with self._t_lock:
            self.inflight -= 1
            if self.inflight == 0:
                self._t_idle.set()

    def _thread_overrun(self, inv: _Invocation) -> None:
        """Watchdog: a sync handler on its connection's thread is past its deadline.
        It cannot be stopped: answer Timeout, then exit once the others are done."""
        conn = inv.writer
        if not conn.lock.acquire(timeout=1.0):
            return  # a write is stuck; the next tick tries again
        try:
            with self._t_lock:
                if inv.answered:
                    return
                inv.answered = True
                self._t_watched.discard(inv)
            exc = self._timeout_error(inv)
            LOG.error("envelope %s: %s", inv.env_id, exc)
            self._fatal_timeout()  # before answering: the sidecar may look for runtime-ready at once
            try:
                conn.sock.sendall(_error_bytes(exc))
            except OSError:
                pass
        finally:
            conn.lock.release()
        self._t_end()

    def _run_in_thread(self, arg, state: AbiState, inv: _Invocation) -> bytes:
        """Runs the handler on this thread; returns the frames still to send plus
        ``done``. A generator's frames are written as they come."""
        conn = inv.writer
        frames = 0

        def send_now(data: bytes) -> None:
            with conn.lock:
                if inv.answered:
                    raise _Answered()
                try:
                    conn.sock.sendall(data)
                except OSError as exc:
                    raise _Stop() from exc

        def emit(value) -> None:
            nonlocal frames
            send_now(self._frame_bytes(state, value, frames))
            frames += 1

        def fly(value) -> None:
            send_now(_fly_bytes(value))

        result = self.handler.func(arg)
        if inspect.isawaitable(result) or inspect.isasyncgen(result):
            # A callable that only turned out to be async at call time: its
            # coroutine or async generator runs on the loop; this thread waits.
            async def finish(value):
                async def aemit(v):
                    emit(v)

                async def afly(v):
                    fly(v)

                if inspect.isawaitable(value):
                    value = await value
                if inspect.isasyncgen(value):
                    await self._drive_async_gen(value, state, aemit, afly)
                    return None
                return value

            result = asyncio.run_coroutine_threadsafe(finish(result), self.loop).result()
        results = []
        if inspect.isgenerator(result):
            self._drive_gen_here(result, state, emit, fly)
        else:
            results = self._plain_results(result)
        pending = b"".join(self._frame_bytes(state, v, frames + i) for i, v in enumerate(results))
        return pending + _done_bytes(frames + len(results))

    def _drive_gen_here(self, gen, state: AbiState, emit, fly) -> None:
        """A sync generator stepped on this thread (threaded mode); see ``_drive_async_gen``."""
        reply, error = None, None
        try:
            while True:
                try:
                    value = gen.throw(error) if error is not None else gen.send(reply)
                except StopIteration:
                    return
                reply, error = None, None
                try:
                    if value is None:
                        continue
                    if _is_command(value):
                        if _fly_value(value) is not None:
                            fly(value[1])
                        else:
                            reply = state.command(value)
                    else:
                        emit(value)
                except (AbiError, SerializationError) as exc:
                    error = exc.with_traceback(None)  # report it at the yield, not in here
        finally:
            _close_quietly(gen)

    def _handler_error_bytes(self, env_id: str, exc: BaseException) -> bytes:
        info = error_info(exc, user_frames_only=True)
        LOG.error(
            "envelope %s: handler %s raised %s: %s",
            env_id, self.handler.spec, info["type"], _one_line(info["message"]),
        )
        LOG.debug("envelope %s traceback:\n%s", env_id, info["traceback"])
        return encode({"type": "error", "origin": "handler", "error": info})

    # -- running the handler
    async def _run_handler(self, arg, state: AbiState, emit, fly, inv: _Invocation) -> list:
        """Runs the handler; a generator's frames go out through ``emit`` as they
        come, a returned value's are returned (see ``_plain_results``)."""
        h = self.handler
        if self.inline and h.kind == "function":
            result = self._call_inline(inv, h.func, arg)
        elif h.runs_on_loop:
            result = h.func(arg)
        else:
            inv.in_thread = True
            result = await self.loop.run_in_executor(self.pool, h.func, arg)
            inv.in_thread = False  # not reached when cancelled: the thread runs on
        if inspect.isawaitable(result):
            result = await result
        if inspect.isasyncgen(result):
            await self._drive_async_gen(result, state, emit, fly)
        elif inspect.isgenerator(result):
            await self._drive_sync_gen(result, state, emit, fly, inv)
        else:
            return self._plain_results(result)
        return []

    def _plain_results(self, result) -> list:
        """The values a returned (not yielded) result frames: each envelope of a
        list in envelope mode, else the value itself; None frames nothing."""
        if result is None:
            return []
        if self.envelope_mode and isinstance(result, list):
            return result
        return [result]

    def _frame_bytes(self, state: AbiState, value, n: int) -> bytes:
        """Frame ``n`` of an invocation, encoded and checked against the frame limit."""
        frame = state.envelope_frame(value, n) if self.envelope_mode else state.frame(value)
        try:
            data = encode({"type": "frame", "frame": frame})
        except (TypeError, ValueError) as exc:
            raise SerializationError(f"frame {n}: handler result is not JSON-serialisable: {exc}") from None
        if len(data) - 4 > self.config.max_frame_bytes:
            raise SerializationError(
                f"frame {n}: {len(data) - 4} bytes exceeds ASYA_MAX_FRAME_BYTES={self.config.max_frame_bytes}"
            )
        return data

    async def _yielded(self, value, state: AbiState, emit, fly):
        """Act on one yielded value; returns what the generator receives back."""
        if value is None:
            return None
        if _is_command(value):
            if _fly_value(value) is not None:
                await fly(value[1])
                return None
            return state.command(value)
        await emit(value)
        return None

    # A failed ABI command or an unserialisable yield is thrown back into the
    # generator at its ``yield``: the traceback then points at the user's line, and
    # a generator that wants to can catch it and go on.

    async def _drive_async_gen(self, agen, state, emit, fly) -> None:
        reply, error = None, None
        try:
            while True:
                try:
                    value = await (agen.athrow(error) if error is not None else agen.asend(reply))
                except StopAsyncIteration:
                    return
                reply, error = None, None
                try:
                    reply = await self._yielded(value, state, emit, fly)
                except (AbiError, SerializationError) as exc:
                    error = exc.with_traceback(None)  # report it at the yield, not in here
        finally:
            try:
                await agen.aclose()
            except Exception:  # noqa: BLE001 - a generator that misbehaves on close
                pass

    async def _drive_sync_gen(self, gen, state, emit, fly, inv: _Invocation) -> None:
        loop = self.loop
        done = object()

        def step(reply, error):
            try:
                return gen.throw(error) if error is not None else gen.send(reply)
            except StopIteration:
                return done

        reply, error = None, None
        try:
            while True:
                if self.inline:
                    value = self._call_inline(inv, step, reply, error)
                else:
                    inv.in_thread = True
                    value = await loop.run_in_executor(self.pool, step, reply, error)
                    inv.in_thread = False  # not reached when cancelled: the thread runs on
                if value is done:
                    return
                reply, error = None, None
                try:
                    reply = await self._yielded(value, state, emit, fly)
                except (AbiError, SerializationError) as exc:
                    error = exc.with_traceback(None)  # report it at the yield, not in here
        finally:
            if self.inline:
                self._call_inline(inv, _close_quietly, gen)
            else:
                # Not awaited: after a cancel the generator may still be running in
                # its thread, and close() then has to wait for a free worker.
                self.pool.submit(_close_quietly, gen)


# --------------------------------------------------------------------------- probe


def probe(config: Config) -> int:
    """Exit status for an exec probe: 0 iff ready file exists and ping → pong within 2 s."""
    deadline = time.monotonic() + PROBE_TIMEOUT
    if not os.path.exists(config.ready_path):
        print(f"asya-runtime probe: {config.ready_path} does not exist", file=sys.stderr)
        return 1
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(PROBE_TIMEOUT)
            sock.connect(config.socket_path)
            body = b'{"op":"ping"}'
            sock.sendall(_HEADER.pack(len(body)) + body)
            header = _recv_exact(sock, 4, deadline)
            (length,) = _HEADER.unpack(header)
            if length > 4096:
                raise OSError(f"implausible reply length {length}")
            reply = json.loads(_recv_exact(sock, length, deadline))
    except (OSError, ValueError) as exc:
        print(f"asya-runtime probe: ping over {config.socket_path} failed: {exc}", file=sys.stderr)
        return 1
    if not isinstance(reply, dict) or reply.get("type") != "pong":
        print(f"asya-runtime probe: unexpected reply {reply!r}", file=sys.stderr)
        return 1
    return 0


def _recv_exact(sock: socket.socket, n: int, deadline: float) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no reply within 2 s")
        sock.settimeout(left)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed before the reply")
        buf += chunk
    return bytes(buf)


# --------------------------------------------------------------------------- main


USAGE = """usage: asya_runtime.py [--probe]

Serves the handler named by ASYA_HANDLER on $ASYA_SOCKET_DIR/$ASYA_SOCKET_NAME.
  --probe   exit 0 iff the runtime is ready and answers a ping within 2 s (exec probe)
See docs/runtime.md for the environment variables."""


def _fatal(message: str) -> int:
    sys.stderr.write(f"asya-runtime: {_one_line(message)}\n")
    sys.stderr.flush()
    return 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if argv and argv != ["--probe"]:
        return _fatal(f"unknown arguments {' '.join(argv)!r}; {USAGE.splitlines()[0]}")
    try:
        config = Config()
    except ConfigError as exc:
        return _fatal(f"invalid configuration: {exc}")
    if argv == ["--probe"]:
        return probe(config)
    setup_logging(config.log_level, config.log_format)
    if config.ignored:
        LOG.warning("ignoring environment variables this runtime does not read: %s", "; ".join(config.ignored))
    # The handler's module is found on sys.path (PYTHONPATH), in the working dir,
    # or next to this file (/opt/asya in a pod: upstream's flow compiler mounts
    # its generated routers.py there). Python adds this file's directory itself
    # unless PYTHONSAFEPATH/-P/-I is set; then it comes last, so it shadows nothing.
    here = os.path.dirname(os.path.abspath(__file__))
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(1 if sys.path and sys.path[0] == here else 0, cwd)
    if here not in sys.path:
        sys.path.append(here)
    try:
        handler = load_handler(config.handler)
    except HandlerLoadError as exc:
        return _fatal(f"cannot load handler {config.handler!r}: {exc}")
    if len(config.socket_path.encode()) > 107:
        return _fatal(f"socket path too long for a Unix socket ({len(config.socket_path)} > 107 bytes): {config.socket_path}")
    runtime = Runtime(config, handler)
    try:
        code = asyncio.run(runtime.serve())
    except OSError as exc:
        return _fatal(f"cannot serve on {config.socket_path}: {exc}")
    # Abandoned sync handler threads (grace expired) must not keep the process alive.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
