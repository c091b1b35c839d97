"""Membership calls on real node processes, as a user makes them: adding learners and
voters, promoting, and what is refused."""
from __future__ import annotations

import asyncio
import contextlib
import io

import pytest

from abcd import cli

from abcd.client import Client, ClientError
from abcd.localcluster import LocalCluster, NodeProcess, free_port, http, wait_for

pytestmark = pytest.mark.integration

FAST = ["--heartbeat-ms", "20", "--election-timeout-ms", "200", "--log-level", "WARNING"]


def roles(node) -> dict[int, bool]:
    return {m["id"]: m["voter"] for m in node.status()["members"]}


def test_members_add_defaults_to_a_learner_and_a_learner_that_never_ran_is_not_promoted(tmp_path):
    with LocalCluster(str(tmp_path), 3, args=FAST) as cluster:
        follower = next(n for n in cluster.nodes if n is not cluster.leader())
        dead = f"127.0.0.1:{free_port()}"  # nothing runs there

        async def scenario():
            async with Client([follower.address], timeout=10.0) as client:
                added = await client.member_add(dead)
                learner_id = added["member"]["id"]
                assert added["member"]["voter"] is False, added
                with pytest.raises(ClientError) as refused:
                    await client.member_promote(learner_id)
                assert (refused.value.status, refused.value.code) == (409, "learner_not_ready")
                assert "never answered" in refused.value.message
                assert roles(follower)[learner_id] is False
                await client.member_remove(learner_id)
                # A voter at once when asked: four voters, three running, the quorum holds.
                voter = await client.member_add(dead, learner=False)
                assert voter["member"]["voter"] is True, voter
                await client.put("still", "writable")
                await client.member_remove(voter["member"]["id"])

        asyncio.run(scenario())

        def abcdctl(*args) -> tuple[int, str, str]:
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = cli.main(["--endpoints", follower.address, *args])
            return code, out.getvalue(), err.getvalue()

        code, out, err = abcdctl("members", "add", dead)
        assert code == 0 and out.endswith(f"added: {dead} as a learner (the leader promotes it to voter "
                                          "once its log has caught up)\n"), (out, err)
        learner_id = out.split()[1]
        code, out, err = abcdctl("members", "promote", learner_id)
        assert code == 1 and "(409 learner_not_ready)" in err, (out, err)
        assert abcdctl("members", "remove", learner_id)[0] == 0
        code, listing = http(cluster.leader().port, "GET", "/v1/members")
        assert code == 200 and len(listing["members"]) == 3 and all(m["voter"] for m in listing["members"])


class Writers:
    """Writers through the given endpoints, remembering what was acknowledged."""

    def __init__(self, endpoints: list[str], count: int = 4) -> None:
        self.endpoints = endpoints
        self.count = count
        self.acked: dict[str, str] = {}
        self.running = True

    async def run(self) -> None:
        async with Client(self.endpoints, timeout=20.0) as client:
            await asyncio.gather(*(self._one(client, i) for i in range(self.count)))

    async def _one(self, client: Client, i: int) -> None:
        seq = 0
        while self.running:
            seq += 1
            key = f"w/{i}/{seq}"
            try:
                await client.put(key, str(seq))
            except ClientError:
                continue  # not acknowledged: no promise was made
            self.acked[key] = str(seq)

    async def until(self, count: int, timeout: float = 30.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.acked) < count:
            late = asyncio.get_running_loop().time() > deadline
            assert not late, f"only {len(self.acked)} of {count} writes in {timeout} s"
            await asyncio.sleep(0.01)


def exited(node, timeout: float = 20.0) -> int:
    wait_for(lambda: not node.running, f"node {node.port} to exit", timeout)
    return node.proc.returncode


def test_a_removed_follower_learns_it_exits_and_cannot_come_back_with_its_data_dir(tmp_path):
    with LocalCluster(str(tmp_path), 3, args=FAST) as cluster:
        leader = cluster.leader()
        term = leader.status()["term"]
        victim = next(n for n in cluster.nodes if n is not leader)
        victim_id = victim.status()["id"]
        code, body = http(leader.port, "DELETE", f"/v1/members/{victim_id}", timeout=10)
        assert code == 200 and body["removed"] == victim_id, body
        assert exited(victim) == 0, victim.output()
        assert f"node {victim_id} was removed from cluster" in victim.output()
        # Its old data dir: refused by the members, it stops again at once.
        victim.start()
        assert exited(victim) == 0, victim.output()
        assert victim.output().count(f"node {victim_id} was removed from cluster") >= 2
        # The others never noticed: same leader, same term, writes go on.
        assert http(leader.port, "PUT", "/v1/kv/after", {"value": "x"})[0] == 200
        assert leader.status()["term"] == term and cluster.leader() is leader


