"""What a command shows: progress lines and its result on the console, everything else in a log.

``genai``'s own progress (the ``genai.progress`` logger) goes to the terminal's stderr, one line
per step, and the result to its stdout. Everything else the process and its children write (the
logging of Prefect, Ray, Ray Data and Tune, warnings, what Ray forwards from its workers, the
temporary Prefect server) goes to a log file: file descriptors 1 and 2 are pointed at it, so no
library line reaches the terminal whichever way it is written. The log's path is printed at the
start and at the end. ``--verbose`` leaves the terminal as it is and shows everything.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import TextIO

from genai.progress import LOGGER

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(os.environ.get("GENAI_LOG_DIR") or os.path.join(base, "genai", "logs"))


_ACTIVE: list[Console] = []  # the console of this process's command, once it has one


def active() -> Console | None:
    return _ACTIVE[-1] if _ACTIVE else None


def terminal() -> TextIO:
    """Where a message for the person at the terminal goes (stderr, wherever fd 2 now points)."""
    shown = active()
    return shown.err if shown is not None else sys.stderr


class Console:
    """The terminal of one command: ``out`` for its result, ``err`` for progress and errors."""

    def __init__(self, command: str, *, verbose: bool = False) -> None:
        _ACTIVE.append(self)
        self.verbose = verbose
        directory = log_dir()
        directory.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.path = directory / f"genai-{command}-{stamp}-{os.getpid()}.log"
        sys.stdout.flush()
        sys.stderr.flush()
        if verbose:
            self.out, self.err = sys.stdout, sys.stderr
        else:
            self.out = _reopen(os.dup(1))
            self.err = _reopen(os.dup(2))
            log = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.close(log)
        root = logging.getLogger()
        root.setLevel(logging.INFO)
        to_log = logging.StreamHandler(sys.stderr)  # the log file (or the terminal, verbose)
        to_log.setFormatter(logging.Formatter(FORMAT))
        to_log.addFilter(lambda record: record.name != LOGGER)
        root.addHandler(to_log)
        logging.captureWarnings(True)
        logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per Prefect API call
        progress = logging.getLogger(LOGGER)
        progress.setLevel(logging.INFO)
        progress.propagate = False
        shown = logging.StreamHandler(self.err)
        shown.setFormatter(logging.Formatter("%(message)s"))
        progress.addHandler(shown)
        if not verbose:  # and into the log, with the time
            logged = logging.StreamHandler(sys.stderr)
            logged.setFormatter(logging.Formatter(FORMAT))
            progress.addHandler(logged)

    def print(self, text: str) -> None:
        """The command's result, on the terminal's stdout."""
        print(text, file=self.out, flush=True)

    def close(self) -> None:
        for stream in (sys.stdout, sys.stderr, self.out, self.err):
            stream.flush()


def _reopen(fd: int) -> TextIO:
    return os.fdopen(fd, "w", buffering=1, encoding="utf-8", errors="replace")
