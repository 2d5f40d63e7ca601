"""Ray start-up, paid once per process and shared by preparation, training and sweeps."""

from __future__ import annotations

import logging
import os
import socket

import ray

TRAIN_POLL_S = "0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def ensure_ray(address: str | None = None, *, num_cpus: int | None = None) -> None:
    """Join ``address`` ("auto" or a head address), or start a local Ray, unless one is running.

    Workers inherit the AWS_* variables so they reach the same S3 endpoint as the driver, and
    RAY_ADDRESS naming their own cluster: Ray's state API, which Ray Train's PlacementGroupCleaner
    asks whether a controller is alive, otherwise fails with "Found multiple active Ray instances"
    wherever a machine runs two, and a dead controller's CPUs stay held.
    Ray Train's controller polls workers every RAY_TRAIN_HEALTH_CHECK_INTERVAL_S (2 s by default)
    and a worker's report waits for that poll, which made every epoch take at least 2 s; we poll
    every 0.1 s unless the environment says otherwise (docs/BENCHMARKS.md).
    """
    if ray.is_initialized():
        return
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
    if address is None and num_cpus is not None:
        # a CPU count means a Ray of our own: "local" starts one even where `ray start` left a
        # cluster this machine would otherwise join
        address = "local"
        kwargs["num_cpus"] = num_cpus
    client = address is not None and address.startswith("ray://")
    target = None if client or address == "local" else canonicalize_bootstrap_address(address)
    started_port = None
    if target is None and not client:  # we start a local Ray: choose its GCS port
        started_port = str(_free_port())
        target = f"{ray.util.get_node_ip_address()}:{started_port}"
    if target is not None:
        env["RAY_ADDRESS"] = target
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
