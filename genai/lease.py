"""One writer per artifact: a lease in the store, held while a run or a sweep is produced.

A lease is a sequence of small JSON objects ``{key}/lease-NNNNNNNN.json`` (holder, host, pid,
expiry); the current one is the highest number. Each is created with a conditional write that
fails when the object exists (a hard link on local disk, ``If-None-Match: *`` on S3), so of two
commands taking the same lease exactly one wins. The holder alone rewrites its object: to renew
it (a thread, every third of its lifetime); it deletes it at the end. A lease whose holder
died expires (at once, when it ran on this machine) and the next one is taken by creating the
following number, so even two commands
that find it expired at once cannot both take it; the old holder, should it come back, finds the
newer lease when it next renews, stops renewing and says so.

A second command for the same artifact waits for the holder ("waiting for run X held by
host/pid") and then goes on, finding the result finished or resuming from the last checkpoint;
told not to wait (``wait=False``, the commands' ``--no-wait``) it stops at once with a
:class:`LeaseHeld` error naming the holder. ``GENAI_LEASE_TTL_S`` sets a lease's lifetime
(default 60 s).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from genai import layout
from genai.daemon import alive
from genai.errors import UserError
from genai.progress import say
from genai.storage import ArtifactStore, StoreError

WAIT_SAY_EVERY_S = 30.0


class LeaseHeld(UserError):
    """The artifact is being produced by another command and this one was told not to wait."""


def ttl_s() -> float:
    return float(os.environ.get("GENAI_LEASE_TTL_S", "60"))


@dataclass(frozen=True)
class Holder:
    number: int
    owner: str
    host: str
    pid: int
    expires: float
    released: bool

    @classmethod
    def parse(cls, number: int, body: dict[str, Any]) -> Holder:
        return cls(
            number,
            body["owner"],
            body["host"],
            int(body["pid"]),
            float(body["expires"]),
            bool(body.get("released")),
        )

    @property
    def free(self) -> bool:
        """Released, expired, or held by a process of this machine that is gone (a command
        killed here need not be waited out)."""
        if self.released or self.expires < time.time():
            return True
        if self.host == socket.gethostname():
            return not alive(self.pid)
        return False

    def __str__(self) -> str:
        return f"{self.host}/{self.pid}"


class Lease:
    """The lease of one artifact (``key`` is its store prefix, e.g. ``runs/{run_id}/lease``)."""

    def __init__(self, store: ArtifactStore, key: str, what: str) -> None:
        self.store, self.key, self.what = store, key.rstrip("/"), what
        self.owner = uuid.uuid4().hex
        self.number: int | None = None
        self.ttl = ttl_s()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False

    def _object(self, number: int) -> str:
        return layout.lease_object(self.key, number)

    def _body(self, *, released: bool = False) -> bytes:
        return json.dumps(
            {
                "owner": self.owner,
                "what": self.what,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "expires": time.time() + self.ttl,
                "released": released,
            }
        ).encode()

    def current(self) -> Holder | None:
        """The highest-numbered lease object, if any."""
        for _ in range(10):
            found = (layout.lease_number(key) for key in self.store.list(self.key))
            numbers = [number for number in found if number is not None]
            if not numbers:
                return None
            number = max(numbers)
            try:
                return Holder.parse(number, json.loads(self.store.read_bytes(self._object(number))))
            except (StoreError, ValueError, KeyError):  # cleaned up since the listing: again
                time.sleep(0.05)
        raise StoreError(f"{self.what}: cannot read its lease under {self.store.key_uri(self.key)}")

    def try_acquire(self) -> Holder | None:
        """Take the lease; ``None`` when taken, else who holds it."""
        held = self.current()
        if held is not None and not held.free:
            return held
        number = 0 if held is None else held.number + 1
        if self.store.create_exclusive(self._object(number), self._body()):
            self.number = number
            self._thread = threading.Thread(target=self._renew, daemon=True, name="lease")
            self._thread.start()
            if held is not None:  # forget the ones before the last (a reader may be on it)
                for old in range(max(0, held.number - 8), held.number):
                    with contextlib.suppress(Exception):
                        self.store.delete(self._object(old))
            return None
        return self.current() or Holder(number, "?", "?", 0, time.time() + 1, False)

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                newest = self.current()
                if newest is not None and newest.number != self.number:
                    self.lost = True
                    return
                self.store.write_bytes(self._object(self.number), self._body())
            except Exception:  # a store that is away for a moment: try again at the next tick
                continue

    def release(self) -> None:
        """Stop renewing and delete this lease and the dead ones before it: the store holds no
        trace of the lease afterwards (the next command creates number 0 again)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.number is not None and not self.lost:
            for old in range(self.number, max(-1, self.number - 9), -1):
                with contextlib.suppress(Exception):
                    self.store.delete(self._object(old))
        self.number = None


@contextlib.contextmanager
def hold(
    store: ArtifactStore, key: str, what: str, poll_s: float = 1.0, *, wait: bool = True
) -> Iterator[Lease]:
    """Hold the lease of ``key`` for the block: wait while another command holds it (saying
    so), or with ``wait=False`` raise :class:`LeaseHeld` at once, naming the holder."""
    lease = Lease(store, key, what)
    said = 0.0
    while True:
        holder = lease.try_acquire()
        if holder is None:
            break
        if not wait:
            raise LeaseHeld(
                f"{what} is being produced by {holder} (its lease runs until"
                f" {time.strftime('%H:%M:%S', time.localtime(holder.expires))}); run again"
                " without --no-wait to wait for it"
            )
        if time.monotonic() - said > WAIT_SAY_EVERY_S:
            say("wait", f"waiting for {what} held by {holder}")
            said = time.monotonic()
        time.sleep(poll_s)
    try:
        yield lease
    finally:
        lease.release()
        if lease.lost:  # this command stalled past its lease: someone else went on with it
            say("wait", f"{what}: this command's lease expired and another command took it over")
