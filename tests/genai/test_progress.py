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
