"""The one exception the data layer raises for missing, corrupt or mismatched dataset files."""
from __future__ import annotations


class DatasetError(ValueError):
    """A dataset file or directory is missing, corrupt, or not what the loader expects.

    The message names the offending path or value and says what to do about it. It is a
    ``ValueError`` so that callers validating user input can catch both alike.
    """


class CacheInvalid(DatasetError):
    """A cache file exists but cannot be used (truncated, stale, wrong parameters, bad
    checksum). Loaders catch it, say why, and rebuild the cache."""


class MissingDependencyError(DatasetError, ImportError):
    """An optional dependency a loader needs is not installed; the message names the
    ``pip install`` that provides it."""
