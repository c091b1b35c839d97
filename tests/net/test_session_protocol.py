"""The /v1/session protocol without I/O (abcd/session_protocol.py): bytes in, requests
and answers out, on both sides, as docs/api.md "The session channel" gives the wire."""
import orjson
import pytest

from abcd.session_protocol import (
    CLOSE_INVALID_JSON,
    CLOSE_NOT_A_LIST,
    CLOSE_PROTOCOL_ERROR,
    CLOSE_TOO_BIG,
    SessionClient,
    SessionProtocolError,
    SessionServer,
)

# ------------------------------------------------------------------ the client side


def test_requests_queued_together_leave_in_one_frame_with_ids_in_order():
    client = SessionClient()
    put = {"op": "put", "key": "a", "value": "x"}
    assert client.request(put, "h1") == 1
    assert client.request({"op": "get", "key": "a"}, "h2", token="t0k") == 2
    assert client.has_unsent and client.busy
    frame = client.data_to_send()
    assert orjson.loads(frame) == [
        {"op": "put", "key": "a", "value": "x", "id": 1},
        {"op": "get", "key": "a", "id": 2, "auth": "t0k"},
    ]
    assert put == {"op": "put", "key": "a", "value": "x"}  # the caller's request is not changed
    assert not client.has_unsent and client.busy
    assert client.data_to_send() is None  # nothing new: no empty frame


def test_answers_in_any_order_and_grouping_find_their_handles():
    client = SessionClient()
    for handle in ("first", "second", "third"):
        client.request({"op": "get", "key": handle}, handle)
    client.data_to_send()
    got = client.receive(b'[{"id": 3, "status": 404, "body": {"code": "not_found"}}, {"id": 1, "status": 200}]')
    assert got == [("third", 404, {"code": "not_found"}), ("first", 200, None)]
    assert client.receive('[{"id": 2, "status": 200, "body": {"revision": 7}}]') == [("second", 200, {"revision": 7})]
    assert not client.busy


def test_an_answer_to_an_id_never_sent_is_an_error_naming_it_and_earlier_answers_survive():
    client = SessionClient()
    client.request({"op": "get", "key": "a"}, "a")
    client.data_to_send()
    with pytest.raises(SessionProtocolError, match="request id 9, which was never sent") as caught:
        client.receive(b'[{"id": 1, "status": 200}, {"id": 9, "status": 200}]')
    assert caught.value.close_code == CLOSE_PROTOCOL_ERROR
    assert caught.value.answers == [("a", 200, None)]


def test_a_second_answer_to_the_same_request_is_an_error():
    client = SessionClient()
    client.request({"op": "get", "key": "a"}, "a")
    client.data_to_send()
    client.receive(b'[{"id": 1, "status": 200}]')
    with pytest.raises(SessionProtocolError, match="answered already"):
        client.receive(b'[{"id": 1, "status": 200}]')


def test_a_request_abandoned_before_it_was_sent_never_leaves():
    client = SessionClient()
    first = client.request({"op": "put", "key": "a", "value": "1"}, "a")
    client.request({"op": "put", "key": "b", "value": "2"}, "b")
    assert client.abandon(first) is False  # not sent
    assert [r["key"] for r in orjson.loads(client.data_to_send())] == ["b"]
    with pytest.raises(SessionProtocolError):  # so an answer to it can only be a broken server
        client.receive(b'[{"id": 1, "status": 200}]')


def test_the_answer_to_a_request_abandoned_after_sending_is_dropped_once():
    client = SessionClient()
    rid = client.request({"op": "put", "key": "a", "value": "1"}, "a")
    client.data_to_send()
    assert client.abandon(rid) is True  # sent: the server will answer it
    assert not client.busy
    assert client.receive(b'[{"id": 1, "status": 200}]') == []
    with pytest.raises(SessionProtocolError):
        client.receive(b'[{"id": 1, "status": 200}]')
    assert client.abandon(rid) is False  # answered (and dropped) already


@pytest.mark.parametrize(
    "frame, message",
    [
        (b"[{", "answer frame is not valid JSON"),
        (b'{"id": 1, "status": 200}', "an answer frame must be a JSON list, got dict"),
        (b"[7]", "an answer must be an object with an integer status, got 7"),
        (b'[{"id": 1}]', "an answer must be an object with an integer status"),
        (b'[{"id": 1, "status": "200"}]', "an answer must be an object with an integer status"),
        (b'[{"status": 200}]', "request id None, which was never sent"),
        (b'[{"id": [1], "status": 200}]', r"request id \[1\], which was never sent"),
    ],
)
def test_a_malformed_answer_frame_is_an_error_that_says_what_is_wrong(frame, message):
    client = SessionClient()
    client.request({"op": "get", "key": "a"}, "a")
    client.data_to_send()
    with pytest.raises(SessionProtocolError, match=message):
        client.receive(frame)
    assert client.busy  # the request is still waiting: the caller closes and learns of it


