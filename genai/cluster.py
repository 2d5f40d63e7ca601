"""Ray start-up, paid once per process and shared by preparation, training and sweeps."""

from __future__ import annotations

import logging
import os

import ray

TRAIN_POLL_S = "0.1"


def ensure_ray(address: str | None = None, *, num_cpus: int | None = None) -> None:
    """Join ``address`` ("auto" or a head address), or start a local Ray, unless one is running.

    Workers inherit the AWS_* variables so they reach the same S3 endpoint as the driver.
    Ray Train's controller polls workers every RAY_TRAIN_HEALTH_CHECK_INTERVAL_S (2 s by default)
    and a worker's report waits for that poll, which made every epoch take at least 2 s; we poll
    every 0.1 s unless the environment says otherwise (docs/BENCHMARKS.md).
    """
    if ray.is_initialized():
        return
    env = {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "GENAI_", "RAY_TRAIN_"))}
    env.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", TRAIN_POLL_S)
    kwargs: dict = {
        "include_dashboard": False,
        "log_to_driver": True,
        "logging_level": logging.WARNING,
        "runtime_env": {"env_vars": env} if env else None,
    }
    if address is None and num_cpus is not None:
        # a CPU count means a Ray of our own: "local" starts one even where `ray start` left a
        # cluster this machine would otherwise join
        address = "local"
        kwargs["num_cpus"] = num_cpus
    ray.init(address=address, **kwargs)
