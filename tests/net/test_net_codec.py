"""The wire codec: round trips of every message type, and a precise error for every malformed frame."""
from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abcd.net.codec import (
    DEFAULT_MAX_FRAME_BYTES,
    EncodeCache,
    FrameError,
    Hello,
    decode_frame,
    decode_hello,
    encode_frame,
    encode_hello,
    parse_address,
)
from abcd.net.chunks import SnapshotChunk, SnapshotChunkAck
from abcd.raft.messages import (
    ENTRY_CONFIG,
    ENTRY_NORMAL,
    AppendEntriesRequest,
    AppendEntriesResponse,
    Entry,
    InstallSnapshotRequest,
    InstallSnapshotResponse,
    RequestVoteRequest,
    RequestVoteResponse,
    TimeoutNow,
)

# ----------------------------------------------------------------------------- strategies

uint = st.integers(min_value=0, max_value=2**63 - 1)
small = st.integers(min_value=0, max_value=1000)
entry_data = st.one_of(
    st.binary(max_size=64),  # mostly not UTF-8: goes as {"b64": ...}
    st.text(max_size=64).map(lambda text: text.encode("utf-8")),  # the usual case: a JSON string
)


@st.composite
def append_entries_requests(draw):
    prev_log_index = draw(small)
    count = draw(st.integers(min_value=0, max_value=8))
    entries = tuple(
        Entry(draw(uint), prev_log_index + 1 + i, draw(entry_data), draw(st.sampled_from([ENTRY_NORMAL, ENTRY_CONFIG])))
        for i in range(count)
    )
    return AppendEntriesRequest(
        draw(uint), draw(uint), draw(uint), prev_log_index, draw(uint), entries, draw(uint), draw(uint)
    )


@st.composite
def install_snapshot_requests(draw):
    ids = draw(st.lists(small, unique=True, max_size=7))
    split = draw(st.integers(min_value=0, max_value=len(ids)))
    return InstallSnapshotRequest(
        draw(uint), draw(uint), draw(uint), draw(uint), draw(uint),
        frozenset(ids[:split]), frozenset(ids[split:]), draw(entry_data),
    )


@st.composite
def snapshot_chunks(draw):
    ids = draw(st.lists(small, unique=True, max_size=7))
    split = draw(st.integers(min_value=0, max_value=len(ids)))
    return SnapshotChunk(
        draw(uint), draw(uint), draw(uint), draw(uint), draw(uint), frozenset(ids[:split]), frozenset(ids[split:]),
        draw(uint), draw(uint), draw(st.booleans()), draw(uint), draw(entry_data),
    )


@st.composite
def append_entries_responses(draw):
    """The index travels as match_index on success and as rejected_index on failure."""
    success, index = draw(st.booleans()), draw(uint)
    return AppendEntriesResponse(
        term=draw(uint), source=draw(uint), dest=draw(uint), success=success,
        match_index=index if success else 0, rejected_index=0 if success else index,
        conflict_index=draw(uint), conflict_term=draw(uint), read_round=draw(uint),
    )


messages = st.one_of(
    st.builds(RequestVoteRequest, uint, uint, uint, uint, uint, st.booleans(), st.booleans()),
    st.builds(RequestVoteResponse, uint, uint, uint, st.booleans(), st.booleans()),
    append_entries_requests(),
    append_entries_responses(),
    st.builds(TimeoutNow, uint, uint, uint),
    install_snapshot_requests(),
    st.builds(InstallSnapshotResponse, uint, uint, uint, uint),
    snapshot_chunks(),
    st.builds(SnapshotChunkAck, uint, uint, uint, uint, uint, st.booleans()),
)


# ----------------------------------------------------------------------------- round trips


@settings(max_examples=120, deadline=None)
@given(st.lists(messages, max_size=6))
def test_every_message_type_round_trips_through_a_frame(batch):
    frame = encode_frame(batch)
    assert decode_frame(frame) == batch
    # A peer may send the same frame as text.
    assert decode_frame(frame.decode("utf-8")) == batch


@given(messages)
def test_one_message_round_trips_with_a_shared_cache(message):
    cache = EncodeCache()
    first = encode_frame([message], cache)
    assert encode_frame([message], cache) == first == encode_frame([message])
    assert decode_frame(first) == [message]


