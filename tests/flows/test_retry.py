"""The tasks' retry policy: I/O is retried; bad input and failed training runs are not."""

from __future__ import annotations

import pytest

from flows.retry import retry_on_io
from genai.data.sources import DataError
from genai.storage import StoreError
from genai.strict import ConfigError
from genai.train.trainer import TrainError


class FailedState:
    def __init__(self, err: Exception):
        self.err = err

    def result(self):
        raise self.err


@pytest.mark.parametrize(
    ("err", "retried"),
    [
        (StoreError("cannot write: s3://b/x"), True),
        (ConnectionResetError("reset"), True),
        (ConfigError("model.family: ..."), False),
        (DataError("data.uri: ... does not exist"), False),
        (TrainError("run x failed: worker died 3 times"), False),
        (FloatingPointError("nan"), False),
    ],
)
def test_retry_policy(err, retried):
    assert retry_on_io(None, None, FailedState(err)) is retried
