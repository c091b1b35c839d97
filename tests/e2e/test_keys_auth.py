"""The keys panel on a node with auth on: refused without a user, allowed what the
logged-in user may do, refused the rest."""
from __future__ import annotations

import pytest

pytest.importorskip("selenium", reason="selenium is not installed (python3 -m pip install -e '.[test]' installs it)")

from abcd.localcluster import free_port, http  # noqa: E402
from e2e_page import attribute, click, fill, one_leader, put_key, text, wait_until  # noqa: E402
from e2e_processes import node  # noqa: E402

pytestmark = pytest.mark.e2e


def test_the_keys_panel_logs_in_and_is_checked_as_its_user(browser, tmp_path):
    server = node(tmp_path, free_port()).start()
    try:
        server.wait_serving("/healthz")
        for method, path, body in [
            ("POST", "/v1/auth/users", {"name": "root", "password": "root-pw"}),
            ("POST", "/v1/auth/users", {"name": "alice", "password": "alice-pw"}),
            ("POST", "/v1/auth/roles", {"name": "app"}),
            ("POST", "/v1/auth/roles/app/permissions", {"key": "app/", "prefix": True, "perm": "readwrite"}),
            ("PUT", "/v1/auth/users/alice/roles/app", None),
            ("POST", "/v1/auth/enable", None),
        ]:
            assert http(server.port, method, path, body)[0] == 200, path
        browser.get(server.url)
        wait_until(browser, lambda d: one_leader(d, 1), "the member, up and leading", timeout=20)

        put_key(browser, "app/x", "before login")
        assert attribute(browser, "#kv-result", "data-status") == "401", text(browser, "#kv-result")

        fill(browser, "#kv-user", "alice")
        fill(browser, "#kv-password", "alice-pw")
        click(browser, "#kv-login", "the log in button")
        wait_until(browser, lambda d: "logged in as alice" in text(d, "#kv-login-state"), "the login",
                   show=lambda d: text(d, "#kv-login-state"))

        put_key(browser, "app/x", "after login")
        assert attribute(browser, "#kv-result", "data-status") == "200", text(browser, "#kv-result")
        put_key(browser, "other", "not alice's")
        assert attribute(browser, "#kv-result", "data-status") == "403", text(browser, "#kv-result")
        assert "may not write key 'other'" in text(browser, "#kv-result")

        fill(browser, "#watch-prefix", "app/")
        click(browser, "#watch-start", "the watch's start button")
        put_key(browser, "app/y", "watched")
        wait_until(browser, lambda d: d.find_elements("css selector", '#watch-events [data-key="app/y"]'),
                   "the put in the watch, opened with the token", show=lambda d: text(d, "#watch-state"))
    finally:
        server.stop()
