"""What the node answers a client: an HTTP status and a JSON body (docs/api.md).

The same `Response` serves the HTTP API and the session channel, whose frames carry
exactly the status and body the HTTP call would answer.  Errors are
`{"error": <for a person>, "code": <for a machine>}`; 503s say when to retry.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from ..kv import KVError

RETRY_AFTER_SECONDS = 1


class Response(NamedTuple):
    """Made for every applied command on every member, so a NamedTuple: a frozen
    dataclass's __init__ sets each field through object.__setattr__, which was 8 % of
    an apply's interpreter steps."""

    status: int
    body: Any
    # Seconds, for the Retry-After header of a 503.
    retry_after: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


def ok(body: Any) -> Response:
    return Response(200, body)


def error(status: int, code: str, message: str, *, retry_after: int | None = None) -> Response:
    return Response(status, {"error": message, "code": code}, retry_after)


def from_kv_error(e: KVError) -> Response:
    return Response(e.status, e.body())


def bad_request(message: str) -> Response:
    return error(400, "bad_request", message)


def not_found(message: str, code: str = "not_found") -> Response:
    return error(404, code, message)


def no_leader(detail: str = "") -> Response:
    message = "no leader is known (an election may be in progress); retry shortly"
    if detail:
        message = f"{detail}; {message}"
    return error(503, "no_leader", message, retry_after=RETRY_AFTER_SECONDS)


def unavailable(code: str, message: str) -> Response:
    return error(503, code, message, retry_after=RETRY_AFTER_SECONDS)


def timed_out(seconds: float, *, write: bool) -> Response:
    if write:
        message = (
            f"not committed within {seconds:g} s; the outcome is unknown: the write may or may not "
            "be applied (retry with the same X-Request-Id to apply it at most once)"
        )
    else:
        message = f"the read could not be served within {seconds:g} s (no quorum confirmed the leader)"
    return error(504, "timeout", message)


def overtaken_by_snapshot(index: int, snapshot_index: int) -> Response:
    # The node installed the leader's snapshot instead of applying the entries one by one.
    return error(
        504,
        "timeout",
        f"this node installed the leader's snapshot through index {snapshot_index} before it could see "
        f"whether the write at index {index} was committed; the outcome is unknown: the write may or may "
        "not be applied (retry with the same X-Request-Id to apply it at most once)",
    )


def proposal_lost() -> Response:
    # Another entry was committed at the index our proposal had: ours can never commit.
    return unavailable(
        "proposal_dropped",
        "the leader changed before the write was committed; it was not applied, retry it",
    )


def stopped_before_commit(index: int | None) -> Response:
    # The node stops (SIGTERM, or a failed disk) with this write in the log: other members
    # hold it, or this node's WAL does, so it may still be committed.
    at = f" at index {index}" if index is not None else ""
    return error(
        504,
        "timeout",
        f"the node stopped before it saw whether the write{at} was committed; the outcome is unknown: "
        "the write may or may not be applied (retry with the same X-Request-Id on another member to "
        "apply it at most once)",
    )


def shutting_down() -> Response:
    return unavailable("shutting_down", "the node is shutting down; retry on another member")
