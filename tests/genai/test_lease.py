"""Leases on local disk and on S3 (moto): one holder at a time, takeover of an expired lease by
exactly one of many, release, and the refusal under --no-wait naming the holder."""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import pytest

from genai.lease import Lease, LeaseHeld, hold


def test_create_exclusive_has_one_winner(store):
    key = "x/once.json"
    results: list[bool] = []
    barrier = threading.Barrier(6)

    def create(i: int) -> None:
        barrier.wait()
        results.append(store.create_exclusive(key, f"writer {i}".encode()))

    threads = [threading.Thread(target=create, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 5 + [True]
    assert store.read_bytes(key).decode().startswith("writer ")
    assert store.list("x") == ["x/once.json"]  # no temporary object left behind


def test_one_holder_then_the_next_after_release(store):
    first, second = Lease(store, "runs/r/lease", "run r"), Lease(store, "runs/r/lease", "run r")
    assert first.try_acquire() is None
    holder = second.try_acquire()
    assert holder is not None and not holder.free
    assert str(holder) == f"{socket.gethostname()}/{os.getpid()}"
    first.release()
    assert store.list("runs/r/lease") == []  # a released lease leaves nothing behind
    assert second.try_acquire() is None
    assert second.number == 0
    second.release()
    assert store.list("runs/r/lease") == []


def test_an_expired_lease_is_taken_over_by_exactly_one(store, monkeypatch):
    monkeypatch.setenv("GENAI_LEASE_TTL_S", "0.6")
    dead = Lease(store, "sweeps/s/lease", "sweep s")
    assert dead.try_acquire() is None
    dead._stop.set()  # its holder dies: no renewal, no release
    dead._thread.join()
    time.sleep(0.8)
    contenders = [Lease(store, "sweeps/s/lease", "sweep s") for _ in range(5)]
    barrier = threading.Barrier(len(contenders))
    won: list[Lease] = []

    def take(lease: Lease) -> None:
        barrier.wait()
        if lease.try_acquire() is None:
            won.append(lease)

    threads = [threading.Thread(target=take, args=(c,)) for c in contenders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and won[0].number == 1
    time.sleep(0.5)  # the winner renews (every ttl/3): still held after the first ttl
    assert Lease(store, "sweeps/s/lease", "sweep s").try_acquire() is not None
    won[0].release()
    assert store.list("sweeps/s/lease") == []  # the winner's and the dead one's


def test_a_holder_that_comes_back_finds_it_lost(store, monkeypatch):
    monkeypatch.setenv("GENAI_LEASE_TTL_S", "0.6")
    stalled = Lease(store, "runs/q/lease", "run q")
    assert stalled.try_acquire() is None
    stalled._stop.set()
    stalled._thread.join()
    time.sleep(0.8)
    taker = Lease(store, "runs/q/lease", "run q")
    assert taker.try_acquire() is None
    stalled._stop.clear()  # it wakes up and renews: finds the newer lease, gives up
    stalled._thread = threading.Thread(target=stalled._renew, daemon=True)
    stalled._thread.start()
    stalled._thread.join(timeout=5)
    assert stalled.lost
    stalled.release()  # writes nothing: the lease is the taker's
    assert taker.current().number == 1 and not taker.current().free
    taker.release()


def test_no_wait_names_the_holder(store):
    held_by = rf"run z is being produced by {socket.gethostname()}/{os.getpid()} "
    with (
        hold(store, "runs/z/lease", "run z"),
        pytest.raises(LeaseHeld, match=held_by),
        hold(store, "runs/z/lease", "run z", wait=False),
    ):
        pass
    with hold(store, "runs/z/lease", "run z") as lease:  # released: free again
        assert lease.number == 0


def test_a_holder_gone_from_this_machine_is_taken_over_at_once(store):
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()
    held = Lease(store, "runs/g/lease", "run g")
    held.try_acquire()
    held._stop.set()
    held._thread.join()
    record = json.loads(store.read_bytes("runs/g/lease/lease-00000000.json"))
    store.write_bytes(  # as if written by that process: alive for a minute more, but dead
        "runs/g/lease/lease-00000000.json", json.dumps({**record, "pid": gone.pid}).encode()
    )
    other = Lease(store, "runs/g/lease", "run g")
    assert other.try_acquire() is None and other.number == 1
    other.release()
    assert store.list("runs/g/lease") == []
    elsewhere = {**record, "pid": gone.pid, "host": "another-machine"}
    store.write_bytes("runs/g/lease/lease-00000002.json", json.dumps(elsewhere).encode())
    holder = Lease(store, "runs/g/lease", "run g").try_acquire()  # not ours to judge: wait
    assert holder is not None and str(holder) == f"another-machine/{gone.pid}"
