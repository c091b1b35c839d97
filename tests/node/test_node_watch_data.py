"""What a dashboard reads from one node: the status fields, the periodic events of
`/v1/events`, CORS, and the per-link fault settings."""
from __future__ import annotations

import pytest
from node_harness import run_with_node, wait_until

from abcd.__main__ import UsageError, build_parser, plan
from abcd.api.cors import parse_origin

STRANGER = "http://127.0.0.1:1"
SUPERVISOR = "http://127.0.0.1:8079"


def ws_url(n, path: str) -> str:
    return n.base.replace("http", "ws") + path


async def receive_until(events, done, what: str, limit: int = 200) -> list[dict]:
    """Every event received until `done(events so far)` (a deadline per frame)."""
    seen: list[dict] = []
    for _ in range(limit):
        seen.extend(await events.receive_json(timeout=5))
        if done(seen):
            return seen
    raise AssertionError(f"no {what} in {len(seen)} events")


def test_status_shows_the_log_runs_the_vote_the_lease_and_no_timer_on_a_leader(tmp_path):
    async def body(n):
        for i in range(5):
            assert (await n.call("PUT", f"/v1/kv/k{i}", json={"value": "v"}))[0] == 200
        status, s = await n.call("GET", "/v1/status")
        assert status == 200
        core = n.node.core
        runs = [[e.index, e.term] for e in core.log.entries]
        runs = [run for i, run in enumerate(runs) if i == 0 or runs[i - 1][1] != run[1]]
        assert s["log_terms"] == runs and s["log_terms"][-1][1] == s["term"]
        assert s["last_log_index"] == core.log.last_index >= 7
        assert s["voted_for"] == 1 == s["id"]  # it elected itself
        assert s["voter"] is True
        assert s["heartbeat_ms"] == 10
        # A leader does not time out: its lease says how long it holds.  Alone, it is
        # its own majority, so the lease always reaches past the coming check.
        assert s["election_elapsed_ms"] is None and s["election_timeout_ms"] is None
        election_ms = 10 * n.node.config.election_ticks
        assert election_ms < s["lease_remaining_ms"] <= 2 * election_ms
        assert s["progress"] == {}  # a leader with no follower
        assert s["faults_enabled"] is False and s["faults"] is None

    run_with_node(tmp_path, body)


def test_a_learners_progress_is_on_the_leaders_status(tmp_path):
    async def body(n):
        # A learner that never starts: the leader probes it from its log's end.
        status, added = await n.call("POST", "/v1/members", json={"address": "127.0.0.1:9"})
        assert status == 200, added
        status, s = await n.call("GET", "/v1/status")
        [(peer, learner)] = s["progress"].items()
        assert peer == "2" and learner["match_index"] == 0 and learner["state"] == "probe"
        assert 1 <= learner["next_index"] <= s["last_log_index"] + 1
        assert [m["voter"] for m in s["members"]] == [True, False]

    run_with_node(tmp_path, body)


def test_events_bring_status_every_250_ms_and_message_counts_while_watched_and_nothing_after(tmp_path):
    async def body(n):
        node = n.node
        status, added = await n.call("POST", "/v1/members", json={"address": "127.0.0.1:9"})
        assert status == 200
        # Nobody watches: no timer runs, nothing is counted.
        assert not node.live_events.running
        ticks = node.core.tick_count
        await wait_until(lambda: node.core.tick_count >= ticks + 5, "five leader ticks")
        assert node.traffic.take() == ([], [])
        async with n.http.ws_connect(ws_url(n, "/v1/events")) as events:
            first = (await events.receive_json(timeout=5))[0]
            assert first["type"] == "status" and first["role"] == "leader" and "log_terms" in first
            seen = await receive_until(
                events, lambda seen: sum(e["type"] == "status" for e in seen) >= 3, "three periodic status events"
            )
            statuses = [e for e in seen if e["type"] == "status"]
            gaps = [b["time"] - a["time"] for a, b in zip([first] + statuses, statuses)]
            assert all(0.15 < gap < 1.0 for gap in gaps), gaps
            batches = [e for e in seen if e["type"] == "messages"]
            assert batches, seen
            for batch in batches:
                assert batch["node"] == 1 and batch["received"] == []
                # The leader's heartbeats to its learner (it never answers), counted per 100 ms.
                [sent] = batch["sent"]
                assert sent == {"to": 2, "type": "Heartbeat", "count": sent["count"], "entries": 0, "success": None}
                assert 1 <= sent["count"] <= 30  # 10 heartbeats in 100 ms, give or take a loop turn
        # The last watcher left: the timers stop and counting stops.
        await wait_until(lambda: not node.live_events.running, "the periodic events to stop", timeout=2)
        ticks = node.core.tick_count
        await wait_until(lambda: node.core.tick_count >= ticks + 5, "five leader ticks")
        assert node.traffic.take() == ([], [])

    run_with_node(tmp_path, body)


