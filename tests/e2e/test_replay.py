"""Recorded simulator runs in the same page: stepping forward and back shows the
recorded members' state at each step, and a broken core's violation appears at its step."""
from __future__ import annotations

import pytest

pytest.importorskip("selenium", reason="selenium is not installed (python3 -m pip install -e '.[test]' installs it)")

from abcd.localcluster import free_port  # noqa: E402
from e2e_page import attribute, cards, click, one_leader, wait_until  # noqa: E402
from e2e_processes import Server, record  # noqa: E402

pytestmark = pytest.mark.e2e

RUN = ("--nodes", "3", "--seed", "42", "--steps", "300")
# A seed where the core that grants every vote elects two leaders in term 1, at step 78.
BROKEN = ("--nodes", "3", "--seed", "2", "--steps", "300", "--broken", "GrantEveryVote")
SHOWN = ("role", "term", "commit_index", "last_log_index")


def recorded_state(run: dict, step: int) -> list[dict]:
    """The members as recorded after `step` (a step records only the members it changed)."""
    members = {}
    for recorded in run["steps"][: step + 1]:
        members.update((m["id"], m) for m in recorded.get("state") or ())
    return [{"id": i, **{k: members[i][k] for k in SHOWN}} for i in sorted(members)]


def shown_state(driver) -> list[dict]:
    return [{"id": c["id"], **{k: c[k] for k in SHOWN}} for c in sorted(cards(driver), key=lambda c: c["id"])]


def position(driver) -> int:
    return int(attribute(driver, "#replay-position", "data-step"))


def step_to(driver, button: str, expected: int, run: dict) -> list[dict]:
    click(driver, button, button)
    wait_until(driver, lambda d: position(d) == expected, f"{button} to reach step {expected}",
               show=lambda d: attribute(d, "#replay-position", "data-step"))
    want = recorded_state(run, expected)
    wait_until(driver, lambda d: shown_state(d) == want, f"the cards of step {expected}: {want}", show=shown_state)
    return want


def loaded(driver, run: dict) -> bool:
    return (
        attribute(driver, "body", "data-mode") == "replay"
        and attribute(driver, "#replay-position", "data-steps") == str(len(run["steps"]))
        and len(cards(driver)) == len(run["members"])
    )


def pause(driver) -> None:
    """Stop a replay that starts playing by itself, so that only the test moves it."""
    button = driver.find_element("css selector", "#replay-pause")
    if button.is_displayed() and button.is_enabled():
        button.click()


def test_a_recorded_run_replays_step_by_step_and_back(browser, tmp_path):
    port = free_port()
    server = Server(tmp_path, "sim", ["-m", "abcd.sim", *RUN, "--record", "run.json", "--serve", "--port", str(port)], port)
    server.start()
    try:
        server.wait_serving("/run.json")
        run = server.get("/run.json")[1]  # the run the page replays, to check each step against
        browser.get(server.url + "?run=/run.json")
        wait_until(browser, lambda d: loaded(d, run), "the run to be loaded in replay mode")
        pause(browser)

        start = position(browser)
        click(browser, "#replay-next-election", "next election")
        wait_until(browser, lambda d: position(d) > start, "the jump to the next election")
        here = position(browser)
        wait_until(browser, lambda d: shown_state(d) == recorded_state(run, here), f"the cards of step {here}", show=shown_state)

        # Forward one step at a time to the next step that changes a card: the election
        # begins (a member changes role); then back, and forward again.
        changes = next(i for i in range(here + 1, len(run["steps"])) if recorded_state(run, i) != recorded_state(run, i - 1))
        for step in range(here + 1, changes + 1):
            after = step_to(browser, "#replay-step-forward", step, run)
        before = step_to(browser, "#replay-step-back", changes - 1, run)
        assert [m["role"] for m in after] != [m["role"] for m in before], "the next election changed no member's role"
        step_to(browser, "#replay-step-forward", changes, run)
    finally:
        server.stop()


def test_a_broken_core_run_shows_its_violation_at_its_step(browser, single_node, tmp_path):
    run = record(tmp_path, "broken.json", *BROKEN)
    violation = run["violation"]
    assert violation, f"python -m abcd.sim {' '.join(BROKEN)} recorded no violation"

    # The file picker of a page opened on a node (showing it live) switches it to the replay.
    browser.get(single_node.url)
    wait_until(browser, lambda d: one_leader(d, 1), "the live view of the node")
    browser.find_element("css selector", "#replay-file").send_keys(str(tmp_path / "broken.json"))
    wait_until(browser, lambda d: loaded(d, run), "the run to be loaded in replay mode")
    pause(browser)
    at = next(i for i, s in enumerate(run["steps"]) if s["step"] == violation["step"])  # data-step counts steps from 0
    assert position(browser) < at
    assert not browser.find_element("css selector", "#violation").is_displayed()

    click(browser, "#replay-next-violation", "next violation")
    wait_until(browser, lambda d: browser.find_element("css selector", "#violation").is_displayed(),
               "the violation banner", show=lambda d: attribute(d, "#violation", "outerHTML"))
    assert position(browser) == at
    assert attribute(browser, "#violation", "data-invariant") == violation["invariant"]
    shown = attribute(browser, "#violation", "data-members") or ""
    assert sorted(int(m) for m in shown.split(",") if m) == sorted(violation["members"])
