"""The peer wire format: frames of Raft messages as compact orjson lists.

A frame is a JSON list of messages.  Each message is a JSON list whose first element is
a type code and whose remaining elements are the message's fields, in this order:

    1 RequestVoteRequest     [1, term, source, dest, last_log_index, last_log_term, pre_vote, transfer]
    2 RequestVoteResponse    [2, term, source, dest, vote_granted, pre_vote]
    3 AppendEntriesRequest   [3, term, source, dest, prev_log_index, prev_log_term,
                                 leader_commit, read_round, entries]
    4 AppendEntriesResponse  [4, term, source, dest, success, index,
                                 conflict_index, conflict_term, read_round]
    5 TimeoutNow             [5, term, source, dest]
    6 InstallSnapshotRequest [6, term, source, dest, last_included_index, last_included_term,
                                 voters, learners, data]
    7 InstallSnapshotResponse [7, term, source, dest, match_index]
    8 SnapshotChunk          [8, term, source, dest, last_included_index, last_included_term,
                                 voters, learners, offset, size, done, checksum, data]
    9 SnapshotChunkAck       [9, term, source, dest, last_included_index, offset, ok]

Types 8 and 9 carry a snapshot in pieces between the nodes (chunks.py); the core never
sees them.  A chunk's `data` travels as an entry's does.

An AppendEntriesResponse's `index` is its match_index when `success` is true and its
rejected_index (the prev_log_index that failed the consistency check) when false: the
message carries the two in separate fields, and the one that does not apply is 0.

Every integer field is a non-negative JSON integer and every flag a JSON boolean (never
0/1).  `entries` is a list of `[term, index, kind, data]`: `data` is a JSON string when
the entry's bytes are valid UTF-8 (the usual case, since commands are JSON text) and
`{"b64": "<base64>"}` otherwise.  Entry indexes are contiguous and start at
prev_log_index + 1, as §5.3 of the Raft paper defines AppendEntries.

`entries` goes last in an AppendEntries request so that the encoder can splice an
already-encoded entries list behind the scalar fields: the same entries are sent to
every follower, and `EncodeCache` lets the transport encode them once per round (the
leader profile spent 4.6 % encoding AppendEntries before this).

`voters` and `learners` are lists of node ids (sorted when encoded; a repeated id, or
one in both lists, is refused).  A snapshot's `data` travels as an entry's does, and
goes last for the same reason as `entries`: it can be tens of megabytes, so its
encoding is spliced in behind the scalar fields, and `EncodeCache` keeps the encoding
of the last snapshot (one, holding its bytes), which the leader sends to every
follower that needs it and again when one is presumed lost.

The first frame of a connection is a hello instead (see `encode_hello`).

Decoding is strict: anything that is not exactly this layout raises `FrameError`
with a message that says which message, which field and what was wrong; messages
are counted from 0 within the frame.
"""
from __future__ import annotations

import base64
import binascii
import operator
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import orjson

from .chunks import SnapshotChunk, SnapshotChunkAck
from ..raft.messages import (
    ENTRY_CONFIG,
    ENTRY_NORMAL,
    AppendEntriesRequest,
    AppendEntriesResponse,
    Entry,
    InstallSnapshotRequest,
    InstallSnapshotResponse,
    Message,
    RequestVoteRequest,
    RequestVoteResponse,
    TimeoutNow,
    entry_from_tuple,
)

# Nodes stream snapshots in chunks (SnapshotChunk, far below this), but a whole
# InstallSnapshotRequest is still a valid frame: the limit is what a realistic state
# machine needs, a snapshot of up to ~200 MB of JSON after its string escaping (quotes
# become \", ~15 % more).  Both ends must agree: the receiver refuses larger frames
# (close code 1009) and the sender never writes them.
DEFAULT_MAX_FRAME_BYTES = 256 * 1024 * 1024
MAX_HELLO_BYTES = 64 * 1024
KNOWN_ENTRY_KINDS = frozenset({ENTRY_NORMAL, ENTRY_CONFIG})


