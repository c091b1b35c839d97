"""Headless Chromium from the system's packages, driven by selenium.

The browser tests never download a browser or a driver: they use the distribution's
`chromium` and `chromium-driver` packages (`/usr/bin/chromium`, `/usr/bin/chromedriver`,
which `.ci/run` installs when they are missing). ABCD_CHROMIUM and ABCD_CHROMEDRIVER
name other binaries. Without them the tests are skipped, with the reason.
"""
from __future__ import annotations

import os

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# One fresh profile per browser, and nothing that talks to the internet in the
# background (updates, sync, safe browsing lists, QUIC probes): the page must work
# with loopback alone, and a test must not wait on a network that is not there.
FLAGS = (
    "--headless=new",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)
WINDOW = (1280, 900)


def binaries() -> tuple[str, str]:
    """(chromium, chromedriver) to use."""
    return os.environ.get("ABCD_CHROMIUM", CHROMIUM), os.environ.get("ABCD_CHROMEDRIVER", CHROMEDRIVER)


def missing_reason() -> str | None:
    """Why the browser tests cannot run on this machine, or None when they can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (python3 -m pip install -e '.[test]' installs it)"
    chromium, driver = binaries()
    for package, path in (("chromium", chromium), ("chromium-driver", driver)):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return (
                f"no executable {path}: the browser tests need the system packages chromium and "
                f"chromium-driver (apt-get install chromium chromium-driver; .ci/run installs them)"
            )
    return None


def start_browser(profile_dir: str, window: tuple[int, int] = WINDOW, extra_flags: tuple[str, ...] = ()):
    """A headless Chromium with a fresh profile in `profile_dir` (call missing_reason first)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = binaries()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*FLAGS, *extra_flags):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    options.add_argument(f"--window-size={window[0]},{window[1]}")
    # The page's console (errors, warnings) is read back for the report of a failed test.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path and browser binary: selenium then looks for nothing itself.
    return webdriver.Chrome(options=options, service=Service(executable_path=driver))


def console(driver) -> list[str]:
    """The page's console messages since the last call (empty if the driver cannot say)."""
    try:
        return [f"{entry['level']} {entry['message']}" for entry in driver.get_log("browser")]
    except Exception:  # a dead browser or a driver without logs: the report goes on without
        return []
