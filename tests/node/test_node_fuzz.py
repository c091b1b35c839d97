"""Malformed input never takes a node down: random JSON at the HTTP API and the session."""
import asyncio
import json
import shutil

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node_harness import LocalNode

def json_values_with(integers, floats):
    scalars = st.one_of(st.none(), st.booleans(), integers, floats, st.text(max_size=20))
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=12,
    )


# HTTP bodies may hold anything JSON can say, integers beyond 64 bits and Infinity included.
json_values = json_values_with(st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=False))
# Session frames too, but a frame that is not valid JSON to the node closes the session
# (tested in test_node_api), so the frames here stay within what decodes.
frame_values = json_values_with(
    st.integers(min_value=-(2**63), max_value=2**63 - 1), st.floats(allow_nan=False, allow_infinity=False)
)
ops = st.sampled_from(["put", "get", "delete", "range", "txn", "lease_grant", "lease_revoke",
                       "lease_keepalive", "lease_expire", "compact", "nope"])
fields = st.sampled_from(["key", "value", "prefix", "limit", "revision", "serializable", "lease", "ttl",
                          "compare", "success", "failure", "request_id", "id", "op"])
requests = st.builds(
    lambda op, extra: {"op": op, **extra},
    ops,
    st.dictionaries(fields, frame_values, max_size=5),
)

ALLOWED = {200, 400, 404, 413}


class Shared:
    """One node (and one session) for all examples: starting one per example would
    dominate the run."""

    loop = None
    node = None
    ws = None
    data_dir = None


def run(coro):
    return Shared.loop.run_until_complete(coro)


def setup_module(module):
    import tempfile

    Shared.loop = asyncio.new_event_loop()
    Shared.data_dir = tempfile.mkdtemp(prefix="abcd-fuzz-")
    Shared.node = LocalNode(Shared.data_dir)
    run(Shared.node.start())


def teardown_module(module):
    if Shared.ws is not None:
        run(Shared.ws.close())
    run(Shared.node.stop())
    Shared.loop.close()
    shutil.rmtree(Shared.data_dir, ignore_errors=True)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(body=json_values, path=st.sampled_from(["/v1/kv/k", "/v1/txn", "/v1/members", "/v1/lease",
                                                "/v1/leader/transfer", "/v1/kv/"]))
def test_random_json_bodies_get_clear_errors(body, path):
    n = Shared.node
    method = "PUT" if path.startswith("/v1/kv") else "POST"
    raw = json.dumps(body).encode()
    status, answer = run(n.call(method, path, data=raw, headers={"Content-Type": "application/json"}))
    assert status in ALLOWED | {503}, (path, body, status, answer)
    if status != 200:
        assert set(answer) == {"error", "code"} and answer["error"], answer


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(frame=st.lists(requests, min_size=1, max_size=6))
def test_random_session_frames_are_answered_one_by_one(frame):
    n = Shared.node

    async def exchange():
        if Shared.ws is None or Shared.ws.closed:
            Shared.ws = await n.http.ws_connect(n.base.replace("http", "ws") + "/v1/session")
        tagged = [{**request, "id": i} for i, request in enumerate(frame)]
        await Shared.ws.send_str(json.dumps(tagged))
        answers = {}
        while len(answers) < len(tagged):
            for answer in await Shared.ws.receive_json(timeout=10):
                answers[answer["id"]] = answer
        return answers

    answers = run(exchange())
    for i, answer in answers.items():
        assert answer["status"] in ALLOWED, (frame[i], answer)
        if answer["status"] != 200:
            assert answer["body"]["code"] and answer["body"]["error"]


def test_the_node_still_serves_after_the_fuzzing():
    n = Shared.node
    assert run(n.call("PUT", "/v1/kv/after-fuzz", json={"value": "ok"}))[0] == 200
    assert n.node.failed is None
