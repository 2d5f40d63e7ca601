"""Retry policy shared by the flows' tasks: retry I/O, never a user's mistake."""

from __future__ import annotations

from typing import Any


def retry_on_io(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect retry condition: retry store and OS errors; configuration and data errors end."""
    from genai.data.sources import DataError
    from genai.strict import ConfigError

    try:
        state.result()
    except (ConfigError, DataError):
        return False
    except Exception as err:  # StoreError, OSError, connection errors
        return isinstance(err, OSError | RuntimeError)
    return False
