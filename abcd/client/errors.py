"""The client's exceptions (docs/client.md, "Errors") and the mapping from an error
answer's status to them."""
from __future__ import annotations


class ClientError(Exception):
    """The cluster answered with an error.  `status` is the HTTP status (0 when no node
    answered at all), `code` the machine code of the error body, `message` the text for
    a person and `body` the whole error body."""

    def __init__(self, status: int, code: str, message: str, body: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.body = body if body is not None else {"error": message, "code": code}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.code!r}, {self.message!r})"


class BadRequest(ClientError):
    """400 or 413: the request itself is wrong (bad key, value too large, bad txn…)."""


class NotFound(ClientError):
    """404: the key, lease or member does not exist."""


class NotSupported(ClientError):
    """The node does not offer this call yet (501, or no such websocket endpoint)."""


class Unavailable(ClientError):
    """No node could serve the call before the timeout.

    `outcome_unknown` is True when the call was a write that may or may not have been
    applied (some attempt may have reached a node); False when it certainly was not,
    or when the call was a read.
    """

    def __init__(
        self,
        message: str,
        *,
        outcome_unknown: bool,
        status: int = 503,
        code: str = "unavailable",
        body: dict | None = None,
    ) -> None:
        super().__init__(status, code, message, body)
        self.outcome_unknown = outcome_unknown


class Timeout(Unavailable):
    """The call got no answer in time.  For a write the outcome is unknown by default."""

    def __init__(
        self, message: str, *, outcome_unknown: bool = True, status: int = 504, code: str = "timeout",
        body: dict | None = None,
    ) -> None:
        super().__init__(message, outcome_unknown=outcome_unknown, status=status, code=code, body=body)


class Unreachable(Exception):
    """An attempt failed without an answer; `maybe_sent`: the request may have arrived.
    Internal: the retry loop turns it into the next attempt, or Unavailable."""

    def __init__(self, reason: str, maybe_sent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.maybe_sent = maybe_sent


def error_for(status: int, body: dict) -> ClientError:
    """The exception for an error answer (status >= 300) with its JSON body."""
    message = str(body.get("error") or f"HTTP status {status}")
    code = str(body.get("code") or f"http_{status}")
    if status in (400, 413):
        return BadRequest(status, code, message, body)
    if status == 404:
        return NotFound(status, code, message, body)
    if status == 503:
        return Unavailable(message, outcome_unknown=False, code=code, body=body)
    if status == 504:
        return Timeout(message, code=code, body=body)
    if status == 501:
        return NotSupported(status, code, message, body)
    return ClientError(status, code, message, body)


def outcome(write: bool, maybe_applied: bool) -> str:
    """The end of an Unavailable's message: what became of a write."""
    if not write:
        return ""
    if maybe_applied:
        return "; outcome unknown: the write may or may not have been applied"
    return "; the write was not applied"
