"""The one base of every error a user can cause and fix: a bad config, bad data, an unreachable
store, a run that cannot be judged. The command line prints its message (no traceback) and exits
with status 2; everything else is a bug or an infrastructure failure and keeps its traceback."""

from __future__ import annotations


class UserError(Exception):
    """An error whose message names what is wrong and how to fix it."""
