"""The browser tests' own ground: the system's Chromium starts headless, loads a page
from a real node and talks to that node; without Chromium the tests are skipped with
the reason, never passed."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from abcd.localcluster import http
from e2e_processes import REPO

pytestmark = pytest.mark.e2e

# One test that needs only the browser: the skip path below runs it without one.
BROWSER_ONLY = "tests/e2e/test_browser.py::test_the_system_chromium_starts_headless_with_a_fresh_profile"


def test_the_system_chromium_starts_headless_with_a_fresh_profile(browser, tmp_path_factory):
    agent = browser.execute_script("return navigator.userAgent")
    assert "HeadlessChrome" in agent, agent
    # A fresh profile made for this test, not the user's own: nothing carried over from another run.
    profile = browser.capabilities["chrome"]["userDataDir"]
    assert profile.startswith(str(tmp_path_factory.getbasetemp())), profile


def test_a_page_served_by_a_real_node_loads_and_reaches_that_node(browser, single_node):
    browser.get(single_node.url)
    assert browser.execute_script("return document.readyState") == "complete"
    # The page's own origin answers the API: what the dashboard reads is this node's status.
    seen = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch('/v1/status').then(r => r.json()).then(done, e => done(String(e)));"
    )
    status, expected = http(single_node.port, "GET", "/v1/status")
    assert status == 200
    assert isinstance(seen, dict), seen
    assert (seen["id"], seen["cluster_id"], seen["address"]) == (expected["id"], expected["cluster_id"], expected["address"])


@pytest.mark.parametrize("variable", ["ABCD_CHROMIUM", "ABCD_CHROMEDRIVER"])
def test_without_the_browser_the_tests_are_skipped_with_the_reason(tmp_path, variable):
    missing = tmp_path / "not-installed"
    env = dict(os.environ, **{variable: str(missing)})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", BROWSER_ONLY],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "1 skipped" in out and "passed" not in out, out
    assert f"no executable {missing}" in out, out