def test_each_type_has_the_documented_layout():
    entries = (Entry(3, 5, b'{"op":"put"}'), Entry(3, 6, b"\xff\x00", ENTRY_CONFIG))
    batch = [
        RequestVoteRequest(3, 1, 2, 9, 2, pre_vote=True),
        RequestVoteResponse(3, 2, 1, vote_granted=False),
        AppendEntriesRequest(3, 1, 2, 4, 2, entries, leader_commit=4, read_round=7),
        AppendEntriesResponse(3, 2, 1, True, 6, read_round=7),
        AppendEntriesResponse(3, 2, 1, False, rejected_index=8, conflict_index=5, conflict_term=2),
        TimeoutNow(3, 1, 2),
        InstallSnapshotRequest(3, 1, 2, 40, 2, frozenset({3, 1, 2}), frozenset({5}), b'{"format":"x"}'),
        InstallSnapshotRequest(3, 1, 4, 40, 2, frozenset({1}), frozenset(), b"\xff"),
        InstallSnapshotResponse(3, 2, 1, 40),
        SnapshotChunk(3, 1, 2, 40, 2, frozenset({2, 1}), frozenset(), 8, 20, False, 77, b'{"forma'),
        SnapshotChunk(3, 1, 2, 40, 2, frozenset({2, 1}), frozenset(), 18, 20, True, 99, b"\xff\xfe"),
        SnapshotChunkAck(3, 2, 1, 40, 20, True),
    ]
    assert orjson.loads(encode_frame(batch)) == [
        [1, 3, 1, 2, 9, 2, True, False],
        [2, 3, 2, 1, False, False],
        [3, 3, 1, 2, 4, 2, 4, 7, [[3, 5, 0, '{"op":"put"}'], [3, 6, 1, {"b64": "/wA="}]]],
        [4, 3, 2, 1, True, 6, 0, 0, 7],
        [4, 3, 2, 1, False, 8, 5, 2, 0],
        [5, 3, 1, 2],
        [6, 3, 1, 2, 40, 2, [1, 2, 3], [5], '{"format":"x"}'],
        [6, 3, 1, 4, 40, 2, [1], [], {"b64": "/w=="}],
        [7, 3, 2, 1, 40],
        [8, 3, 1, 2, 40, 2, [1, 2], [], 8, 20, False, 77, '{"forma'],
        [8, 3, 1, 2, 40, 2, [1, 2], [], 18, 20, True, 99, {"b64": "//4="}],
        [9, 3, 2, 1, 40, 20, True],
    ]
    assert decode_frame(encode_frame(batch)) == batch


def test_a_snapshot_is_encoded_once_for_every_follower_and_every_resend():
    data = b'{"k":"' + b"v" * 100_000 + b'"}'
    cache = EncodeCache()
    frames = [
        encode_frame([InstallSnapshotRequest(2, 1, dest, 9, 2, frozenset({1, 2, 3}), data=data)], cache)
        for dest in (2, 3, 2)
    ]
    assert (cache.misses, cache.hits) == (1, 2)
    assert [m.dest for frame in frames for m in decode_frame(frame)] == [2, 3, 2]
    # Equal bytes in another object are encoded again (identity, as for entries), and right.
    other = bytes(bytearray(data[:-2] + b'w"}'))
    [decoded] = decode_frame(encode_frame([InstallSnapshotRequest(2, 1, 2, 9, 2, frozenset({1}), data=other)], cache))
    assert decoded.data == other and (cache.misses, cache.hits) == (2, 2)


def test_utf8_data_travels_as_a_string_and_other_bytes_as_base64():
    request = AppendEntriesRequest(1, 1, 2, 0, 0, (Entry(1, 1, "é€".encode()), Entry(1, 2, b"\xc3\x28")), 0)
    wire_entries = orjson.loads(encode_frame([request]))[0][8]
    assert wire_entries == [[1, 1, 0, "é€"], [1, 2, 0, {"b64": "wyg="}]]
    assert decode_frame(encode_frame([request])) == [request]


def test_an_empty_frame_is_an_empty_batch():
    assert encode_frame([]) == b"[]"
    assert decode_frame(b"[]") == []


