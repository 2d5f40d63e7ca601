"""What a person watching a command wants to read: one short line per step of a long stage.

Stages report through the ``genai.progress`` logger (``say("train", "epoch 3/10 ...")``); the
command line shows that logger on the console and sends every other log line (Ray, Ray Data,
Prefect, library warnings) to its log file. As a library, nothing is shown unless the caller
configures logging.
"""

from __future__ import annotations

import logging

LOGGER = "genai.progress"
log = logging.getLogger(LOGGER)


def say(stage: str, message: str) -> None:
    log.info("%-8s %s", stage, message)