class FrameError(ValueError):
    """A frame (or hello) that does not follow the peer protocol; str() says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------- encoding


def _wire_data(data: bytes) -> str | dict[str, str]:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(data).decode("ascii")}


def encode_entries(entries: Sequence[Entry]) -> bytes:
    """The JSON list of `entries`, as it appears at the end of an AppendEntries request."""
    try:
        # The usual case, in one orjson call: every command is UTF-8 (JSON text).
        return orjson.dumps([(e.term, e.index, e.kind, e.data.decode("utf-8")) for e in entries])
    except UnicodeDecodeError:
        return orjson.dumps([(e.term, e.index, e.kind, _wire_data(e.data)) for e in entries])


class EncodeCache:
    """Recently encoded entry lists, so the entries a leader sends to several followers
    in one round are encoded once.

    A hit needs the very same entry objects in the same order (checked by identity,
    against references the cache holds), so equal-looking entries of another term can
    never be confused; followers at the same point of the log get equal slices, even
    when each slice is a new tuple.  Bounded by count and by encoded bytes.
    """

    __slots__ = ("max_items", "max_bytes", "_slices", "_bytes", "hits", "misses", "_snapshot")

    def __init__(self, max_items: int = 16, max_bytes: int = 16 * 1024 * 1024) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        # (id of the first entry, count) -> (the entries, their encoding)
        self._slices: dict[tuple[int, int], tuple[tuple[Entry, ...], bytes]] = {}
        self._bytes = 0
        self.hits = 0
        self.misses = 0
        # (the snapshot data, its encoding): one slot, since a node sends one snapshot
        # at a time (its newest); the same bytes object is checked by identity.
        self._snapshot: tuple[bytes, bytes] | None = None

    def __len__(self) -> int:
        return len(self._slices)

    def encode_entries(self, entries: Sequence[Entry]) -> bytes:
        if not entries:
            return b"[]"
        key = (id(entries[0]), len(entries))
        cached = self._slices.get(key)
        if cached is not None and (cached[0] is entries or all(map(operator.is_, cached[0], entries))):
            self.hits += 1
            return cached[1]
        self.misses += 1
        encoded = encode_entries(entries)
        if cached is not None:
            self._bytes -= len(self._slices.pop(key)[1])
        self._slices[key] = (tuple(entries), encoded)
        self._bytes += len(encoded)
        while len(self._slices) > self.max_items or (self._bytes > self.max_bytes and len(self._slices) > 1):
            _, evicted = self._slices.pop(next(iter(self._slices)))
            self._bytes -= len(evicted)
        return encoded

    def encode_snapshot_data(self, data: bytes) -> bytes:
        cached = self._snapshot
        if cached is not None and cached[0] is data:
            self.hits += 1
            return cached[1]
        self.misses += 1
        encoded = encode_data(data)
        self._snapshot = (data, encoded)
        return encoded


def encode_data(data: bytes) -> bytes:
    """A snapshot's data as a JSON value (a string, or {"b64": ...} when not UTF-8)."""
    return orjson.dumps(_wire_data(data))


def _encode_message(message: Message, cache: EncodeCache | None) -> bytes:
    kind = type(message)
    if kind is AppendEntriesRequest:
        m: Any = message
        head = orjson.dumps(
            (3, m.term, m.source, m.dest, m.prev_log_index, m.prev_log_term, m.leader_commit, m.read_round)
        )
        entries = encode_entries(m.entries) if cache is None else cache.encode_entries(m.entries)
        return head[:-1] + b"," + entries + b"]"
    if kind is AppendEntriesResponse:
        m = message
        return orjson.dumps(
            (
                4,
                m.term,
                m.source,
                m.dest,
                m.success,
                m.match_index if m.success else m.rejected_index,
                m.conflict_index,
                m.conflict_term,
                m.read_round,
            )
        )
    if kind is RequestVoteRequest:
        m = message
        return orjson.dumps((1, m.term, m.source, m.dest, m.last_log_index, m.last_log_term, m.pre_vote, m.transfer))
    if kind is RequestVoteResponse:
        m = message
        return orjson.dumps((2, m.term, m.source, m.dest, m.vote_granted, m.pre_vote))
    if kind is TimeoutNow:
        return orjson.dumps((5, message.term, message.source, message.dest))
    if kind is InstallSnapshotRequest:
        m = message
        head = orjson.dumps(
            (6, m.term, m.source, m.dest, m.last_included_index, m.last_included_term,
             sorted(m.voters), sorted(m.learners))
        )
        data = encode_data(m.data) if cache is None else cache.encode_snapshot_data(m.data)
        return b"".join((head[:-1], b",", data, b"]"))  # one copy of the (big) data, not two
    if kind is InstallSnapshotResponse:
        m = message
        return orjson.dumps((7, m.term, m.source, m.dest, m.match_index))
    if kind is SnapshotChunk:
        m = message
        head = orjson.dumps(
            (8, m.term, m.source, m.dest, m.last_included_index, m.last_included_term,
             sorted(m.voters), sorted(m.learners), m.offset, m.size, m.done, m.checksum)
        )
        return b"".join((head[:-1], b",", encode_data(m.data), b"]"))
    if kind is SnapshotChunkAck:
        m = message
        return orjson.dumps((9, m.term, m.source, m.dest, m.last_included_index, m.offset, m.ok))
    raise _not_a_message(message)