def test_the_cache_encodes_entries_shared_by_several_followers_once():
    log = [Entry(2, i, b"x" * 10) for i in range(1, 51)]
    cache = EncodeCache()
    # Each follower gets its own slice (a new tuple) of the same entry objects.
    to_follower_2 = AppendEntriesRequest(2, 1, 2, 0, 0, tuple(log), 0)
    to_follower_3 = AppendEntriesRequest(2, 1, 3, 0, 0, tuple(log), 0)
    to_follower_4 = AppendEntriesRequest(2, 1, 4, 10, 2, tuple(log[10:]), 0)  # a lagging one: another slice
    frame_2 = encode_frame([to_follower_2], cache)
    frame_3 = encode_frame([to_follower_3], cache)
    assert (cache.misses, cache.hits) == (1, 1)
    frame_4 = encode_frame([to_follower_4], cache)
    assert (cache.misses, cache.hits) == (2, 1)
    assert decode_frame(frame_2) == [to_follower_2]
    assert decode_frame(frame_3) == [to_follower_3]
    assert decode_frame(frame_4) == [to_follower_4]


def test_the_cache_never_confuses_equal_looking_entries():
    cache = EncodeCache()
    first = (Entry(1, 1, b"a"), Entry(1, 2, b"b"))
    encode_frame([AppendEntriesRequest(1, 1, 2, 0, 0, first, 0)], cache)
    # Same first object and count, different second entry (a follower's rewritten suffix).
    second = (first[0], Entry(2, 2, b"c"))
    frame = encode_frame([AppendEntriesRequest(2, 1, 2, 0, 0, second, 0)], cache)
    assert orjson.loads(frame)[0][8] == [[1, 1, 0, "a"], [2, 2, 0, "c"]]
    assert (cache.misses, cache.hits) == (2, 0)
    for i in range(1, 200):
        entry = Entry(1, 1, str(i).encode())  # a fresh object each time, often at a reused id
        frame = encode_frame([AppendEntriesRequest(1, 1, 2, 0, 0, (entry,), 0)], cache)
        assert frame.endswith(f'[[1,1,0,"{i}"]]]]'.encode())


def test_the_cache_stays_bounded_by_count_and_bytes():
    by_count = EncodeCache(max_items=4)
    by_bytes = EncodeCache(max_bytes=100)
    for i in range(1, 50):
        entries = (Entry(1, i, b"x" * 30),)
        by_count.encode_entries(entries)
        by_bytes.encode_entries(entries)
        assert len(by_count) <= 4
        assert len(by_bytes) <= 2  # each encoding is 46 bytes


def test_encoding_refuses_what_is_not_a_peer_message():
    with pytest.raises(TypeError, match="cannot encode Entry: not a peer message"):
        encode_frame([Entry(1, 1)])
    with pytest.raises(ValueError, match=r"cannot encode message 1 \(TimeoutNow\)"):
        encode_frame([TimeoutNow(1, 1, 2), TimeoutNow(2**70, 1, 2)])
    with pytest.raises(ValueError, match=r"cannot encode message 0 \(InstallSnapshotRequest\)"):
        encode_frame([InstallSnapshotRequest(1, 1, 2, 5, 1, frozenset({1, "2"}))])


# ----------------------------------------------------------------------------- malformed frames


def matches(text: str, expected: str) -> bool:
    """Exact, except that a trailing "..." leaves the JSON parser's own wording open."""
    return text.startswith(expected[:-3]) if expected.endswith("...") else text == expected


AER_HEAD = "3,1,1,2,4,1,4,0"  # term 1, leader 1 -> 2, prev_log_index 4, prev_log_term 1, commit 4, round 0

