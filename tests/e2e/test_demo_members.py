"""Members that die: kill -9 from the demo page greys a member, restart brings it back
with its log caught up; a page opened on a member that dies goes on with another."""
from __future__ import annotations

import pytest

pytest.importorskip("selenium", reason="selenium is not installed (python3 -m pip install -e '.[test]' installs it)")

from abcd.localcluster import http  # noqa: E402
from e2e_page import attribute, card, click, leaders, member_button, one_leader, put_key, wait_until  # noqa: E402
from e2e_processes import kvclient  # noqa: E402

pytestmark = pytest.mark.e2e

WRITES_WHILE_DOWN = 5


def test_kill_9_from_the_demo_page_greys_the_member_and_restart_brings_it_back_caught_up(browser, demo):
    browser.get(demo.url)
    leader = wait_until(browser, lambda d: one_leader(d, 3), "3 members, all up, exactly one leader", timeout=20)
    port_of = {demo.node_status(p)["id"]: p for p in demo.node_ports}
    victim = min(m for m in port_of if m != leader["id"])
    before = demo.member(port_of[victim])

    click(browser, member_button(victim, "kill"), f"n{victim}'s kill button")
    wait_until(browser, lambda d: (card(d, victim) or {}).get("up") == "false", f"n{victim} greyed (data-up=false)")
    killed = demo.member(port_of[victim])
    assert killed["state"] == "killed", killed

    # The cluster goes on without it: its log falls behind the leader's.
    for i in range(WRITES_WHILE_DOWN):
        kvclient(port_of[leader["id"]], "put", f"while-n{victim}-was-down/{i}", str(i))

    def leader_ahead(d):
        led, gone = leaders(d), card(d, victim)
        if len(led) == 1 and gone and led[0]["last_log_index"] >= gone["last_log_index"] + WRITES_WHILE_DOWN:
            return led[0]["last_log_index"]
        return None

    behind = wait_until(browser, leader_ahead, "the leader's log to grow past the killed member's")

    click(browser, member_button(victim, "restart"), f"n{victim}'s restart button")

    def caught_up(d):
        back, led = card(d, victim), leaders(d)
        return (
            back and back["up"] == "true" and len(led) == 1
            and back["last_log_index"] == led[0]["last_log_index"] >= behind
        )

    wait_until(browser, caught_up, f"n{victim} up again with the leader's last log index", timeout=30)
    restarted = demo.member(port_of[victim])
    assert restarted["state"] == "running" and restarted["pid"] != before["pid"], (before, restarted)
    assert kvclient(port_of[victim], "get", f"while-n{victim}-was-down/{WRITES_WHILE_DOWN - 1}").strip() == str(WRITES_WHILE_DOWN - 1)


def test_a_page_opened_on_a_member_that_dies_goes_on_reading_and_writing_through_another(browser, demo):
    statuses = {p: demo.node_status(p) for p in demo.node_ports}
    port, opened_on = next((p, s["id"]) for p, s in statuses.items() if s["role"] == "follower")
    browser.get(f"http://127.0.0.1:{port}/")
    wait_until(browser, lambda d: one_leader(d, 3), "3 members, all up, exactly one leader", timeout=20)
    wait_until(browser, lambda d: attribute(d, "#connection", "data-member") == str(opened_on),
               f"the page to read from n{opened_on}, where it was opened", show=lambda d: attribute(d, "#connection", "outerHTML"))

    # kill -9 from outside the page, as a crash would.
    status, body = http(demo.port, "POST", f"/demo/members/{port}/kill", timeout=30)
    assert status == 200, body

    def moved_on(d):
        gone, reading = card(d, opened_on), attribute(d, "#connection", "data-member")
        return gone and gone["up"] == "false" and reading not in (None, "", str(opened_on)) and len(leaders(d)) == 1

    wait_until(browser, moved_on, f"n{opened_on} greyed and the page reading from another member", timeout=20)
    answered_by = put_key(browser, "written-after-a-crash", "still here")
    assert int(answered_by) != opened_on
    leader_port = next(p for p, s in statuses.items() if s["id"] == leaders(browser)[0]["id"])
    assert kvclient(leader_port, "get", "written-after-a-crash").strip() == "still here"