def _not_a_message(message: Any) -> TypeError:
    return TypeError(f"cannot encode {type(message).__name__}: not a peer message")


_MESSAGE_TYPES = frozenset(
    {
        RequestVoteRequest,
        RequestVoteResponse,
        AppendEntriesRequest,
        AppendEntriesResponse,
        TimeoutNow,
        InstallSnapshotRequest,
        InstallSnapshotResponse,
        SnapshotChunk,
        SnapshotChunkAck,
    }
)


def encode_frame(messages: Sequence[Message], cache: EncodeCache | None = None) -> bytes:
    """One frame for all `messages` (a batch to one peer).

    Pass the same `cache` for the frames of several followers so that the entries
    they share are encoded once.
    """
    parts = []
    for position, message in enumerate(messages):
        if type(message) not in _MESSAGE_TYPES:
            raise _not_a_message(message)
        try:
            parts.append(_encode_message(message, cache))
        except (orjson.JSONEncodeError, TypeError) as error:  # e.g. an integer over 64 bits
            raise ValueError(f"cannot encode message {position} ({type(message).__name__}): {error}") from None
    return b"[" + b",".join(parts) + b"]"


# --------------------------------------------------------------------------- decoding


def _show(value: Any) -> str:
    """A JSON value as it appeared on the wire, shortened for an error message."""
    text = orjson.dumps(value).decode()
    return text if len(text) <= 60 else text[:57] + "..."


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", int: "an integer", float: "a number"}.get(
        type(value), type(value).__name__
    )


_UINT = 0
_BOOL = 1
_ENTRIES = 2
_IDS = 3  # a list of node ids, decoded to a frozenset
_DATA = 4  # bytes, as an entry's data travels


@dataclass(frozen=True, slots=True)
class _Layout:
    name: str
    fields: tuple[tuple[str, int], ...]
    build: Callable[[list[Any]], Message]


_LAYOUTS: dict[int, _Layout] = {
    1: _Layout(
        "RequestVoteRequest",
        (("term", _UINT), ("source", _UINT), ("dest", _UINT), ("last_log_index", _UINT),
         ("last_log_term", _UINT), ("pre_vote", _BOOL), ("transfer", _BOOL)),
        lambda v: RequestVoteRequest(*v),
    ),
    2: _Layout(
        "RequestVoteResponse",
        (("term", _UINT), ("source", _UINT), ("dest", _UINT), ("vote_granted", _BOOL), ("pre_vote", _BOOL)),
        lambda v: RequestVoteResponse(*v),
    ),
    3: _Layout(
        "AppendEntriesRequest",
        (("term", _UINT), ("source", _UINT), ("dest", _UINT), ("prev_log_index", _UINT),
         ("prev_log_term", _UINT), ("leader_commit", _UINT), ("read_round", _UINT), ("entries", _ENTRIES)),
        lambda v: AppendEntriesRequest(v[0], v[1], v[2], v[3], v[4], v[7], v[5], v[6]),
    ),
    4: _Layout(
        "AppendEntriesResponse",
        (("term", _UINT), ("source", _UINT), ("dest", _UINT), ("success", _BOOL), ("index", _UINT),
         ("conflict_index", _UINT), ("conflict_term", _UINT), ("read_round", _UINT)),
        lambda v: AppendEntriesResponse(
            term=v[0],
            source=v[1],
            dest=v[2],
            success=v[3],
            match_index=v[4] if v[3] else 0,
            rejected_index=0 if v[3] else v[4],
            conflict_index=v[5],
            conflict_term=v[6],
            read_round=v[7],
        ),
    ),
    5: _Layout("TimeoutNow", (("term", _UINT), ("source", _UINT), ("dest", _UINT)), lambda v: TimeoutNow(*v)),
    6: _Layout(
        "InstallSnapshotRequest",
        (("term", _UINT), ("source", _UINT), ("dest", _UINT), ("last_included_index", _UINT),
         ("last_included_term", _UINT), ("voters", _IDS), ("learners", _IDS), ("data", _DATA)),
        lambda v: InstallSnapshotRequest(*v),
    ),
    7: _Layout(
        "InstallSnapshotResponse",
        (("term", _UINT), ("source", _UINT), ("dest", _UINT), ("match_index", _UINT)),
        lambda v: InstallSnapshotResponse(*v),
    ),
    8: _Layout(
        "SnapshotChunk",
        (("term", _UINT), ("source", _UINT), ("dest", _UINT), ("last_included_index", _UINT),
         ("last_included_term", _UINT), ("voters", _IDS), ("learners", _IDS), ("offset", _UINT), ("size", _UINT),
         ("done", _BOOL), ("checksum", _UINT), ("data", _DATA)),
        lambda v: SnapshotChunk(*v),
    ),
    9: _Layout(
        "SnapshotChunkAck",
        (("term", _UINT), ("source", _UINT), ("dest", _UINT), ("last_included_index", _UINT), ("offset", _UINT),
         ("ok", _BOOL)),
        lambda v: SnapshotChunkAck(*v),
    ),
}
_KNOWN_CODES = ", ".join(f"{code} {layout.name}" for code, layout in _LAYOUTS.items())