MALFORMED = [
    ("not JSON", b"hello", "frame is not valid JSON: ..."),
    ("truncated JSON", b"[[5,1,1,2]", "frame is not valid JSON: ..."),
    ("JSON object", b'{"type": "append"}', "frame must be a list of messages, got an object"),
    ("JSON string", b'"x"', "frame must be a list of messages, got a string"),
    ("message not a list", b"[[5,1,1,2], 7]", "message 1: must be a list [type_code, fields...], got an integer"),
    ("empty message", b"[[]]", "message 0: is an empty list, expected [type_code, fields...]"),
    (
        "unknown type code",
        b"[[10,1,1,2]]",
        "message 0: unknown type code 10 (known: 1 RequestVoteRequest, 2 RequestVoteResponse, "
        "3 AppendEntriesRequest, 4 AppendEntriesResponse, 5 TimeoutNow, 6 InstallSnapshotRequest, "
        "7 InstallSnapshotResponse, 8 SnapshotChunk, 9 SnapshotChunkAck)",
    ),
    ("type code as string", b'[["5",1,1,2]]', 'message 0: unknown type code "5" (known: 1 RequestVoteRequest, 2 '
     "RequestVoteResponse, 3 AppendEntriesRequest, 4 AppendEntriesResponse, 5 TimeoutNow, 6 InstallSnapshotRequest, "
     "7 InstallSnapshotResponse, 8 SnapshotChunk, 9 SnapshotChunkAck)"),
    ("type code true", b"[[true,1,1,2]]", "message 0: unknown type code true (known: 1 RequestVoteRequest, 2 "
     "RequestVoteResponse, 3 AppendEntriesRequest, 4 AppendEntriesResponse, 5 TimeoutNow, 6 InstallSnapshotRequest, "
     "7 InstallSnapshotResponse, 8 SnapshotChunk, 9 SnapshotChunkAck)"),
    (
        "too few fields",
        b"[[5,1,1]]",
        "message 0: TimeoutNow must have 3 fields after the type code (term, source, dest), got 2",
    ),
    (
        "too many fields",
        b"[[2,1,2,1,true,false,0]]",
        "message 0: RequestVoteResponse must have 5 fields after the type code "
        "(term, source, dest, vote_granted, pre_vote), got 6",
    ),
    (
        "negative index",
        f"[[5,1,1,2],[5,1,1,2],[5,1,1,2],[3,1,1,2,-1,1,4,0,[]]]".encode(),
        "message 3: AppendEntriesRequest.prev_log_index must be a non-negative integer, got -1",
    ),
    ("bool for int", b"[[5,true,1,2]]", "message 0: TimeoutNow.term must be a non-negative integer, got true"),
    ("float for int", b"[[5,1.5,1,2]]", "message 0: TimeoutNow.term must be a non-negative integer, got 1.5"),
    ("null for int", b"[[5,1,null,2]]", "message 0: TimeoutNow.source must be a non-negative integer, got null"),
    (
        "string for int",
        b'[[4,1,2,1,true,"6",0,0,0]]',
        'message 0: AppendEntriesResponse.index must be a non-negative integer, got "6"',
    ),
    (
        "int for bool",
        b"[[2,1,2,1,1,false]]",
        "message 0: RequestVoteResponse.vote_granted must be a boolean, got 1",
    ),
    (
        "null for bool",
        b"[[1,1,1,2,0,0,false,null]]",
        "message 0: RequestVoteRequest.transfer must be a boolean, got null",
    ),
    (
        "entries not a list",
        f"[[{AER_HEAD},{{}}]]".encode(),
        "message 0: AppendEntriesRequest.entries must be a list of [term, index, kind, data], got an object",
    ),
    (
        "entry not a list",
        f'[[{AER_HEAD},["x"]]]'.encode(),
        "message 0: AppendEntriesRequest.entries[0] must be a list [term, index, kind, data], got a string",
    ),
    (
        "entry with three fields",
        f'[[{AER_HEAD},[[1,5,0]]]]'.encode(),
        "message 0: AppendEntriesRequest.entries[0] must be a list [term, index, kind, data], got 3 elements",
    ),
    (
        "entry term negative",
        f'[[{AER_HEAD},[[-2,5,0,""]]]]'.encode(),
        "message 0: AppendEntriesRequest.entries[0].term must be a non-negative integer, got -2",
    ),
    (
        "first entry not after prev_log_index",
        f'[[{AER_HEAD},[[1,4,0,""]]]]'.encode(),
        "message 0: AppendEntriesRequest.entries[0].index must be 5 (prev_log_index + 1), got 4",
    ),
    (
        "entries with a gap",
        f'[[{AER_HEAD},[[1,5,0,""],[1,6,0,""],[1,8,0,""]]]]'.encode(),
        "message 0: AppendEntriesRequest.entries[2].index must be 7 (contiguous after index 6), got 8",
    ),
    (
        "entries repeating an index",
        f'[[{AER_HEAD},[[1,5,0,""],[1,5,0,""]]]]'.encode(),
        "message 0: AppendEntriesRequest.entries[1].index must be 6 (contiguous after index 5), got 5",
    ),
    (
        "unknown entry kind",
        f'[[{AER_HEAD},[[1,5,7,""]]]]'.encode(),
        "message 0: AppendEntriesRequest.entries[0].kind must be one of [0, 1], got 7",
    ),
    (
        "entry data a number",
        f"[[{AER_HEAD},[[1,5,0,12]]]]".encode(),
        'message 0: AppendEntriesRequest.entries[0].data must be a string or {"b64": string}, got 12',
    ),
    (
        "entry data an object with extra keys",
        f'[[{AER_HEAD},[[1,5,0,{{"b64":"","x":1}}]]]]'.encode(),
        'message 0: AppendEntriesRequest.entries[0].data must be a string or {"b64": string}, got {"b64":"","x":1}',
    ),
    (
        "entry data bad base64",
        f'[[{AER_HEAD},[[1,5,0,{{"b64":"@@@"}}]]]]'.encode(),
        "message 0: AppendEntriesRequest.entries[0].data.b64 is not valid base64: Only base64 data is allowed",
    ),
    (
        "snapshot with too few fields",
        b'[[6,1,1,2,9,1,[1],[]]]',
        "message 0: InstallSnapshotRequest must have 8 fields after the type code (term, source, dest, "
        "last_included_index, last_included_term, voters, learners, data), got 7",
    ),
    (
        "snapshot index negative",
        b'[[6,1,1,2,-9,1,[1],[],""]]',
        "message 0: InstallSnapshotRequest.last_included_index must be a non-negative integer, got -9",
    ),
    (
        "snapshot voters not a list",
        b'[[6,1,1,2,9,1,{"1":true},[],""]]',
        "message 0: InstallSnapshotRequest.voters must be a list of node ids, got an object",
    ),
    (
        "snapshot voter not an id",
        b'[[6,1,1,2,9,1,[1,"2"],[],""]]',
        'message 0: InstallSnapshotRequest.voters[1] must be a non-negative integer (a node id), got "2"',
    ),
    (
        "snapshot learner negative",
        b'[[6,1,1,2,9,1,[1],[-3],""]]',
        "message 0: InstallSnapshotRequest.learners[0] must be a non-negative integer (a node id), got -3",
    ),
    (
        "snapshot voter true",
        b'[[6,1,1,2,9,1,[true],[],""]]',
        "message 0: InstallSnapshotRequest.voters[0] must be a non-negative integer (a node id), got true",
    ),
    (
        "snapshot voter repeated",
        b'[[6,1,1,2,9,1,[1,2,1],[],""]]',
        "message 0: InstallSnapshotRequest.voters[2] repeats node id 1",
    ),
    (
        "snapshot member both voter and learner",
        b'[[6,1,1,2,9,1,[1,2],[3,2],""]]',
        "message 0: InstallSnapshotRequest: node 2 is in both voters and learners",
    ),
    (
        "snapshot data a list",
        b'[[6,1,1,2,9,1,[1],[],[1,2]]]',
        'message 0: InstallSnapshotRequest.data must be a string or {"b64": string}, got [1,2]',
    ),
    (
        "snapshot data null",
        b'[[6,1,1,2,9,1,[1],[],null]]',
        'message 0: InstallSnapshotRequest.data must be a string or {"b64": string}, got null',
    ),
    (
        "snapshot data bad base64",
        b'[[6,1,1,2,9,1,[1],[],{"b64":"!"}]]',
        "message 0: InstallSnapshotRequest.data.b64 is not valid base64: ...",
    ),
    (
        "snapshot response with a flag for an int",
        b'[[5,1,1,2],[7,1,2,1,false]]',
        "message 1: InstallSnapshotResponse.match_index must be a non-negative integer, got false",
    ),
    (
        "snapshot response with too many fields",
        b'[[7,1,2,1,4,0]]',
        "message 0: InstallSnapshotResponse must have 4 fields after the type code "
        "(term, source, dest, match_index), got 5",
    ),
]


