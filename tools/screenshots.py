#!/usr/bin/env python3
"""Take the pictures of docs/dashboard.md from the real page.

    python3 tools/screenshots.py [--out docs/img] [--width 1400]

Starts `python -m abcd demo --nodes 3` and the simulator (`--serve`) in a temporary
folder, opens the dashboard in headless Chromium (the system's, as the browser tests
use it), brings each view to the state a picture shows, and saves:

    live.png        the demo's cluster after a few writes, a watch running
    election.png    the leader isolated from its card, a new leader elected (timeline, captions)
    keys.png        the keys panel: an answer and the watch's events
    replay.png      a recorded simulator run, paused in its first election
    violation.png   a run of a core that grants every vote, at its violation

Everything stops when it ends, also on Ctrl-C or an error.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The same harness the browser tests drive the page with: a picture shows a state the tests check.
sys.path[:0] = [str(REPO), str(REPO / "tests" / "e2e")]

import e2e_browser  # noqa: E402
from abcd.localcluster import free_port  # noqa: E402
from e2e_processes import Demo, Server, kvclient  # noqa: E402

RUN = ["--nodes", "3", "--seed", "42", "--steps", "300"]
BROKEN = ["--nodes", "3", "--seed", "2", "--steps", "300", "--broken", "GrantEveryVote"]


def save(driver, path: Path, element: str | None = None) -> None:
    """The whole page (the window grown to its height), or one element of it."""
    import e2e_page

    if element:
        e2e_page.wait_until(driver, lambda d: d.find_elements("css selector", element), element)
        driver.find_element("css selector", element).screenshot(str(path))
    else:
        width = driver.get_window_size()["width"]
        height, chrome = driver.execute_script(
            "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]"
        )
        driver.set_window_size(width, min(max(height, 600), 3000) + chrome)
        driver.execute_script("window.scrollTo(0, 0)")  # a click scrolled the page: the picture starts at its top
        driver.save_screenshot(str(path))
    print(f"screenshots: {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")


def live_views(driver, folder: Path, out: Path) -> None:
    import e2e_page as page

    demo = Demo(folder / "demo", nodes=3)
    demo.folder.mkdir()
    demo.start()
    try:
        demo.wait_ready()
        driver.get(demo.url)
        leader = page.wait_until(driver, lambda d: page.one_leader(d, 3), "3 members and one leader", timeout=30)
        page.fill(driver, "#watch-prefix", "greeting/")
        page.click(driver, "#watch-start", "watch")
        for i, word in enumerate(["hello", "bonjour", "hallo", "ciao", "hola"]):
            kvclient(demo.node_ports[i % 3], "put", f"greeting/{i}", word)
        page.fill(driver, "#kv-key", "greeting/0")
        page.click(driver, "#kv-get", "get")
        page.wait_until(driver, lambda d: page.attribute(d, "#kv-result", "data-member"), "the get's answer")
        page.wait_until(driver, lambda d: len(d.find_elements("css selector", "#watch-events .watch-event")) >= 5, "the watch's events")
        save(driver, out / "live.png")
        save(driver, out / "keys.png", "#keys")

        page.click(driver, page.member_button(leader["id"], "isolate"), "isolate the leader")
        # Once the isolated leader has stepped down too: one leader on the page, the new one.
        page.wait_until(
            driver, lambda d: [c["id"] for c in page.leaders(d)] not in ([], [leader["id"]]) and len(page.leaders(d)) == 1,
            "a new leader, alone", timeout=30,
        )
        page.wait_until(driver, lambda d: d.find_elements("css selector", '#timeline .timeline-event[data-event="BecomeLeader"]'), "the election in the timeline")
        save(driver, out / "election.png")
        page.click(driver, page.member_button(leader["id"], "heal"), "heal")
    finally:
        demo.stop()


def replay_view(driver, folder: Path, out: Path, args: list[str], jump: str, name: str, shown) -> None:
    """Serve a run, jump with `jump`, then step forward until `shown(cards)` (at most 200 steps)."""
    import e2e_page as page

    def position(d) -> int:
        return int(page.attribute(d, "#replay-position", "data-step") or 0)

    port = free_port()
    folder.mkdir()
    server = Server(folder, "sim", ["-m", "abcd.sim", *args, "--record", "run.json", "--serve", "--port", str(port)], port)
    server.start()
    try:
        server.wait_serving("/run.json", timeout=120)
        driver.get(server.url + "?run=/run.json")
        page.wait_until(driver, lambda d: page.attribute(d, "body", "data-mode") == "replay" and page.cards(d), "the replay")
        pause = driver.find_element("css selector", "#replay-pause")
        if pause.is_displayed() and pause.is_enabled():
            pause.click()
        page.click(driver, jump, jump)
        page.wait_until(driver, lambda d: position(d) > 0, jump)
        for _ in range(200):
            if shown(page.cards(driver)):
                break
            at = position(driver)
            page.click(driver, "#replay-step-forward", "step forward")
            page.wait_until(driver, lambda d: position(d) > at, "the next step")
        save(driver, out / name)
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Take docs/dashboard.md's pictures from the real page.")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img", help="where the PNG files go (default docs/img)")
    parser.add_argument("--width", type=int, default=1400, help="browser window width in pixels (default 1400)")
    args = parser.parse_args(argv)
    reason = e2e_browser.missing_reason()
    if reason:
        print(f"screenshots: {reason}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="abcd-screenshots-") as tmp:
        folder = Path(tmp)
        driver = e2e_browser.start_browser(str(folder / "profile"), window=(args.width, 900))
        try:
            live_views(driver, folder, args.out)
            driver.set_window_size(args.width, 900)
            # An election under way: a candidate asks for votes, the answers in flight.
            replay_view(driver, folder / "replay", args.out, RUN, "#replay-next-election", "replay.png",
                        lambda cards: any(c["role"] == "candidate" for c in cards))
            driver.set_window_size(args.width, 900)
            replay_view(driver, folder / "broken", args.out, BROKEN, "#replay-next-violation", "violation.png",
                        lambda cards: True)
        finally:
            driver.quit()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("screenshots: interrupted", file=sys.stderr)
        sys.exit(130)
