"""The live view of real clusters, through the page only: members, the leader, and a
leader isolated and healed from its card."""
from __future__ import annotations

import pytest

pytest.importorskip("selenium", reason="selenium is not installed (python3 -m pip install -e '.[test]' installs it)")

from e2e_page import attribute, card, cards, click, leaders, member_button, one_leader, wait_until  # noqa: E402

pytestmark = pytest.mark.e2e

# A new leader needs an election timeout (1-2 s by default) and a pre-vote round; the
# isolated leader gives up its lease after one election timeout. "A few seconds":
NEW_LEADER_WITHIN = 10.0


def ids_by_port(cluster, ports) -> dict[int, int]:
    return {port: cluster.node_status(port)["id"] for port in ports}


def test_the_demo_page_shows_three_members_and_exactly_one_leader(browser, demo):
    browser.get(demo.url)
    wait_until(browser, lambda d: one_leader(d, 3), "3 members, all up, exactly one leader", timeout=20)
    assert attribute(browser, "body", "data-mode") == "live"
    # The cards are the nodes', and the leader shown is the one they follow, in its term.
    members = {demo.node_status(p)["id"] for p in demo.node_ports}
    assert {c["id"] for c in cards(browser)} == members
    assert all(c["voter"] == "true" for c in cards(browser))

    def agrees(d):
        statuses = [demo.node_status(p) for p in demo.node_ports]
        leader = statuses[0]["leader"]
        shown = leaders(d)
        return (
            leader is not None and all(s["leader"] == leader for s in statuses) and len(shown) == 1
            and shown[0]["id"] == leader and shown[0]["term"] == max(s["term"] for s in statuses)
        )

    wait_until(browser, agrees, "the page's leader and term to be the nodes' own")
    assert int(attribute(browser, "#connection", "data-member")) in members


def test_isolating_the_leader_shows_a_new_leader_and_healing_brings_it_back_as_a_follower(browser, demo):
    browser.get(demo.url)
    old = wait_until(browser, lambda d: one_leader(d, 3), "3 members, all up, exactly one leader", timeout=20)
    port_of = {member: port for port, member in ids_by_port(demo, demo.node_ports).items()}

    click(browser, member_button(old["id"], "isolate"), f"n{old['id']}'s isolate button")

    def new_leader(d):
        shown = leaders(d)
        if len(shown) == 1 and shown[0]["id"] != old["id"] and shown[0]["term"] > old["term"]:
            return shown[0]
        return None

    new = wait_until(browser, new_leader, "another member to lead, in a later term", timeout=NEW_LEADER_WITHIN)
    # The page does not make it up: the isolated member's neighbours follow the new leader.
    others = [p for m, p in port_of.items() if m != old["id"]]
    assert all(demo.node_status(p)["leader"] == new["id"] for p in others)

    click(browser, member_button(old["id"], "heal"), f"n{old['id']}'s heal button")

    def rejoined(d):
        shown, led = card(d, old["id"]), leaders(d)
        return (
            shown and shown["up"] == "true" and shown["role"] == "follower" and len(led) == 1
            and led[0]["id"] != old["id"] and shown["term"] == led[0]["term"]
        )

    wait_until(browser, rejoined, f"n{old['id']} back as a follower of the leader, in its term", timeout=NEW_LEADER_WITHIN)
    status = demo.node_status(port_of[old["id"]])
    assert status["role"] == "follower" and status["leader"] == leaders(browser)[0]["id"]


def test_a_node_without_faults_enabled_shows_itself_leading_and_the_fault_controls_disabled(browser, single_node):
    browser.get(single_node.url)
    me = single_node.get("/v1/status")[1]["id"]
    led = wait_until(browser, lambda d: one_leader(d, 1), "the single member, up and leading", timeout=20)
    assert led["id"] == me
    assert attribute(browser, "#controls", "data-faults-enabled") == "false"
    # The isolate button is there but disabled, and says why (the node was started without --enable-faults).
    isolate = browser.find_element("css selector", member_button(me, "isolate"))
    assert not isolate.is_enabled()
    assert "fault" in (isolate.get_attribute("title") or "").lower(), isolate.get_attribute("outerHTML")
    # Not under the demo: no kill -9 or restart.
    assert not browser.find_elements("css selector", member_button(me, "kill"))