def test_removing_the_leader_under_writes_answers_at_once_and_loses_nothing(tmp_path):
    with LocalCluster(str(tmp_path), 4, args=FAST) as cluster:

        async def remove_leader(through_leader: bool) -> None:
            leader = cluster.leader()
            leader_id = leader.status()["id"]
            asked = leader if through_leader else next(n for n in cluster.nodes if n.running and n is not leader)
            loop = asyncio.get_running_loop()
            started = loop.time()
            code, body = await asyncio.to_thread(http, asked.port, "DELETE", f"/v1/members/{leader_id}", timeout=20)
            took = loop.time() - started
            assert code == 200 and body["removed"] == leader_id, body
            assert took < 3.0, f"the removal took {took:.1f} s"  # the request timeout is 5 s
            assert leader_id not in {m["id"] for m in body["members"]}
            assert await asyncio.to_thread(exited, leader) == 0, leader.output()
            new = await asyncio.to_thread(wait_for, cluster.leader, "a new leader", 10)
            assert new.status()["id"] != leader_id

        async def scenario() -> Writers:
            writers = Writers(cluster.endpoints)
            task = asyncio.create_task(writers.run())
            await writers.until(50)
            await remove_leader(through_leader=False)
            await writers.until(len(writers.acked) + 50)
            await remove_leader(through_leader=True)
            await writers.until(len(writers.acked) + 50)
            writers.running = False
            await task
            return writers

        writers = asyncio.run(scenario())
        survivors = [n for n in cluster.nodes if n.running]
        assert len(survivors) == 2

        async def check() -> None:
            for node in survivors:
                async with Client([node.address], timeout=20.0) as client:
                    for key, value in writers.acked.items():
                        got = await client.get(key)
                        assert got is not None and got["kv"]["value"] == value, (node.address, key, got)

        asyncio.run(check())


def test_a_join_without_the_cluster_token_is_refused_and_the_node_exits_saying_why(tmp_path):
    token = ["--cluster-token", "s3cret"]
    with LocalCluster(str(tmp_path), 2, args=FAST + token) as cluster:
        follower = next(n for n in cluster.nodes if n is not cluster.leader())

        def join(name: str, extra: list[str]) -> NodeProcess:
            node = NodeProcess(free_port(), str(tmp_path / name), ["--name", name, *FAST, *extra])
            cluster.nodes.append(node)  # killed with the cluster if the test fails
            return node.start(join=follower.address)  # through a follower: it forwards to the leader

        for name, extra, reason in [
            ("tokenless", [], "adding a member needs the cluster token"),
            ("guesser", ["--cluster-token", "guess"], "wrong cluster token"),
        ]:
            stranger = join(name, extra)
            assert exited(stranger) == 1, stranger.output()
            assert "the cluster refused to add this node" in stranger.output()
            assert f"answered 403): {reason}" in stranger.output(), stranger.output()
        code, listing = http(follower.port, "GET", "/v1/members")
        assert code == 200 and len(listing["members"]) == 2, listing  # nobody was added
        code, refused = http(follower.port, "POST", "/v1/members", {"address": "127.0.0.1:9"})
        assert (code, refused["code"]) == (403, "forbidden") and "cluster token" in refused["error"]

        async def add_and_remove_with_the_token() -> None:
            async with Client([follower.address], timeout=10.0) as client:
                added = await client.member_add(f"127.0.0.1:{free_port()}", cluster_token="s3cret")
                await client.member_remove(added["member"]["id"])

        asyncio.run(add_and_remove_with_the_token())

        welcome = join("welcome", token)
        cluster.wait_ready()
        assert welcome.running and len(welcome.status()["members"]) == 3


def test_a_join_presenting_a_token_to_a_cluster_without_one_is_refused(tmp_path):
    with LocalCluster(str(tmp_path), 1, args=FAST) as cluster:
        node = NodeProcess(free_port(), str(tmp_path / "x"), ["--name", "x", *FAST, "--cluster-token", "s3cret"])
        cluster.nodes.append(node)
        node.start(join=cluster.nodes[0].address)
        assert exited(node) == 1, node.output()
        assert "runs without a cluster token" in node.output()
