"""Retry policy shared by the flows' tasks: retry I/O, never a user's mistake or a failed run."""

from __future__ import annotations

from typing import Any

from genai.storage import StoreError


def retry_on_io(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect retry condition: retry store and OS errors only. Configuration and data errors end
    the task, and so does a training failure: recovering runs is Ray's job (FailureConfig)."""
    try:
        state.result()
    except (StoreError, OSError):
        return True
    except Exception:
        return False
    return False
