"""The `/v1/session` protocol without I/O: frames in, requests and answers out.

docs/api.md, "The session channel", is the wire format.  A client frame is a JSON list
of request objects, each with an `id`; a server frame is a JSON list of answers
`{"id", "status", "body"}`, in any order and grouping.  This module holds only that:
no socket, no event loop, no clock.  The server (api/session.py), the client's channel
(client/channel.py) and a follower's link to its leader (node/forward.py) move the
bytes; `SessionServer` and `SessionClient` say what the bytes mean.

`SessionClient` gives each request a frame-local id, queues requests until the caller
takes them as one frame (one frame per batch, however many requests), and matches each
answer to the handle the caller gave with its request (a future, a waiting request).
An answer to an id it never asked, or already answered, is a protocol error; an
answer to a request the caller gave up on after sending (`abandon`) is dropped
silently, since the server cannot know the caller stopped waiting.

`SessionServer` checks a client frame (a JSON list of objects, else the close code of
docs/api.md) and gathers answers into one frame.

A peer that breaks the protocol raises `SessionProtocolError`, whose `close_code` is
the websocket close code to end the connection with and whose message says what was
wrong.  The size limit is enforced here as well as by the websocket library, so that
no transport can hand over a larger frame unnoticed.
"""
from __future__ import annotations

from typing import Any, Callable

import orjson

SESSION_PATH = "/v1/session"
# A follower's own link to the leader: its requests are never forwarded again.
FORWARDED_QUERY = "forwarded=1"
# A request's own token, which wins over the connection's caller (docs/api.md).
AUTH_FIELD = "auth"

# Close codes (RFC 6455): for a client frame the server cannot take (docs/api.md), and
# for an answer frame a client cannot make sense of.
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_NOT_A_LIST = 1003
CLOSE_INVALID_JSON = 1007
CLOSE_TOO_BIG = 1009

# The largest client frame a node takes, and the largest answer frame a client takes
# (a range over many keys can be large).
MAX_REQUEST_FRAME_BYTES = 64 * 1024 * 1024
MAX_ANSWER_FRAME_BYTES = 256 * 1024 * 1024


class SessionProtocolError(ValueError):
    """The peer broke the session protocol; `close_code` ends the connection.

    `answers`: on the client side, the answers of the same frame matched before the
    bad one, still to be delivered."""

    def __init__(self, message: str, close_code: int, answers: list | None = None) -> None:
        super().__init__(message)
        self.close_code = close_code
        self.answers = answers if answers is not None else []


def _load(data: bytes | str, max_bytes: int, what: str) -> Any:
    if len(data) > max_bytes:
        raise SessionProtocolError(f"{what} of {len(data)} bytes is over the limit of {max_bytes}", CLOSE_TOO_BIG)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise SessionProtocolError(f"{what} is not valid JSON: {e}", CLOSE_INVALID_JSON) from None


