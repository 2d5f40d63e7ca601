"""Long-lived local services that genai commands share: started detached by the first command
that needs one, found and reused by later and concurrent ones, stopped by ``genai down``.

Each service has a state file (``{home}/{name}.json``: pid, address, log) and a lock file, so two
commands starting at once start one service, not two. ``home`` is ``$GENAI_STATE_DIR`` (default
``~/.cache/genai``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def home() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    path = Path(os.environ.get("GENAI_STATE_DIR") or os.path.join(base, "genai"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    """An exclusive lock across processes of this machine (released when the holder dies)."""
    with open(home() / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not yet reaped by its parent, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):  # no /proc (macOS): the signal said it is there
        return True


def read_state(name: str, *, dead_too: bool = False) -> dict[str, Any] | None:
    """The service's state if its process is still alive (or, ``dead_too``, its last record)."""
    path = home() / f"{name}.json"
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if dead_too or alive(int(state["pid"])) else None


def start(name: str, argv: list[str], env: dict[str, str], **state: Any) -> dict[str, Any]:
    """Start ``argv`` in a session of its own (it outlives this command), output to a log next
    to its state; record and return its state."""
    log_path = home() / f"{name}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    record = {"pid": proc.pid, "log": str(log_path), "started": time.time(), **state}
    (home() / f"{name}.json").write_text(json.dumps(record))
    return record


def wait_until(check, timeout: float, what: str, pid: int | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if pid is not None and not alive(pid):
            raise RuntimeError(f"{what}: the process exited; see {home()}")
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not happen within {timeout:.0f}s; see {home()}")


def stop(name: str, timeout: float = 30) -> bool:
    """Stop the service (its whole process group) and forget it; whether one was running."""
    state = read_state(name)
    (home() / f"{name}.json").unlink(missing_ok=True)
    if state is None:
        return False
    pid = int(state["pid"])
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return True