@pytest.mark.parametrize("frame, reason", [(frame, reason) for _, frame, reason in MALFORMED],
                         ids=[name for name, _, _ in MALFORMED])
def test_a_malformed_frame_gets_a_precise_error(frame, reason):
    with pytest.raises(FrameError) as raised:
        decode_frame(frame)
    assert matches(str(raised.value), reason)
    assert raised.value.reason == str(raised.value)


def test_long_values_are_shortened_in_errors():
    with pytest.raises(FrameError) as raised:
        decode_frame(orjson.dumps([[5, "x" * 500, 1, 2]]))
    assert str(raised.value) == f'message 0: TimeoutNow.term must be a non-negative integer, got "{"x" * 56}...'


def test_a_frame_over_the_size_limit_is_refused_before_parsing():
    frame = encode_frame([TimeoutNow(1, 1, 2)] * 10)
    assert decode_frame(frame, max_frame_bytes=len(frame)) == [TimeoutNow(1, 1, 2)] * 10
    with pytest.raises(FrameError, match=rf"^frame is {len(frame)} bytes, over the limit of 40 bytes$"):
        decode_frame(frame, max_frame_bytes=40)
    with pytest.raises(FrameError, match=rf"^frame is {len(frame)} characters, over the limit of 40 bytes$"):
        decode_frame(frame.decode(), max_frame_bytes=40)
    assert DEFAULT_MAX_FRAME_BYTES == 256 * 1024 * 1024


