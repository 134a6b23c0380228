"""The outcome of one failed attempt at one item (internal to `filmdata.fetch`)."""

from __future__ import annotations

from typing import Any


class ItemError(Exception):
    """One item failed; the run goes on.

    Args:
        reason: one line for the table and the catalog's `error` column.
        retryable: a transient fault (HTTP 429/5xx, a dropped connection) worth another attempt.
        retry_after: seconds the host asked us to wait (HTTP `Retry-After`), if it said.
    """

    def __init__(self, reason: str, *, retryable: bool = False, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, Any]:
        # Sent through a pipe from the worker: plain data pickles everywhere.
        return {"reason": self.reason, "retryable": self.retryable, "retry_after": self.retry_after}
