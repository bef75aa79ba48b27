#!/usr/bin/env python3
"""Asya runtime: serves one Python handler to the asya-sidecar over a Unix socket.

One file, standard library only, Python >= 3.10. It runs inside the user's image
as ``python3 /opt/asya/asya_runtime.py``; ``--probe`` turns it into a shell-free
readiness/liveness check. The wire protocol is ``docs/runtime-protocol.md``; the
environment variables and handler kinds are in ``docs/runtime.md``.

Design in brief: one persistent asyncio event loop serves every connection.
``async def`` handlers run on that loop (at most ``ASYA_RUNTIME_CONCURRENCY`` at
once); synchronous handlers and synchronous generators run in a thread pool of
the same size, so a slow sync handler never stops the loop from answering pings.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import concurrent.futures.thread
import copy
import importlib
import inspect
import json
import logging
import os
import re
import signal
import socket
import struct
import sys
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


def validate_envelope(env) -> None:
    """Raise EnvelopeError unless ``env`` has the shape in docs/runtime-protocol.md."""
    if not isinstance(env, dict):
        raise EnvelopeError(f"envelope must be a JSON object, got {_json_type(env)}")
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


def encode(obj) -> bytes:
    """One frame: 4-byte big-endian length + UTF-8 JSON (strict: no NaN/Infinity)."""
    try:
        body = json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: escape them
        body = json.dumps(obj, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")
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


class Runtime:
    def __init__(self, config: Config, handler: Handler):
        self.config = config
        self.handler = handler
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=config.concurrency, thread_name_prefix="asya-handler"
        )
        self.sem: asyncio.Semaphore | None = None
        self.server: asyncio.AbstractServer | None = None
        self.inflight = 0
        self.idle: asyncio.Event | None = None
        self.stopping: asyncio.Event | None = None
        self.conn_tasks: set[asyncio.Task] = set()
        self.signals = 0

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

        def protocol():
            return asyncio.StreamReaderProtocol(_Reader(limit=_READ_LIMIT), self._on_connection)

        self.server = await self.loop.create_unix_server(protocol, path=cfg.socket_path)
        if cfg.socket_chmod is not None:
            os.chmod(cfg.socket_path, cfg.socket_chmod)
        for sig in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(sig, self._on_signal, sig)
        tmp = cfg.ready_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(json.dumps({"pid": os.getpid(), "handler": self.handler.spec}) + "\n")
        os.replace(tmp, cfg.ready_path)
        LOG.info(
            "serving %s handler %s on %s (concurrency %d)",
            self.handler.kind, self.handler.spec, cfg.socket_path, cfg.concurrency,
        )
        try:
            await self.stopping.wait()
            return await self._drain()
        finally:
            self._cleanup()

    def _on_signal(self, sig: int) -> None:
        self.signals += 1
        if self.signals == 1:
            LOG.info(
                "%s received: not accepting new connections; %d invocation(s) in flight, grace %.1fs",
                signal.Signals(sig).name, self.inflight, self.config.shutdown_grace,
            )
            self.stopping.set()
        else:
            LOG.warning("second %s: exiting now", signal.Signals(sig).name)
            self._cleanup()
            os._exit(1)

    async def _drain(self) -> int:
        self.server.close()
        try:
            os.unlink(self.config.ready_path)
        except FileNotFoundError:
            pass
        code = 0
        try:
            await asyncio.wait_for(self.idle.wait(), timeout=self.config.shutdown_grace)
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

    # -- connections
    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self.conn_tasks.add(task)
        reader.on_eof = task.cancel
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
            (length,) = _HEADER.unpack(header)
            if length > max_bytes:
                LOG.error("refusing a %d-byte request frame (ASYA_MAX_FRAME_BYTES=%d); closing the connection", length, max_bytes)
                exc = FrameTooLarge(f"request frame of {length} bytes exceeds ASYA_MAX_FRAME_BYTES={max_bytes}")
                await self._send(writer, {"type": "error", "origin": "runtime", "error": error_info(exc)})
                return
            body = await reader.readexactly(length)
            self._begin()
            try:
                await self._handle_request(body, writer)
            finally:
                self._end()

    def _begin(self) -> None:
        self.inflight += 1
        self.idle.clear()

    def _end(self) -> None:
        self.inflight -= 1
        if self.inflight == 0:
            self.idle.set()

    @staticmethod
    async def _send(writer, obj) -> None:
        writer.write(encode(obj))
        await writer.drain()

    async def _handle_request(self, body: bytes, writer) -> None:
        try:
            req = json.loads(body)
        except ValueError as exc:
            err = ProtocolError(f"request is not valid UTF-8 JSON: {exc}")
            await self._send(writer, {"type": "error", "origin": "runtime", "error": error_info(err)})
            return
        op = req.get("op") if isinstance(req, dict) else None
        if op == "ping":
            await self._send(writer, {"type": "pong"})
        elif op == "invoke":
            await self._invoke(req.get("envelope"), writer)
        else:
            what = f"unknown op {op!r}" if isinstance(req, dict) else f"request must be a JSON object, got {_json_type(req)}"
            err = ProtocolError(f"{what} (expected 'invoke' or 'ping')")
            await self._send(writer, {"type": "error", "origin": "runtime", "error": error_info(err)})

    # -- invocation
    async def _invoke(self, env, writer) -> None:
        try:
            validate_envelope(env)
        except EnvelopeError as exc:
            LOG.error("rejecting invoke: %s", exc)
            await self._send(writer, {"type": "error", "origin": "runtime", "error": error_info(exc)})
            return
        state = AbiState(env)
        env_id = env["id"]
        frames = 0

        async def emit(payload) -> None:
            nonlocal frames
            try:
                data = encode({"type": "frame", "frame": state.frame(payload)})
            except (TypeError, ValueError) as exc:
                raise SerializationError(
                    f"frame {frames}: handler result is not JSON-serialisable: {exc}"
                ) from None
            if len(data) - 4 > self.config.max_frame_bytes:
                raise SerializationError(
                    f"frame {frames}: {len(data) - 4} bytes exceeds ASYA_MAX_FRAME_BYTES={self.config.max_frame_bytes}"
                )
            try:
                writer.write(data)
                await writer.drain()
            except ConnectionError as exc:
                raise _Stop() from exc
            frames += 1

        async def fly(value) -> None:
            try:
                data = encode({"type": "upstream", "payload": value})
            except (TypeError, ValueError) as exc:
                raise AbiError(f"ABI FLY value is not JSON: {exc}") from None
            try:
                writer.write(data)
                await writer.drain()
            except ConnectionError as exc:
                raise _Stop() from exc

        started = time.monotonic()
        async with self.sem:
            try:
                await self._run_handler(env["payload"], state, emit, fly)
            except _Stop:
                LOG.warning("envelope %s: client disconnected before the result was delivered", env_id)
                raise
            except asyncio.CancelledError:
                LOG.warning(
                    "envelope %s: invocation cancelled (client disconnected or shutdown grace expired)%s",
                    env_id, "" if self.handler.kind.startswith("async") else "; the sync handler's thread runs on",
                )
                raise
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - handler errors are data
                info = error_info(exc, user_frames_only=True)
                LOG.error(
                    "envelope %s: handler %s raised %s: %s",
                    env_id, self.handler.spec, info["type"], _one_line(info["message"]),
                )
                LOG.debug("envelope %s traceback:\n%s", env_id, info["traceback"])
                await self._send(writer, {"type": "error", "origin": "handler", "error": info})
                return
        LOG.debug("envelope %s: done, %d frame(s) in %.1f ms", env_id, frames, (time.monotonic() - started) * 1000)
        await self._send(writer, {"type": "done", "frames": frames})

    async def _run_handler(self, payload, state: AbiState, emit, fly) -> None:
        h = self.handler
        loop = self.loop
        if h.runs_on_loop:
            result = h.func(payload)
        else:
            result = await loop.run_in_executor(self.pool, h.func, payload)
        if inspect.isawaitable(result):
            result = await result
        if inspect.isasyncgen(result):
            await self._drive_async_gen(result, state, emit, fly)
        elif inspect.isgenerator(result):
            await self._drive_sync_gen(result, state, emit, fly)
        elif result is not None:
            await emit(result)

    async def _yielded(self, value, state: AbiState, emit, fly):
        """Act on one yielded value; returns what the generator receives back."""
        if value is None:
            return None
        if _is_command(value):
            if value[0].upper() == "FLY":
                if len(value) != 2 or not isinstance(value[1], dict):
                    raise AbiError("ABI FLY takes one object: ('FLY', {...})")
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

    async def _drive_sync_gen(self, gen, state, emit, fly) -> None:
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
                value = await loop.run_in_executor(self.pool, step, reply, error)
                if value is done:
                    return
                reply, error = None, None
                try:
                    reply = await self._yielded(value, state, emit, fly)
                except (AbiError, SerializationError) as exc:
                    error = exc.with_traceback(None)  # report it at the yield, not in here
        finally:
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
    # The handler's module is found on sys.path (PYTHONPATH) or in the working dir.
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(1 if sys.path and sys.path[0] == os.path.dirname(os.path.abspath(__file__)) else 0, cwd)
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
