"""The ports a local cluster gets: free, and out of reach of outgoing connections."""
from __future__ import annotations

import socket

import pytest

from abcd import localcluster
from abcd.localcluster import free_port, free_port_run


def ephemeral_range() -> tuple[int, int]:
    with open(localcluster.EPHEMERAL_RANGE_FILE) as f:
        low, high = f.read().split()[:2]
    return int(low), int(high)


def test_a_run_of_ports_is_free_and_below_the_ephemeral_range():
    # Any outgoing connection may take a port of the ephemeral range as its local port
    # between the pick and the node's bind; below the range, none can.
    try:
        low, _high = ephemeral_range()
    except OSError:
        pytest.skip("this system does not say which ports are ephemeral")
    if low - 3 <= localcluster.LOWEST_PORT:
        pytest.skip(f"no room below this system's ephemeral range (from {low})")
    for _ in range(20):
        base = free_port_run(3)
        assert localcluster.LOWEST_PORT <= base and base + 3 <= low
        for port in range(base, base + 3):
            with socket.socket() as s:
                s.bind(("127.0.0.1", port))  # free: binds without error
    assert free_port() < low


def test_ports_come_from_the_ephemeral_range_when_there_is_no_room_below_it(tmp_path, monkeypatch):
    ranges = tmp_path / "ip_local_port_range"
    ranges.write_text(f"{localcluster.LOWEST_PORT + 2}\t60999\n")
    monkeypatch.setattr(localcluster, "EPHEMERAL_RANGE_FILE", str(ranges))
    base = free_port_run(3)
    with socket.socket() as s:
        s.bind(("127.0.0.1", base))


def test_a_taken_port_is_never_handed_out(monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # The first pick lands on the taken port; the ones after it are random again.
        real = localcluster._pick.randrange
        picks = []

        def pick(lo, hi):
            picks.append(port if not picks else real(lo, hi))
            return picks[-1]

        monkeypatch.setattr(localcluster._pick, "randrange", pick)
        monkeypatch.setattr(localcluster, "_ephemeral_start", lambda: 65000)
        chosen = free_port()
        assert picks[0] == port and chosen != port and len(picks) >= 2
