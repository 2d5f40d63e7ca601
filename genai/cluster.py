"""Ray start-up, paid once per process and shared by preparation, training and sweeps."""

from __future__ import annotations

import logging
import os

import ray


def ensure_ray(address: str | None = None, *, num_cpus: int | None = None) -> None:
    """Join ``address`` ("auto" or a head address), or start a local Ray, unless one is running.

    Workers inherit the AWS_* variables so they reach the same S3 endpoint as the driver.
    """
    if ray.is_initialized():
        return
    env = {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "GENAI_"))}
    kwargs: dict = {
        "include_dashboard": False,
        "log_to_driver": True,
        "logging_level": logging.WARNING,
        "runtime_env": {"env_vars": env} if env else None,
    }
    if address is None:
        kwargs["num_cpus"] = num_cpus
    ray.init(address=address, **kwargs)
