"""The demo's own controls: kill -9 a member from its card, see it greyed, restart it
and see its log catch up with the leader's."""
from __future__ import annotations

import pytest

pytest.importorskip("selenium", reason="selenium is not installed (python3 -m pip install -e '.[test]' installs it)")

from e2e_page import card, click, leaders, member_button, one_leader, wait_until  # noqa: E402
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
