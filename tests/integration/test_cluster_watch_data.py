"""What a dashboard reads from a real cluster: every member's status, its message
counts, CORS between members, and a one-way cut seen through the event stream."""
from __future__ import annotations

import asyncio
import urllib.request

import aiohttp
import pytest

from abcd.localcluster import LocalCluster, http, wait_for

pytestmark = pytest.mark.integration

SUPERVISOR = "http://127.0.0.1:8079"
ARGS = ["--heartbeat-ms", "50", "--election-timeout-ms", "500", "--log-level", "WARNING",
        "--enable-faults", "--allow-origin", SUPERVISOR]


def statuses(cluster) -> list[dict]:
    return [node.status() for node in cluster.nodes]


def check_runs(s: dict) -> None:
    """log_terms covers the log the member holds, in runs of rising index and term."""
    runs = s["log_terms"]
    assert runs[0][0] == s["snapshot_index"] + 1 and runs[-1][0] <= s["last_log_index"], s
    assert all(a[0] < b[0] and a[1] < b[1] for a, b in zip(runs, runs[1:])), runs


async def events_until(address: str, done, what: str, timeout: float = 15.0, *, then=None) -> list[dict]:
    """The events of one member's /v1/events until `done(events so far)`; `then()` runs
    once the first frame (the status) has come, i.e. once the watcher is subscribed."""
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"ws://{address}/v1/events") as ws:
            seen: list[dict] = await ws.receive_json(timeout=5)
            if then is not None:
                await asyncio.to_thread(then)
            deadline = asyncio.get_running_loop().time() + timeout
            while not done(seen):
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    raise AssertionError(f"no {what} within {timeout} s; last events: {seen[-5:]}")
                seen.extend(await ws.receive_json(timeout=left))
    return seen


def test_every_member_shows_its_log_timer_and_traffic_and_answers_the_members_pages(tmp_path):
    with LocalCluster(str(tmp_path), 3, args=ARGS) as cluster:
        leader = cluster.wait_ready()
        assert http(leader.port, "PUT", "/v1/kv/a", {"value": "1"})[0] == 200
        # Once every member holds the whole log, all show the same runs.
        wait_for(lambda: len({s["last_log_index"] for s in statuses(cluster)}) == 1, "the logs to be equal")
        by_id = {s["id"]: s for s in statuses(cluster)}
        lead = next(s for s in by_id.values() if s["role"] == "leader")
        followers = [s for s in by_id.values() if s["role"] == "follower"]
        assert len(followers) == 2
        for s in by_id.values():
            check_runs(s)
            assert s["log_terms"] == lead["log_terms"] and s["log_terms"][-1][1] == lead["term"]
            assert s["voter"] is True and s["heartbeat_ms"] == 50 and s["faults_enabled"] is True
        assert sorted(lead["progress"]) == sorted(str(s["id"]) for s in followers)
        assert lead["voted_for"] == lead["id"]
        assert 0 < lead["lease_remaining_ms"] <= 2 * 500
        for s in followers:
            assert s["progress"] is None and s["lease_remaining_ms"] is None and s["leader"] == lead["id"]
            assert 0 <= s["election_elapsed_ms"] < s["election_timeout_ms"] and 500 <= s["election_timeout_ms"] < 1000

        # A page served by one member (or by the supervisor) may call any member.
        for node in cluster.nodes:
            for origin, allowed in [(f"http://{cluster.nodes[0].address}", True), (SUPERVISOR, True),
                                    ("http://127.0.0.1:9", False)]:
                request = urllib.request.Request(f"http://{node.address}/v1/status", headers={"Origin": origin})
                with urllib.request.urlopen(request, timeout=5) as reply:
                    assert (reply.headers.get("Access-Control-Allow-Origin") == origin) is allowed

        # A follower's traffic: the leader's heartbeats in, its answers out.
        follower = next(n for n in cluster.nodes if n.status()["role"] == "follower")
        leader_id = lead["id"]

        def heard_and_answered(seen):
            batches = [e for e in seen if e["type"] == "messages"]
            heard = any(r["from"] == leader_id and r["type"] == "Heartbeat" for b in batches for r in b["received"])
            answered = any(
                r["to"] == leader_id and r["type"] == "AppendEntriesResponse" and r["success"] is True
                for b in batches for r in b["sent"]
            )
            return heard and answered and sum(e["type"] == "status" for e in seen) >= 2

        seen = asyncio.run(events_until(follower.address, heard_and_answered, "heartbeats heard and answered"))
        assert all(e["node"] == follower.status()["id"] for e in seen if e["type"] == "messages")


def test_a_one_way_cut_from_the_leader_makes_that_follower_campaign_while_the_others_keep_their_leader(tmp_path):
    with LocalCluster(str(tmp_path), 3, args=ARGS) as cluster:
        leader = cluster.wait_ready()
        before = leader.status()
        cut, other = [n for n in cluster.nodes if n is not leader]
        cut_id = cut.status()["id"]

        def cut_the_link() -> None:
            status, faults = http(leader.port, "POST", "/v1/admin/faults", {"cut_to": [cut_id]})
            assert status == 200 and faults["cut_to"] == [cut_id], faults

        seen = asyncio.run(
            events_until(
                cut.address,
                lambda seen: any(e.get("event") == "BecomePreCandidate" for e in seen),
                "pre-candidacy of the cut follower",
                then=cut_the_link,
            )
        )
        # It heard nothing for a whole election timeout, then asked for pre-votes.
        timeout = next(e for e in seen if e.get("event") == "Timeout")
        assert 500 <= timeout["fields"]["election_timeout_ms"] < 1000
        assert timeout["fields"]["election_elapsed_ms"] >= timeout["fields"]["election_timeout_ms"]
        # The others still hear the leader: it keeps leading, in the same term, and the
        # cut follower cannot win (pre-vote: it does not even raise its term).
        for node in (leader, other):
            s = node.status()
            assert s["leader"] == before["id"] and s["term"] == before["term"], s
        assert leader.status()["faults"]["dropped_by_cut"] > 0
        # Healed, it follows the same leader again.
        assert http(leader.port, "DELETE", "/v1/admin/faults")[0] == 200
        wait_for(lambda: (cut.status() or {}).get("leader") == before["id"], "the cut follower to follow the leader again")
        assert cut.status()["term"] == before["term"]
