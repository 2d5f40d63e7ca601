"""What a person watching a command wants to read: one short line per step of a long stage.

Stages report through the ``genai.progress`` logger (``say("train", "epoch 3/10 ...")``); the
command line shows that logger on the console and sends every other log line (Ray, Ray Data,
Prefect, library warnings) to its log file. As a library, nothing is shown unless the caller
configures logging.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

LOGGER = "genai.progress"
log = logging.getLogger(LOGGER)
detail = logging.getLogger("genai.detail")  # the log file only, beside the libraries' lines


def say(stage: str, message: str) -> None:
    log.info("%-8s %s", stage, message)


def note(stage: str, message: str) -> None:
    """A step worth keeping but not worth a console line (the command's log file has it)."""
    detail.info("%-8s %s", stage, message)


def milestone(step: int, total: int, lines: int = 10) -> bool:
    """Whether 0-based ``step`` of ``total`` gets a console line: the first, the last and every
    ``total / lines``-th, so a long loop shows about ``lines`` lines whatever its length."""
    every = max(1, math.ceil(total / lines))
    return step == 0 or step + 1 >= total or (step + 1) % every == 0


def step(stage: str, done: int, total: int, message: str) -> None:
    """Step ``done`` (0-based) of ``total``: on the console at a milestone, else in the log."""
    (say if milestone(done, total) else note)(stage, message)


@contextlib.contextmanager
def heartbeat(stage: str, every: float = 10.0) -> Iterator[Callable[[str], None]]:
    """A long block that is never silent for more than ``every`` seconds: the block sets its
    state with the function this yields (said at once, or with ``shown=False`` only kept: a
    step the console skips), and when nothing was said for ``every`` seconds a thread says the
    state again, with the seconds it has taken."""
    now = time.monotonic()
    state: dict[str, Any] = {"text": "", "since": now, "said": now}
    lock = threading.Lock()
    stop = threading.Event()

    def status(text: str, *, shown: bool = True) -> None:
        with lock:
            state["text"], state["since"] = text, time.monotonic()
            if shown:
                state["said"] = state["since"]
        if shown:
            say(stage, text)

    def beat() -> None:  # says the state again only when nothing was said for ``every`` s
        while True:
            with lock:
                text, since, said = state["text"], state["since"], state["said"]
                left = said + every - time.monotonic()
                if left <= 0:
                    state["said"] = time.monotonic()
            if left > 0:
                if stop.wait(left):
                    return
                continue
            if text:
                say(stage, f"{text} ({time.monotonic() - since:.0f}s so far)")
            if stop.is_set():
                return

    thread = threading.Thread(target=beat, name=f"genai-{stage}-heartbeat", daemon=True)
    thread.start()
    try:
        yield status
    finally:
        stop.set()
        thread.join()