def test_an_answer_frame_over_the_limit_is_refused_before_it_is_parsed():
    client = SessionClient(max_frame_bytes=64)
    frame = orjson.dumps([{"id": 1, "status": 200, "body": {"value": "x" * 100}}])
    with pytest.raises(SessionProtocolError, match=f"of {len(frame)} bytes is over the limit of 64") as caught:
        client.receive(frame)
    assert caught.value.close_code == CLOSE_TOO_BIG


def test_closing_tells_which_requests_were_sent_and_forgets_them():
    client = SessionClient()
    client.request({"op": "put", "key": "a", "value": "1"}, "sent-1")
    client.request({"op": "put", "key": "b", "value": "1"}, "sent-2")
    client.data_to_send()
    client.request({"op": "put", "key": "c", "value": "1"}, "queued")
    assert client.close() == (["queued"], ["sent-1", "sent-2"])
    assert not client.busy and client.data_to_send() is None
    assert client.close() == ([], [])


def test_requests_their_callers_no_longer_want_are_dropped_from_the_frame():
    client = SessionClient()
    client.request({"op": "get", "key": "a"}, "stale")
    client.request({"op": "get", "key": "b"}, "live")
    frame = client.data_to_send(wanted=lambda handle: handle != "stale")
    assert [r["key"] for r in orjson.loads(frame)] == ["b"]
    assert client.close() == ([], ["live"])
    client.request({"op": "get", "key": "c"}, "stale")
    assert client.data_to_send(wanted=lambda handle: False) is None
    assert not client.busy


# ------------------------------------------------------------------ the server side


def test_a_client_frame_gives_its_requests_with_ids_as_sent():
    server = SessionServer()
    requests = server.receive(b'[{"id": 1, "op": "put", "key": "a", "value": "x"}, {"op": "get", "key": "a"}, {"id": "x"}]')
    assert requests == [{"id": 1, "op": "put", "key": "a", "value": "x"}, {"op": "get", "key": "a"}, {"id": "x"}]
    assert server.receive(b"[]") == []


@pytest.mark.parametrize(
    "frame, code, message",
    [
        (b"[{", CLOSE_INVALID_JSON, "frame is not valid JSON: "),
        (b'{"id": 1}', CLOSE_NOT_A_LIST, "a frame must be a JSON list of request objects, got dict"),
        (b"7", CLOSE_NOT_A_LIST, "a frame must be a JSON list of request objects, got int"),
        (b'[{"id": 1}, 2]', CLOSE_NOT_A_LIST, "got a list with non-object items"),
    ],
)
def test_a_client_frame_that_is_not_a_list_of_objects_is_refused_with_the_close_code_of_the_api(frame, code, message):
    with pytest.raises(SessionProtocolError, match=message) as caught:
        SessionServer().receive(frame)
    assert caught.value.close_code == code


def test_a_client_frame_over_the_limit_is_refused_with_1009():
    with pytest.raises(SessionProtocolError, match="over the limit of 10") as caught:
        SessionServer(max_frame_bytes=10).receive(b'[{"id": 1, "op": "get"}]')
    assert caught.value.close_code == CLOSE_TOO_BIG


def test_answers_gathered_between_sends_leave_in_one_frame_in_order():
    server = SessionServer()
    assert server.data_to_send() is None and not server.has_answers
    server.answer(2, 200, {"kv": {"key": "a"}, "revision": 7})
    server.answer(None, 400, {"error": "no op", "code": "bad_request"})
    assert server.has_answers
    assert server.data_to_send() == (
        b'[{"id":2,"status":200,"body":{"kv":{"key":"a"},"revision":7}},'
        b'{"id":null,"status":400,"body":{"error":"no op","code":"bad_request"}}]'
    )
    assert server.data_to_send() is None


def test_a_client_and_a_server_understand_each_other():
    client, server = SessionClient(), SessionServer()
    client.request({"op": "put", "key": "a", "value": "x", "request_id": "c7:41"}, "put")
    client.request({"op": "get", "key": "a"}, "get")
    for request in reversed(server.receive(client.data_to_send())):
        server.answer(request["id"], 200, {"op": request["op"]})
    assert client.receive(server.data_to_send()) == [("get", 200, {"op": "get"}), ("put", 200, {"op": "put"})]
