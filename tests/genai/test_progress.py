"""A long loop shows about ten console lines whatever its length: the first step, the last and
every tenth of the way; the rest go to the command's log file only."""

from __future__ import annotations

import pytest

from genai.progress import milestone


@pytest.mark.parametrize(
    ("total", "shown"),
    [
        (1, [1]),
        (4, [1, 2, 3, 4]),
        (10, list(range(1, 11))),
        (40, [1, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40]),  # the demo's retrain
        (45, [1, 5, 10, 15, 20, 25, 30, 35, 40, 45]),
        (260, [1, *range(26, 261, 26)]),  # the digits DDPM recipe
    ],
)
def test_milestones_are_the_first_the_last_and_every_tenth(total, shown):
    assert [step + 1 for step in range(total) if milestone(step, total)] == shown


def test_a_heartbeat_repeats_only_a_state_left_unsaid_for_its_period():
    """Never silent for ``every`` seconds, and no repeat of a state just said."""
    import logging
    import time

    from genai.progress import LOGGER, heartbeat

    said: list[tuple[float, str]] = []

    class Keep(logging.Handler):
        def emit(self, record):
            said.append((time.monotonic(), record.getMessage()))

    logger = logging.getLogger(LOGGER)
    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with heartbeat("test", every=0.5) as status:
            status("first")
            time.sleep(0.45)
            status("second")  # said 0.45 s after "first": "first" is never repeated
            time.sleep(1.3)  # "second" is repeated about every 0.5 s
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    texts = [text.split(None, 1)[1] for _, text in said]
    assert texts[:2] == ["first", "second"] and not any("first (" in t for t in texts)
    repeats = [t for t in texts if t.startswith("second (")]
    assert 2 <= len(repeats) <= 3, texts
    gaps = [b - a for (a, _), (b, _) in zip(said, said[1:], strict=False)]
    assert max(gaps) < 0.5 + 0.25, gaps
    assert gaps[1] >= 0.45, gaps  # "second" is repeated 0.5 s after it was said, not at once