class SessionServer:
    """The server side of one session: client frames in, answer frames out."""

    __slots__ = ("max_frame_bytes", "_answers")

    def __init__(self, max_frame_bytes: int = MAX_REQUEST_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._answers: list[dict] = []

    def receive(self, data: bytes | str) -> list[dict]:
        """The requests of a client frame, in order.  Each keeps its `id` as sent (any
        JSON value, or none: its answer then has `"id": null`)."""
        requests = _load(data, self.max_frame_bytes, "frame")
        if type(requests) is not list:
            raise SessionProtocolError(
                f"a frame must be a JSON list of request objects, got {type(requests).__name__}", CLOSE_NOT_A_LIST
            )
        for request in requests:
            if type(request) is not dict:
                raise SessionProtocolError(
                    "a frame must be a JSON list of request objects, got a list with non-object items",
                    CLOSE_NOT_A_LIST,
                )
        return requests

    def answer(self, request_id: Any, status: int, body: Any) -> None:
        """Queue the answer to the request with `request_id` for the next frame."""
        self._answers.append({"id": request_id, "status": status, "body": body})

    @property
    def has_answers(self) -> bool:
        return bool(self._answers)

    def data_to_send(self) -> bytes | None:
        """Every answer queued since the last call, as one frame (None if there is none)."""
        if not self._answers:
            return None
        answers, self._answers = self._answers, []
        return orjson.dumps(answers)


class SessionClient:
    """The client side of one session: requests in, frames out; answer frames in,
    (handle, status, body) out.  A handle is whatever the caller waits on (not None)."""

    __slots__ = ("max_frame_bytes", "_next_id", "_unsent", "_waiting", "_abandoned")

    def __init__(self, max_frame_bytes: int = MAX_ANSWER_FRAME_BYTES) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._next_id = 1
        self._unsent: list[dict] = []  # requests not yet taken into a frame, in order
        self._waiting: dict[int, Any] = {}  # id -> handle, sent or not
        self._abandoned: set[int] = set()  # sent, then given up on: their answers are dropped

    def request(self, request: dict, handle: Any, token: str | None = None) -> int:
        """Queue `request` (a copy of it, with its id and, if given, its own token) for
        the next frame; its answer will come back with `handle`.  Returns its id."""
        request_id = self._next_id
        self._next_id = request_id + 1
        item = {**request, "id": request_id}
        if token is not None:
            item[AUTH_FIELD] = token
        self._waiting[request_id] = handle
        self._unsent.append(item)
        return request_id

    @property
    def has_unsent(self) -> bool:
        return bool(self._unsent)

    @property
    def busy(self) -> bool:
        """Some request is queued or awaits its answer."""
        return bool(self._waiting)

    def data_to_send(self, wanted: Callable[[Any], bool] | None = None) -> bytes | None:
        """The queued requests as one frame (None if none is queued); from now on they
        count as sent.  With `wanted`, requests whose handle it refuses are dropped
        instead (their callers stopped waiting while they were queued)."""
        if not self._unsent:
            return None
        batch, self._unsent = self._unsent, []
        if wanted is not None:
            waiting = self._waiting
            kept = []
            for item in batch:
                if wanted(waiting[item["id"]]):
                    kept.append(item)
                else:
                    del waiting[item["id"]]
            if not kept:
                return None
            batch = kept
        return orjson.dumps(batch)

    def receive(self, data: bytes | str) -> list[tuple[Any, int, Any]]:
        """The answers of a server frame, each as (handle, status, body)."""
        answers = _load(data, self.max_frame_bytes, "answer frame")
        if type(answers) is not list:
            raise SessionProtocolError(
                f"an answer frame must be a JSON list, got {type(answers).__name__}", CLOSE_PROTOCOL_ERROR
            )
        waiting = self._waiting
        matched = []
        for answer in answers:
            if type(answer) is not dict or type(status := answer.get("status")) is not int:
                raise SessionProtocolError(
                    f"an answer must be an object with an integer status, got {str(answer)[:100]}",
                    CLOSE_PROTOCOL_ERROR,
                    matched,
                )
            request_id = answer.get("id")
            try:
                handle = waiting.pop(request_id, None)
            except TypeError:  # an id no request has (a list, an object)
                handle = None
            if handle is None:
                if type(request_id) is int and request_id in self._abandoned:
                    self._abandoned.discard(request_id)
                    continue
                raise SessionProtocolError(
                    f"an answer to request id {str(request_id)[:40]}, which was never sent or was answered already",
                    CLOSE_PROTOCOL_ERROR,
                    matched,
                )
            matched.append((handle, status, answer.get("body")))
        return matched

    def abandon(self, request_id: int) -> bool:
        """The caller stops waiting for `request_id`: a request not yet sent is not sent
        at all, the answer to one already sent is dropped.  Returns whether it had been
        sent (False also when it was answered already)."""
        if self._waiting.pop(request_id, None) is None:
            return False
        for i, item in enumerate(self._unsent):
            if item["id"] == request_id:
                del self._unsent[i]
                return False
        self._abandoned.add(request_id)
        return True

    def close(self) -> tuple[list, list]:
        """The connection is gone: (handles never sent, handles sent but unanswered).
        Both are forgotten; the session starts empty."""
        unsent_ids = {item["id"] for item in self._unsent}
        unsent, sent = [], []
        for request_id, handle in self._waiting.items():
            (unsent if request_id in unsent_ids else sent).append(handle)
        self._unsent, self._waiting, self._abandoned = [], {}, set()
        return unsent, sent
