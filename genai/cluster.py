"""Ray start-up, paid once per process and shared by preparation, training and sweeps."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass

import ray

TRAIN_POLL_S = "0.1"
PREEMPTION_WATCHER = "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def ensure_ray(address: str | None = None, *, num_cpus: int | None = None) -> None:
    """Join ``address`` ("auto" or a head address; default $RAY_ADDRESS), or start a Ray of
    this process's own, unless one is running.

    Workers inherit the AWS_* variables so they reach the same S3 endpoint as the driver, and
    RAY_ADDRESS naming their own cluster: Ray's state API, which Ray Train's PlacementGroupCleaner
    asks whether a controller is alive, otherwise fails with "Found multiple active Ray instances"
    wherever a machine runs two, and a dead controller's CPUs stay held.
    Ray Train's controller polls workers every RAY_TRAIN_HEALTH_CHECK_INTERVAL_S (2 s by default)
    and a worker's report waits for that poll, which made every epoch take at least 2 s; we poll
    every 0.1 s unless the environment says otherwise (docs/BENCHMARKS.md). On a Ray of this
    machine alone (one this process starts, or the head genai commands share) Ray Train's
    preemption watcher is off unless RAY_TRAIN_ENABLE_PREEMPTION_WATCHER says otherwise: it
    watches for nodes a cloud is about to take away, and each fit started it as one more process.
    """
    if ray.is_initialized():
        return
    # Ray's private modules are imported where they are used, in this file: imported at the
    # top (727c8ed) they made every Ray Train epoch about 1 s slower (bench/train_overhead.py,
    # genai 1 worker / plain 0.77 against 1.17, side by side; the cause was not isolated)
    from ray._private.services import canonicalize_bootstrap_address

    env = {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "GENAI_", "RAY_TRAIN_"))}
    env.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", TRAIN_POLL_S)
    kwargs: dict = {
        # the dashboard serves the state API: Ray Train's PlacementGroupCleaner asks it whether a
        # controller is alive, and without it a controller that dies (a trial Tune stops) leaves
        # its workers' placement group, and their CPUs, held until the driver exits
        "include_dashboard": True,
        "dashboard_host": "127.0.0.1",
        "log_to_driver": True,
        "logging_level": logging.WARNING,
    }
    if address is None and (num_cpus is not None or not os.environ.get("RAY_ADDRESS")):
        # no address given (or a CPU count): a Ray of our own. Left to itself, ray.init() joins
        # whatever /tmp/ray/ray_current_cluster names, which a `ray start` of an earlier session
        # may have left behind, alive or not
        address = "local"
    if address == "local" and num_cpus is not None:
        kwargs["num_cpus"] = num_cpus
    client = address is not None and address.startswith("ray://")
    target = None if client or address == "local" else canonicalize_bootstrap_address(address)
    started_port = None
    if target is None and not client:  # we start a local Ray: choose its GCS port
        started_port = str(_free_port())
        target = f"{ray.util.get_node_ip_address()}:{started_port}"
    if target is not None:
        env["RAY_ADDRESS"] = target
    if started_port is not None or _is_shared_head(target):
        # a Ray of this machine alone: no node of it can be preempted, so no Ray Train fit needs
        # the actor that watches for that (one more process each fit starts beside its workers)
        env.setdefault(PREEMPTION_WATCHER, "0")
    previous = os.environ.get("RAY_GCS_SERVER_PORT")
    if started_port is not None:
        os.environ["RAY_GCS_SERVER_PORT"] = started_port
    try:
        ray.init(address=address, runtime_env={"env_vars": env}, **kwargs)
    finally:
        if started_port is not None:
            if previous is None:
                os.environ.pop("RAY_GCS_SERVER_PORT", None)
            else:
                os.environ["RAY_GCS_SERVER_PORT"] = previous


HEAD = "ray"
STARTING_S = 120  # a head that has not answered this long after its start never will


@dataclass(frozen=True)
class LocalHead:
    """The shared local Ray head: its address, its process (None: it answered already),
    whether this command started it, and when it was started (``time.time()``)."""

    address: str
    pid: int | None
    started: bool
    since: float = 0.0

    def wait(self, timeout: float | None = None) -> str:
        """Its address, once it answers: by ``STARTING_S`` after its start unless ``timeout``
        (seconds from now) says otherwise."""
        if self.pid is not None:
            import time

            from genai import daemon

            if timeout is None:
                timeout = max(self.since + STARTING_S - time.time(), 1.0)
            daemon.wait_until(
                lambda: _reachable(self.address), timeout, "the local Ray head start", self.pid
            )
        return self.address


def start_head(num_cpus: int | None = None) -> LocalHead:
    """The local Ray that genai commands share, started now (detached: ``ray start --head
    --block``, dashboard on 127.0.0.1) if none runs or starts; it may still be starting (wait
    for it with :meth:`LocalHead.wait`, e.g. after the command's imports), so later and
    concurrent commands join it instead of paying Ray's start-up again or running a second Ray
    beside it. ``genai down`` stops it."""
    import sys
    import time

    from genai import daemon

    with daemon.locked(HEAD):
        state = daemon.read_state(HEAD)
        if state is not None and _reachable(state["address"]):
            _speak_as(state["auth_mode"])
            return LocalHead(state["address"], None, False)
        if state is not None and time.time() - state["started"] < STARTING_S:
            _speak_as(state["auth_mode"])  # another command started it a moment ago
            return LocalHead(state["address"], int(state["pid"]), False, state["started"])
        if state is not None:  # its pid lives on (or again, reused) but no head answers
            daemon.stop(HEAD)
        # token auth unless the environment says otherwise: the head's GCS and dashboard listen
        # on this machine, the token (~/.ray/auth_token) is readable by this user only
        mode = os.environ.setdefault("RAY_AUTH_MODE", "token")
        if mode == "token":
            from ray._private.authentication.authentication_token_setup import (
                generate_and_save_token,
            )
            from ray._raylet import AuthenticationTokenLoader

            if not AuthenticationTokenLoader.instance().has_token(ignore_auth_mode=True):
                generate_and_save_token()
        _speak_as(mode)
        port = daemon.free_port()
        argv = [  # `ray start` by module: an install may have no `ray` script beside python
            sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
            f"--port={port}", "--include-dashboard=true", "--dashboard-host=127.0.0.1",
            f"--dashboard-port={daemon.free_port()}", "--disable-usage-stats",
            f"--num-cpus={num_cpus or os.cpu_count() or 1}",
        ]  # fmt: skip
        address = f"{ray.util.get_node_ip_address()}:{port}"
        state = daemon.start(HEAD, argv, dict(os.environ), address=address, auth_mode=mode)
        return LocalHead(address, state["pid"], True, state["started"])


def local_head(num_cpus: int | None = None, timeout: float | None = None) -> tuple[str, bool]:
    """The address of the shared local Ray (:func:`start_head`) once it answers, and whether
    this call started it."""
    head = start_head(num_cpus)
    return head.wait(timeout), head.started


# `ray start --block` answers SIGTERM by draining its raylet and GCS for over 30 s on this machine
# (measured), then the group is killed anyway; the head keeps no state a longer wait would save
HEAD_GRACE_S = 5.0


def stop_head() -> bool:
    """Stop the shared local Ray head, if one runs; whether one did. Like `ray stop`, forget it
    as the machine's current cluster, so no later ``ray.init()`` tries to join a dead head."""
    from ray._common.utils import reset_ray_address
    from ray._private.utils import read_ray_address

    from genai import daemon

    with daemon.locked(HEAD):
        state = daemon.read_state(HEAD, dead_too=True)
        stopped = daemon.stop(HEAD, timeout=HEAD_GRACE_S)
        if state is not None and read_ray_address() == state["address"]:
            reset_ray_address()
    return stopped


def _speak_as(mode: str) -> None:
    """This process connects with the head's authentication mode (Ray reads it into its C++
    config, which must be initialised again when it changes)."""
    from ray._raylet import Config

    if os.environ.get("RAY_AUTH_MODE") != mode:
        os.environ["RAY_AUTH_MODE"] = mode
    Config.initialize("")


def _is_shared_head(address: str | None) -> bool:
    """Whether ``address`` is the local Ray head genai commands share (:func:`start_head`)."""
    from genai import daemon

    state = daemon.read_state(HEAD) if address else None
    return state is not None and state["address"] == address


def _reachable(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, int(port))) == 0