def test_cors_answers_member_origins_and_allowed_ones_and_nobody_else(tmp_path):
    async def body(n):
        member = n.base  # the page served by this member
        for origin in (member, SUPERVISOR):
            async with n.http.get(n.base + "/v1/status", headers={"Origin": origin}) as reply:
                assert reply.status == 200
                assert reply.headers["Access-Control-Allow-Origin"] == origin
                assert reply.headers["Vary"] == "Origin"
            # Errors are readable by the page too.
            async with n.http.get(n.base + "/v1/kv/missing", headers={"Origin": origin}) as reply:
                assert reply.status == 404 and reply.headers["Access-Control-Allow-Origin"] == origin
            # The preflight of a PUT with a JSON body.
            preflight = {"Origin": origin, "Access-Control-Request-Method": "PUT",
                         "Access-Control-Request-Headers": "content-type"}
            async with n.http.options(n.base + "/v1/kv/a", headers=preflight) as reply:
                assert reply.status == 204
                assert reply.headers["Access-Control-Allow-Origin"] == origin
                assert "PUT" in reply.headers["Access-Control-Allow-Methods"]
                assert "Content-Type" in reply.headers["Access-Control-Allow-Headers"]
        for headers in ({"Origin": STRANGER}, {}):
            async with n.http.get(n.base + "/v1/status", headers=headers) as reply:
                assert reply.status == 200
                assert "Access-Control-Allow-Origin" not in reply.headers
        preflight = {"Origin": STRANGER, "Access-Control-Request-Method": "DELETE"}
        async with n.http.options(n.base + "/v1/kv/a", headers=preflight) as reply:
            assert reply.status == 403 and "Access-Control-Allow-Origin" not in reply.headers
            answer = await reply.json()
            assert answer["code"] == "forbidden" and STRANGER in answer["error"] and "--allow-origin" in answer["error"]
        # A page's websocket needs no CORS, from any origin.
        async with n.http.ws_connect(ws_url(n, "/v1/events"), headers={"Origin": STRANGER}) as events:
            assert (await events.receive_json(timeout=5))[0]["type"] == "status"

    run_with_node(tmp_path, body, allow_origins=(SUPERVISOR,))


@pytest.mark.parametrize(
    "text, origin",
    [("http://127.0.0.1:8079", "http://127.0.0.1:8079"), ("HTTP://Example.ORG:80/", "http://example.org:80"),
     ("https://dash.example", "https://dash.example")],
)
def test_an_allowed_origin_is_normalized(text, origin):
    assert parse_origin(text) == origin


@pytest.mark.parametrize("text", ["127.0.0.1:8079", "ftp://h:1", "http://h:1/page", "http://h:1?x=1", "http://u@h:1", "http://h:99999", "http://"])
def test_what_is_not_an_origin_is_refused_with_an_example(text):
    with pytest.raises(ValueError, match="is not an origin.*such as http://127.0.0.1:8079"):
        parse_origin(text)


def test_the_allow_origin_flag_is_repeatable_and_refuses_what_is_not_an_origin():
    args = build_parser().parse_args(["8080", "--allow-origin", SUPERVISOR, "--allow-origin", "https://Dash.example/"])
    assert plan(args)["allow_origins"] == (SUPERVISOR, "https://dash.example")
    assert plan(build_parser().parse_args(["8080"]))["allow_origins"] == ()
    with pytest.raises(UsageError, match="--allow-origin: '127.0.0.1:8079' is not an origin"):
        plan(build_parser().parse_args(["8080", "--allow-origin", "127.0.0.1:8079"]))


def test_faults_per_link_and_one_way_show_in_status_and_bad_ones_get_400(tmp_path):
    async def body(n):
        setting = {"cut_to": [3], "links": {"2": {"delay_ms": 5, "drop_rate": 0.25}}}
        status, faults = await n.call("POST", "/v1/admin/faults", json=setting)
        assert status == 200, faults
        assert faults["cut_to"] == [3]
        assert faults["links"] == {"2": {"delay_ms": 5.0, "jitter_ms": 0.0, "drop_rate": 0.25}}
        status, s = await n.call("GET", "/v1/status")
        assert s["faults_enabled"] is True and s["faults"]["cut_to"] == [3] and s["faults"]["links"]["2"]["drop_rate"] == 0.25
        for bad, words in [
            ({"cut_to": "3"}, "cut_to must be a list of node ids"),
            ({"links": {"two": {}}}, "links keys must be node ids"),
            ({"links": {"2": {"drop_rate": 7}}}, 'links["2"].drop_rate must be between 0 and 1'),
            ({"links": {"2": {"latency": 7}}}, 'unknown fields in links["2"]: latency'),
        ]:
            status, answer = await n.call("POST", "/v1/admin/faults", json=bad)
            assert status == 400 and answer["code"] == "bad_request" and words in answer["error"], answer
        # A refused setting leaves the previous one in place.
        status, s = await n.call("GET", "/v1/status")
        assert s["faults"]["cut_to"] == [3]
        status, healed = await n.call("DELETE", "/v1/admin/faults")
        assert status == 200 and healed["cut_to"] == [] and healed["links"] == {}

    run_with_node(tmp_path, body, enable_faults=True)