# ----------------------------------------------------------------------------- hello


def test_hello_round_trips_with_and_without_a_token():
    assert decode_hello(encode_hello("c1", 3, None, "127.0.0.1:8080")) == Hello("c1", 3, "127.0.0.1:8080")
    assert decode_hello(encode_hello("c1", 3, "s3cret", "[::1]:9")) == Hello("c1", 3, "[::1]:9", "s3cret")
    assert orjson.loads(encode_hello("c1", 3, None, "h:1")) == {
        "type": "hello", "cluster_id": "c1", "node_id": 3, "address": "h:1"
    }


BAD_HELLOS = [
    (b"[", "hello is not valid JSON: ..."),
    (b"[1]", 'hello must be an object {"type": "hello", ...}, got a list'),
    (b'{"type": "hi"}', 'hello must have "type": "hello", got "hi"'),
    (b'{"type": "hello", "node_id": 1}', "hello is missing cluster_id, address"),
    (
        b'{"type": "hello", "cluster_id": "c", "node_id": 1, "address": "h:1", "role": "x", "a": 1}',
        "hello has unknown fields: a, role",
    ),
    (b'{"type": "hello", "cluster_id": "", "node_id": 1, "address": "h:1"}',
     'hello.cluster_id must be a non-empty string, got ""'),
    (b'{"type": "hello", "cluster_id": "c", "node_id": true, "address": "h:1"}',
     "hello.node_id must be a non-negative integer, got true"),
    (b'{"type": "hello", "cluster_id": "c", "node_id": 1, "address": "h:1", "token": 5}',
     "hello.token must be a string, got 5"),
    (b'{"type": "hello", "cluster_id": "c", "node_id": 1, "address": "nohost"}',
     "hello.address must be \"host:port\", got 'nohost'"),
    (b'{"type": "hello", "cluster_id": "c", "node_id": 1, "address": "h:70000"}',
     "hello.address port must be between 1 and 65535, got 70000 in 'h:70000'"),
]


@pytest.mark.parametrize("data, reason", BAD_HELLOS)
def test_a_bad_hello_gets_a_precise_error(data, reason):
    with pytest.raises(FrameError) as raised:
        decode_hello(data)
    assert matches(str(raised.value), reason)


def test_parse_address_splits_host_and_port():
    assert parse_address("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_address("[::1]:80") == ("[::1]", 80)
    for bad in (":80", "host:", "host:8o", "host", 8080):
        with pytest.raises(ValueError, match="address"):
            parse_address(bad)