def _decode_entry_data(where: str, data: Any) -> bytes:
    if type(data) is str:
        try:
            return data.encode("utf-8")
        except UnicodeEncodeError:
            raise FrameError(f"{where}.data is not encodable as UTF-8") from None
    if type(data) is dict and len(data) == 1 and type(data.get("b64")) is str:
        try:
            return base64.b64decode(data["b64"], validate=True)
        except (binascii.Error, ValueError) as error:
            raise FrameError(f"{where}.data.b64 is not valid base64: {error}") from None
    raise FrameError(f'{where}.data must be a string or {{"b64": string}}, got {_show(data)}')


def _decode_ids(where: str, raw: Any) -> frozenset[int]:
    if type(raw) is not list:
        raise FrameError(f"{where} must be a list of node ids, got {_json_kind(raw)}")
    seen: set[int] = set()
    for position, node_id in enumerate(raw):
        if type(node_id) is not int or node_id < 0:
            raise FrameError(f"{where}[{position}] must be a non-negative integer (a node id), got {_show(node_id)}")
        if node_id in seen:
            raise FrameError(f"{where}[{position}] repeats node id {node_id}")
        seen.add(node_id)
    return frozenset(seen)


def _decode_entries(where: str, raw: Any, prev_log_index: int) -> tuple[Entry, ...]:
    if type(raw) is not list:
        raise FrameError(f"{where} must be a list of [term, index, kind, data], got {_json_kind(raw)}")
    entries = []
    append = entries.append
    expected_index = prev_log_index + 1
    for item in raw:
        # Fast path for a well-formed entry with string data; anything else goes through
        # _decode_entry, which either decodes it or says exactly what is wrong.
        if type(item) is list and len(item) == 4:
            term, index, kind, data = item
            if (
                type(term) is int and term >= 0 and type(index) is int and index == expected_index
                and type(kind) is int and kind in KNOWN_ENTRY_KINDS and type(data) is str
            ):
                try:
                    append(entry_from_tuple((term, index, data.encode("utf-8"), kind)))
                    expected_index += 1
                    continue
                except UnicodeEncodeError:
                    pass
        append(_decode_entry(f"{where}[{len(entries)}]", item, expected_index, len(entries) == 0))
        expected_index += 1
    return tuple(entries)


def _decode_entry(at: str, item: Any, expected_index: int, first: bool) -> Entry:
    if type(item) is not list or len(item) != 4:
        shape = f"{len(item)} elements" if type(item) is list else _json_kind(item)
        raise FrameError(f"{at} must be a list [term, index, kind, data], got {shape}")
    term, index, kind, data = item
    if type(term) is not int or term < 0:
        raise FrameError(f"{at}.term must be a non-negative integer, got {_show(term)}")
    if type(index) is not int or index != expected_index:
        after = "prev_log_index + 1" if first else f"contiguous after index {expected_index - 1}"
        raise FrameError(f"{at}.index must be {expected_index} ({after}), got {_show(index)}")
    if type(kind) is not int or kind not in KNOWN_ENTRY_KINDS:
        raise FrameError(f"{at}.kind must be one of {sorted(KNOWN_ENTRY_KINDS)}, got {_show(kind)}")
    return Entry(term, index, _decode_entry_data(at, data), kind)


