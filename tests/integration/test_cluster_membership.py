"""Membership calls on real node processes, as a user makes them: adding learners and
voters, promoting, and what is refused."""
from __future__ import annotations

import asyncio
import contextlib
import io

import pytest

from abcd import cli

from abcd.client import Client, ClientError
from abcd.localcluster import LocalCluster, free_port, http

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
