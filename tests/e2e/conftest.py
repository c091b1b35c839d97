"""Fixtures of the browser tests: a headless Chromium, the demo, one node; a screenshot
of every test's final state.

The tests run in the default suite. Where the browser cannot run (no chromium or
chromium-driver, no selenium), each is reported as skipped with the reason (the
suite's `-rs` prints it in the summary): a browser test never passes without a browser.
"""
from __future__ import annotations

import pytest

import e2e_browser
from abcd.localcluster import free_port
from e2e_processes import Demo, node

SCREENSHOT = "final-state.png"


@pytest.fixture
def browser(request, tmp_path_factory):
    """A fresh headless Chromium (its own profile), quit at the end of the test."""
    reason = e2e_browser.missing_reason()
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("browser")
    driver = e2e_browser.start_browser(str(folder / "profile"))
    request.node.dashboard_browser = (driver, folder / SCREENSHOT)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def demo_process(tmp_path_factory):
    """`python -m abcd demo --nodes 3` in a temporary folder, shared by the tests (a demo
    takes seconds to start), stopped cleanly at the end."""
    server = Demo(tmp_path_factory.mktemp("demo"), nodes=3).start()
    try:
        server.wait_ready()
        yield server
    finally:
        code = server.stop()
    assert code == 0, f"the demo did not stop cleanly ({code}):\n{server.output()}"


@pytest.fixture
def demo(demo_process):
    """The demo as a test finds it: every member running, no faults, one leader (whatever the test before did)."""
    demo_process.restore()
    return demo_process


@pytest.fixture(scope="session")
def single_node(tmp_path_factory):
    """One node, `python -m abcd PORT`, leading its own cluster of one (faults not enabled)."""
    server = node(tmp_path_factory.mktemp("node"), free_port()).start()
    try:
        server.wait_serving("/healthz")
        yield server
    finally:
        server.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Save the page as the test left it (pass or fail); a failure's report says where, with the page's console."""
    outcome = yield
    report = outcome.get_result()
    opened = getattr(item, "dashboard_browser", None)
    if report.when != "call" or opened is None:
        return
    driver, path = opened
    try:
        saved = driver.save_screenshot(str(path))
    except Exception as error:  # a browser that died cannot be photographed; say so, do not hide the failure
        saved, path = False, f"none ({error.__class__.__name__}: {error})"
    if report.failed:
        report.sections.append(("dashboard", f"screenshot of the final state: {path if saved else 'none'}"))
        messages = e2e_browser.console(driver)
        if messages:
            report.sections.append(("dashboard console", "\n".join(messages[-40:])))