def _decode_message(position: int, raw: Any) -> Message:
    if type(raw) is not list:
        raise FrameError(f"message {position}: must be a list [type_code, fields...], got {_json_kind(raw)}")
    if not raw:
        raise FrameError(f"message {position}: is an empty list, expected [type_code, fields...]")
    code = raw[0]
    layout = _LAYOUTS.get(code) if type(code) is int else None
    if layout is None:
        raise FrameError(f"message {position}: unknown type code {_show(code)} (known: {_KNOWN_CODES})")
    values = raw[1:]
    if len(values) != len(layout.fields):
        names = ", ".join(name for name, _ in layout.fields)
        raise FrameError(
            f"message {position}: {layout.name} must have {len(layout.fields)} fields after the type code "
            f"({names}), got {len(values)}"
        )
    for (name, kind), value in zip(layout.fields, values):
        if kind == _UINT:
            if type(value) is not int or value < 0:
                raise FrameError(
                    f"message {position}: {layout.name}.{name} must be a non-negative integer, got {_show(value)}"
                )
        elif kind == _BOOL:
            if type(value) is not bool:
                raise FrameError(f"message {position}: {layout.name}.{name} must be a boolean, got {_show(value)}")
    if code == 3:
        values[7] = _decode_entries(f"message {position}: {layout.name}.entries", values[7], values[3])
    elif code == 6 or code == 8:
        where = f"message {position}: {layout.name}"
        voters = values[5] = _decode_ids(f"{where}.voters", values[5])
        learners = values[6] = _decode_ids(f"{where}.learners", values[6])
        both = voters & learners
        if both:
            raise FrameError(f"{where}: node {min(both)} is in both voters and learners")
        values[-1] = _decode_entry_data(where, values[-1])
    return layout.build(values)


def decode_frame(data: bytes | str, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> list[Message]:
    """The messages of one frame; raises FrameError naming the first thing that is wrong."""
    if len(data) > max_frame_bytes:
        unit = "bytes" if isinstance(data, (bytes, bytearray, memoryview)) else "characters"
        raise FrameError(f"frame is {len(data)} {unit}, over the limit of {max_frame_bytes} bytes")
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise FrameError(f"frame is not valid JSON: {error}") from None
    if type(raw) is not list:
        raise FrameError(f"frame must be a list of messages, got {_json_kind(raw)}")
    return [_decode_message(position, item) for position, item in enumerate(raw)]


# --------------------------------------------------------------------------- hello


@dataclass(frozen=True, slots=True)
class Hello:
    """The first frame of a peer connection: who is dialing, for which cluster."""

    cluster_id: str
    node_id: int
    address: str
    token: str | None = None


def parse_address(address: Any) -> tuple[str, int]:
    """Split "host:port" (IPv6 hosts in brackets); ValueError says what is wrong."""
    if type(address) is not str:
        raise ValueError(f'address must be a string "host:port", got {_json_kind(address)}')
    host, sep, port_text = address.rpartition(":")
    if not sep or not host or not port_text.isascii() or not port_text.isdigit():
        raise ValueError(f'address must be "host:port", got {address!r}')
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise ValueError(f"address port must be between 1 and 65535, got {port} in {address!r}")
    return host, port


def encode_hello(cluster_id: str, node_id: int, token: str | None, address: str) -> bytes:
    hello: dict[str, Any] = {"type": "hello", "cluster_id": cluster_id, "node_id": node_id, "address": address}
    if token is not None:
        hello["token"] = token
    return orjson.dumps(hello)


_HELLO_REQUIRED = ("type", "cluster_id", "node_id", "address")
_HELLO_KEYS = frozenset(_HELLO_REQUIRED + ("token",))


def decode_hello(data: bytes | str) -> Hello:
    if len(data) > MAX_HELLO_BYTES:
        raise FrameError(f"hello is {len(data)} long, over the limit of {MAX_HELLO_BYTES} bytes")
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise FrameError(f"hello is not valid JSON: {error}") from None
    if type(raw) is not dict:
        raise FrameError(f'hello must be an object {{"type": "hello", ...}}, got {_json_kind(raw)}')
    if raw.get("type") != "hello":
        raise FrameError(f'hello must have "type": "hello", got {_show(raw.get("type"))}')
    missing = [key for key in _HELLO_REQUIRED if key not in raw]
    if missing:
        raise FrameError(f"hello is missing {', '.join(missing)}")
    unknown = sorted(set(raw) - _HELLO_KEYS)
    if unknown:
        raise FrameError(f"hello has unknown fields: {', '.join(unknown)}")
    cluster_id, node_id, address = raw["cluster_id"], raw["node_id"], raw["address"]
    token = raw.get("token")
    if type(cluster_id) is not str or not cluster_id:
        raise FrameError(f"hello.cluster_id must be a non-empty string, got {_show(cluster_id)}")
    if type(node_id) is not int or node_id < 0:
        raise FrameError(f"hello.node_id must be a non-negative integer, got {_show(node_id)}")
    if token is not None and type(token) is not str:
        raise FrameError(f"hello.token must be a string, got {_show(token)}")
    try:
        parse_address(address)
    except ValueError as error:
        raise FrameError(f"hello.{error}") from None
    return Hello(cluster_id, node_id, address, token)
