"""The keys panel against a real cluster: what the page writes, kvclient reads; what
kvclient writes, the page's watch shows."""
from __future__ import annotations

import pytest

pytest.importorskip("selenium", reason="selenium is not installed (python3 -m pip install -e '.[test]' installs it)")

from e2e_page import click, fill, one_leader, put_key, text, wait_until  # noqa: E402
from e2e_processes import kvclient  # noqa: E402

pytestmark = pytest.mark.e2e


def watched(key: str, kind: str = "put") -> str:
    return f'#watch-events .watch-event[data-key="{key}"][data-type="{kind}"]'


def test_a_key_put_through_the_page_is_read_by_kvclient_and_a_kvclient_put_shows_in_the_watch(browser, demo):
    browser.get(demo.url)
    wait_until(browser, lambda d: one_leader(d, 3), "3 members, all up, exactly one leader", timeout=20)
    members = {demo.node_status(p)["id"] for p in demo.node_ports}

    answered_by = put_key(browser, "greeting", "hello from the page")
    assert int(answered_by) in members
    assert "revision" in text(browser, "#kv-result").lower(), text(browser, "#kv-result")
    # A linearizable read on another node than the first: the write is the cluster's.
    assert kvclient(demo.node_ports[-1], "get", "greeting").strip() == "hello from the page"

    fill(browser, "#watch-prefix", "watched/")
    click(browser, "#watch-start", "the watch's start button")
    # The page's own put shows that the watch is running before kvclient writes.
    put_key(browser, "watched/from-page", "1")
    wait_until(browser, lambda d: d.find_elements("css selector", watched("watched/from-page")),
               "the page's own put in the watch", show=lambda d: text(d, "#watch-events"))

    kvclient(demo.node_ports[1], "put", "watched/from-kvclient", "2")
    kvclient(demo.node_ports[1], "put", "elsewhere", "not watched")
    kvclient(demo.node_ports[1], "del", "watched/from-page")
    wait_until(browser, lambda d: d.find_elements("css selector", watched("watched/from-page", "delete")),
               "kvclient's put and delete in the watch", show=lambda d: text(d, "#watch-events"))
    # Revision order: the put came before the delete, so it is there; a key outside the prefix is not.
    assert browser.find_elements("css selector", watched("watched/from-kvclient"))
    assert not browser.find_elements("css selector", '#watch-events .watch-event[data-key="elsewhere"]')
