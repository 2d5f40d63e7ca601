"""The verdict on fixed numbers, computed by hand: a paired t-interval of the differences from
the best, by seed; a row whose interval holds 0 cannot be told apart from the best."""

from __future__ import annotations

import math

import pytest

from genai.compare.verdict import leaderboard, paired_interval, sentence, shown_interval

T_2 = 4.302652729911275  # t(0.975, 2 degrees of freedom), from a printed table: 4.303
T_4 = 2.7764451051977987  # t(0.975, 4): 2.776


def test_the_interval_by_hand():
    # diffs 1, 2, 3: mean 2, sd 1, standard error 1 / sqrt(3); 2 +- 4.303 * 0.57735
    low, high = paired_interval([1.0, 2.0, 3.0])
    assert low == pytest.approx(2 - T_2 / math.sqrt(3)) == pytest.approx(-0.48414, abs=1e-5)
    assert high == pytest.approx(2 + T_2 / math.sqrt(3)) == pytest.approx(4.48414, abs=1e-5)
    # five pairs: 0.5, 0.7, 0.4, 0.6, 0.8: mean 0.6, sd sqrt(0.025) = 0.15811
    low, high = paired_interval([0.5, 0.7, 0.4, 0.6, 0.8])
    half = T_4 * math.sqrt(0.025) / math.sqrt(5)
    assert (low, high) == (pytest.approx(0.6 - half), pytest.approx(0.6 + half))
    assert low == pytest.approx(0.40368, abs=1e-5)
    assert paired_interval([3.0]) is None  # one pair: no interval


def test_the_leaderboard_and_the_marking():
    """KID (lower is better, compared as differences) of three cells over three seeds. a: 10, 12, 11 (mean 11, best);
    b: 11, 14, 14 (diffs 1, 2, 3: the interval above, holds 0: indistinguishable); c: 20.1,
    22.0, 20.9 (diffs 10.1, 10.0, 9.9: mean 10, sd 0.1, 10 +- 0.2484: worse)."""
    rows = {
        "b": {0: {"kid": 11.0}, 1: {"kid": 14.0}, 2: {"kid": 14.0}},
        "c": {0: {"kid": 20.1}, 1: {"kid": 22.0}, 2: {"kid": 20.9}},
        "a": {0: {"kid": 10.0}, 1: {"kid": 12.0}, 2: {"kid": 11.0}},
    }
    board = leaderboard(rows, "kid")
    assert [r["row"] for r in board] == ["a", "b", "c"]
    assert [r["verdict"] for r in board] == ["best", "indistinguishable", "worse"]
    assert board[0]["kid_mean"] == 11.0 and board[0]["kid_sd"] == 1.0
    assert board[0]["diff_low"] is None and board[0]["diff"] == 0.0
    b, c = board[1], board[2]
    assert b["diff"] == pytest.approx(2.0)
    assert (b["diff_low"], b["diff_high"]) == (pytest.approx(-0.48414, abs=1e-5),
                                               pytest.approx(4.48414, abs=1e-5))  # fmt: skip
    assert c["diff"] == pytest.approx(10.0)
    assert c["diff_low"] == pytest.approx(10 - T_2 * 0.1 / math.sqrt(3))  # 9.7516, above 0
    said = sentence(board, "kid", str.upper, "300 steps", 3)
    assert said == (
        "A is best by kid (11 +- 1 over 3 seeds); B cannot be told apart from it at 300 steps"
        " and 3 seeds."
    )


def test_a_distance_is_compared_as_a_log_ratio():
    """FID: a collapsing GAN at 30, 70, 41 against a model at 2.1, 3.5, 2.2. As differences
    (27.9, 66.5, 38.8: mean 44.4, sd 19.9) the interval holds 0; as log ratios (2.659, 2.996,
    2.925: every seed 14-20x worse) it lies far above it."""
    rows = {
        "gan": {0: {"fid": 30.0}, 1: {"fid": 70.0}, 2: {"fid": 41.0}},
        "made": {0: {"fid": 2.1}, 1: {"fid": 3.5}, 2: {"fid": 2.2}},
    }
    logs = [math.log(30 / 2.1), math.log(70 / 3.5), math.log(41 / 2.2)]
    mean = sum(logs) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / 2)
    board = leaderboard(rows, "fid")
    gan = board[1]
    assert gan["row"] == "gan" and gan["scale"] == "log" and gan["verdict"] == "worse"
    assert gan["diff"] == pytest.approx(mean)
    assert gan["diff_low"] == pytest.approx(mean - T_2 * sd / math.sqrt(3))  # 2.42, above 0
    assert shown_interval(gan) == "x17.5 [x11.2, x27.1]"  # by hand: sd 0.1774, half 0.4407
    linear = paired_interval([30 - 2.1, 70 - 3.5, 41 - 2.2])
    assert linear[0] < 0 < linear[1]  # as plain differences it could not tell them apart
    rows["made"][1] = {"fid": -0.1}  # a value not above 0: plain differences
    assert leaderboard(rows, "fid")[1]["scale"] == "linear"


def test_a_higher_is_better_metric_and_a_diverged_model():
    """high_quality (higher is better): differences count in the worse direction. A row with a
    diverged model (judged on fewer seeds than planned) ranks after the complete rows, whatever
    its mean, with no interval; so does a row whose models all diverged."""
    rows = {
        "best": {0: {"high_quality": 0.9}, 1: {"high_quality": 0.8}, 2: {"high_quality": 0.85}},
        "low": {0: {"high_quality": 0.1}, 1: {"high_quality": 0.2}, 2: {"high_quality": 0.15}},
        "one": {2: {"high_quality": 0.95}},
        "none": {},
    }
    board = leaderboard(rows, "high_quality", {"best": 3, "low": 3, "one": 3, "none": 3})
    assert [r["row"] for r in board] == ["best", "low", "one", "none"]
    assert [r["verdict"] for r in board] == ["best", "worse", "diverged", "diverged"]
    assert board[1]["diff"] == pytest.approx(0.7)  # positive: worse
    assert board[2]["diff_low"] is None and board[2]["diverged"] == 2
    assert board[3]["seeds"] == 0 and "high_quality_mean" not in board[3]
    said = sentence(board, "high_quality", str, "each recipe's steps", 3)
    assert said == (
        "best is best by high_quality (0.85 +- 0.05 over 3 seeds); no other cell is"
        " indistinguishable from it at each recipe's steps and 3 seeds; one, none had a model"
        " diverge."
    )


def test_an_infinite_metric_gives_no_interval():
    """reverse KL is inf for a model that misses every mode: inf - inf has no interval."""
    rows = {
        "a": {0: {"reverse_kl": 0.1}, 1: {"reverse_kl": 0.2}},
        "b": {0: {"reverse_kl": math.inf}, 1: {"reverse_kl": math.inf}},
        "c": {0: {"reverse_kl": math.inf}, 1: {"reverse_kl": 0.3}},
    }
    board = leaderboard(rows, "reverse_kl")
    assert [r["row"] for r in board] == ["a", "b", "c"]  # b and c: an infinite mean each
    assert [r["verdict"] for r in board] == ["best", "unknown", "unknown"]
