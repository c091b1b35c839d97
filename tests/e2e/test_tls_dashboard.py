"""The dashboard served over https by a TLS cluster: the page reaches every member with
the scheme it was served with (wss for the event streams and the session, https for
calls), so the live view and the keys panel work as over http."""
from __future__ import annotations

import pytest

pytest.importorskip("selenium", reason="selenium is not installed (python3 -m pip install -e '.[test]' installs it)")

import ssl  # noqa: E402

import e2e_browser  # noqa: E402
from e2e_page import attribute, one_leader, put_key, wait_until  # noqa: E402

from abcd.localcluster import LocalCluster, http, tls_cluster_files  # noqa: E402

pytestmark = pytest.mark.e2e


def test_the_dashboard_over_https_shows_the_members_and_puts_a_key(tmp_path):
    reason = e2e_browser.missing_reason()
    if reason:
        pytest.skip(reason)
    tls_args, cacert = tls_cluster_files(str(tmp_path / "tls"))
    context = ssl.create_default_context(cafile=cacert)
    args = ["--heartbeat-ms", "50", "--election-timeout-ms", "500", *tls_args]
    (tmp_path / "cluster").mkdir()
    with LocalCluster(str(tmp_path / "cluster"), 3, args=args, ssl_context=context) as cluster:
        # The browser does not know the test's CA: it is told to accept the nodes' certificate.
        driver = e2e_browser.start_browser(str(tmp_path / "profile"), extra_flags=("--ignore-certificate-errors",))
        try:
            first = cluster.nodes[0]
            driver.get(f"https://{first.address}/")
            wait_until(driver, lambda d: one_leader(d, 3), "3 members, all up, one leader, over wss", timeout=30)
            assert attribute(driver, "body", "data-mode") == "live"
            put_key(driver, "from/https-page", "yes")
            code, body = http(cluster.nodes[2].port, "GET", "/v1/kv/from/https-page", ssl_context=context)
            assert code == 200 and body["kv"]["value"] == "yes", body
        finally:
            driver.quit()
