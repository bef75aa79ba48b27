"""Handlers that depend on, or report, the thread they are called on."""

import signal
import threading
import time


class Alarm(Exception):
    pass


def _on_alarm(signum, frame):
    raise Alarm()


def where(payload):
    return {"main_thread": threading.current_thread() is threading.main_thread()}


def gen_where(payload):
    yield {"main_thread": threading.current_thread() is threading.main_thread()}


def alarm_timeout(payload):
    """A handler that bounds its own work with SIGALRM, as upstream users did."""
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, payload["alarm"])
    try:
        time.sleep(payload["work"])
        return {"finished": True}
    except Alarm:
        return {"interrupted_by_alarm": True}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def gen_sleeps(payload):
    """Yields one frame, then blocks in its next step."""
    yield {"first": True}
    time.sleep(payload["sleep"])
    yield {"second": True}


async def async_blocks_loop(payload):
    """An async handler that never awaits: the event loop cannot cancel it."""
    time.sleep(payload["sleep"])
    return {"slept": payload["sleep"]}


def thread_of(payload):
    return {"thread": threading.current_thread().name, "ident": threading.get_ident()}
