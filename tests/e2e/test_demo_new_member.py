"""A member started from the demo page joins as a learner, is promoted once caught up,
and the page shows it arrive, with its log equal to the leader's."""
from __future__ import annotations

import pytest

pytest.importorskip("selenium", reason="selenium is not installed (python3 -m pip install -e '.[test]' installs it)")

from e2e_page import cards, click, one_leader, wait_until  # noqa: E402
from e2e_processes import Demo  # noqa: E402

pytestmark = pytest.mark.e2e


@pytest.fixture
def one_node_demo(tmp_path):
    """A demo of one node, of its own: the test grows it, so it cannot be the shared one."""
    server = Demo(tmp_path, nodes=1).start()
    try:
        server.wait_ready()
        yield server
    finally:
        code = server.stop()
    assert code == 0, f"the demo did not stop cleanly ({code}):\n{server.output()}"


def test_a_member_started_from_the_page_joins_and_is_promoted_with_the_leaders_log(browser, one_node_demo):
    browser.get(one_node_demo.url)
    leader = wait_until(browser, lambda d: one_leader(d, 1), "the single member, up and leading", timeout=20)
    click(browser, "#member-start", "the 'start a new member' button")

    def promoted(d):
        shown = cards(d)
        new = [c for c in shown if c["id"] != leader["id"]]
        led = [c for c in shown if c["role"] == "leader"]
        if len(shown) == 2 and len(new) == 1 and len(led) == 1:
            joined = new[0]
            if joined["up"] == "true" and joined["voter"] == "true" and joined["last_log_index"] == led[0]["last_log_index"]:
                return joined
        return None

    joined = wait_until(browser, promoted, "a second member, up, a voter, with the leader's last log index", timeout=40)
    members = one_node_demo.members()
    assert len(members) == 2 and all(m["state"] == "running" for m in members), members
    assert joined["role"] == "follower"
