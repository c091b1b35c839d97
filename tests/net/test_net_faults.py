"""Fault injection: Faults decisions, and the Rx operators in virtual time.

Marble diagrams: one character is TICK virtual seconds; batches are single letters
looked up in BATCHES; the output is drawn back as a marble string, with "(ab)" for
batches delivered at the same instant.
"""
from __future__ import annotations

import pytest
import reactivex
from reactivex.testing import TestScheduler

from abcd.net.faults import Faults, Link, faults_inbound, faults_outbound

TICK = 0.25  # seconds of virtual time per marble character (a binary fraction: exact times)
SUBSCRIBED = 200.0

BATCHES = {
    "a": (2, ("a1", "a2")),
    "b": (3, ("b1",)),
    "c": (2, ("c1",)),
    "d": (3, ("d1", "d2", "d3")),
}
NAMES = {(peer, tuple(messages)): name for name, (peer, messages) in BATCHES.items()}


def run_marbles(source: str, operator_factory, faults: Faults, *, dispose_at: float = 1000.0) -> str:
    scheduler = TestScheduler()
    batches = reactivex.hot(source, timespan=TICK, duetime=SUBSCRIBED, lookup=BATCHES, scheduler=scheduler)
    observer = scheduler.start(
        lambda: batches.pipe(operator_factory(faults, scheduler)),
        created=100.0,
        subscribed=SUBSCRIBED,
        disposed=dispose_at,
    )
    return draw(observer.messages)


def draw(records) -> str:
    slots: dict[int, str] = {}
    for record in records:
        slot = (record.time - SUBSCRIBED) / TICK
        assert slot == int(slot), f"{record} is not on a marble slot"
        notification = record.value
        if notification.kind == "N":
            peer, messages = notification.value
            symbol = NAMES[(peer, tuple(messages))]
        else:
            symbol = "|" if notification.kind == "C" else "#"
        slots[int(slot)] = slots.get(int(slot), "") + symbol
    if not slots:
        return ""
    return "".join(
        "-" if slot not in slots else slots[slot] if len(slots[slot]) == 1 else f"({slots[slot]})"
        for slot in range(max(slots) + 1)
    )


# ----------------------------------------------------------------------------- operators


@pytest.mark.parametrize("operator", [faults_outbound, faults_inbound])
def test_no_faults_pass_every_batch_unchanged_and_on_time(operator):
    assert run_marbles("-a-b-c-d-|", operator, Faults()) == "-a-b-c-d-|"


@pytest.mark.parametrize("operator", [faults_outbound, faults_inbound])
def test_a_partition_removes_the_batches_of_the_cut_peers(operator):
    faults = Faults(partition=frozenset({3}))
    assert run_marbles("-a-b-c-d-|", operator, faults) == "-a---c---|"
    assert faults.dropped_by_partition == 1 + 3


def test_a_delay_shifts_every_batch_and_completion_waits_for_them():
    faults = Faults(delay_ms=500)  # two marble slots
    assert run_marbles("-a-b-c|", faults_outbound, faults) == "---a-b-(c|)"


def test_jitter_delays_each_batch_within_the_bounds_may_reorder_and_replays_by_seed():
    sent_at = {"a": 1, "b": 3, "c": 5, "d": 7}  # marble slots of "-a-b-c-d-|"

    def deliveries(seed: int) -> list[tuple[float, str]]:
        scheduler = TestScheduler()
        batches = reactivex.hot("-a-b-c-d-|", timespan=TICK, duetime=SUBSCRIBED, lookup=BATCHES, scheduler=scheduler)
        faults = Faults(delay_ms=1000, jitter_ms=1000, seed=seed)  # 0 to 2 s: 0 to 8 slots
        observer = scheduler.start(lambda: batches.pipe(faults_outbound(faults, scheduler)), subscribed=SUBSCRIBED)
        return [
            (record.time, NAMES[(record.value.value[0], tuple(record.value.value[1]))])
            for record in observer.messages
            if record.value.kind == "N"
        ]

    runs = [deliveries(seed) for seed in range(20)]
    assert deliveries(7) == runs[7]
    for run in runs:
        assert sorted(name for _, name in run) == ["a", "b", "c", "d"]
        for time, name in run:
            assert 0 <= time - (SUBSCRIBED + sent_at[name] * TICK) <= 2.0
    orders = {"".join(name for _, name in run) for run in runs}
    assert len(orders) > 1 and orders != {"abcd"}, orders


def test_jittered_delays_stay_within_delay_plus_minus_jitter():
    faults = Faults(delay_ms=100, jitter_ms=40, seed=3)
    samples = [faults.sample_delay_seconds() for _ in range(2000)]
    assert min(samples) >= 0.060 and max(samples) <= 0.140
    assert max(samples) - min(samples) > 0.07  # it really jitters
    assert Faults(delay_ms=10, jitter_ms=50, seed=1).sample_delay_seconds() >= 0  # never negative


def test_settings_changed_mid_stream_apply_to_later_batches():
    faults = Faults()
    scheduler = TestScheduler()
    batches = reactivex.hot("-a-b-c-d-|", timespan=TICK, duetime=SUBSCRIBED, lookup=BATCHES, scheduler=scheduler)
    scheduler.schedule_absolute(SUBSCRIBED + 2 * TICK, lambda *_: faults.configure({"partition": [2]}))
    scheduler.schedule_absolute(SUBSCRIBED + 6 * TICK, lambda *_: faults.heal())
    observer = scheduler.start(lambda: batches.pipe(faults_inbound(faults, scheduler)), subscribed=SUBSCRIBED)
    assert draw(observer.messages) == "-a-b---d-|"


def test_disposing_cancels_batches_still_in_flight():
    faults = Faults(delay_ms=1000)  # four slots
    assert run_marbles("-a-b-c|", faults_outbound, faults, dispose_at=SUBSCRIBED + 6 * TICK) == "-----a"


def test_an_error_passes_at_once_and_drops_the_batches_in_flight():
    faults = Faults(delay_ms=1000)
    assert run_marbles("-a-b-#", faults_outbound, faults) == "-----#"


def test_the_scheduler_given_at_subscribe_serves_when_none_is_passed():
    scheduler = TestScheduler()
    batches = reactivex.hot("-a-b|", timespan=TICK, duetime=SUBSCRIBED, lookup=BATCHES, scheduler=scheduler)
    observer = scheduler.start(lambda: batches.pipe(faults_outbound(Faults(delay_ms=250))), subscribed=SUBSCRIBED)
    assert draw(observer.messages) == "--a-(b|)"


# ----------------------------------------------------------------------------- Faults decisions


def test_apply_cuts_partitioned_peers_and_keeps_the_rest():
    faults = Faults(partition=frozenset({2, 5}))
    assert faults.apply(2, ["m"]) == []
    assert faults.apply(3, ("m", "n")) == ["m", "n"]
    assert faults.dropped_by_partition == 1


def test_apply_loses_messages_at_the_drop_rate_reproducibly():
    messages = list(range(10_000))
    kept = Faults(drop_rate=0.3, seed=11).apply(1, messages)
    assert kept == Faults(drop_rate=0.3, seed=11).apply(1, messages)
    assert 0.27 < 1 - len(kept) / len(messages) < 0.33
    assert kept == sorted(kept)  # loss never reorders
    assert Faults(drop_rate=1.0).apply(1, messages) == []
    assert Faults(drop_rate=0.0).apply(1, messages) == messages


def test_configure_reads_an_admin_body_and_heal_clears_it():
    faults = Faults()
    assert not faults.active
    faults.configure({"partition": [2, 3], "delay_ms": 20, "jitter_ms": 5, "drop_rate": 0.1})
    assert faults.active
    assert (faults.partition, faults.delay_ms, faults.jitter_ms, faults.drop_rate) == (frozenset({2, 3}), 20, 5, 0.1)
    faults.configure({"delay_ms": 7})  # a body states the whole setting: the rest resets
    assert (faults.partition, faults.delay_ms, faults.drop_rate) == (frozenset(), 7, 0)
    faults.heal()
    assert not faults.active
    assert faults.to_json()["partition"] == []


@pytest.mark.parametrize(
    "body, reason",
    [
        ([1], "faults must be a JSON object, got list"),
        (
            {"partition": [1], "loss": 0.1},
            "unknown fault fields: loss (known: partition, cut_to, links, delay_ms, jitter_ms, drop_rate)",
        ),
        ({"partition": 2}, "partition must be a list of node ids (non-negative integers), got 2"),
        ({"partition": [1, "2"]}, "partition must be a list of node ids (non-negative integers), got [1, '2']"),
        ({"partition": [True]}, "partition must be a list of node ids (non-negative integers), got [True]"),
        ({"delay_ms": "10"}, "delay_ms must be a number, got '10'"),
        ({"delay_ms": -1}, "delay_ms must be a finite number >= 0, got -1.0"),
        ({"jitter_ms": float("inf")}, "jitter_ms must be a finite number >= 0, got inf"),
        ({"drop_rate": 1.5}, "drop_rate must be between 0 and 1, got 1.5"),
        ({"drop_rate": True}, "drop_rate must be a number, got True"),
        ({"cut_to": 2}, "cut_to must be a list of node ids (non-negative integers), got 2"),
        ({"cut_to": [-1]}, "cut_to must be a list of node ids (non-negative integers), got [-1]"),
        ({"links": [2]}, 'links must be an object {"<peer id>": {"delay_ms", "jitter_ms", "drop_rate"}}, got [2]'),
        ({"links": {"n2": {}}}, "links keys must be node ids (non-negative integers as strings), got 'n2'"),
        ({"links": {"-2": {}}}, "links keys must be node ids (non-negative integers as strings), got '-2'"),
        ({"links": {"2": 5}}, 'links["2"] must be a JSON object, got int'),
        (
            {"links": {"2": {"delay": 5}}},
            'unknown fields in links["2"]: delay (known: delay_ms, jitter_ms, drop_rate)',
        ),
        ({"links": {"2": {"drop_rate": 3}}}, 'links["2"].drop_rate must be between 0 and 1, got 3.0'),
        ({"links": {"2": {"delay_ms": "x"}}}, "links[\"2\"].delay_ms must be a number, got 'x'"),
        # A valid part does not take effect when another part is wrong.
        ({"partition": [4], "links": {"2": {"jitter_ms": -1}}}, 'links["2"].jitter_ms must be a finite number >= 0, got -1.0'),
    ],
)
def test_configure_rejects_bad_bodies_and_keeps_the_old_setting(body, reason):
    faults = Faults(partition=frozenset({9}), delay_ms=3)
    with pytest.raises(ValueError) as raised:
        faults.configure(body)
    assert str(raised.value) == reason
    assert (faults.partition, faults.delay_ms, faults.cut_to, faults.links) == (frozenset({9}), 3, frozenset(), {})


def test_a_one_way_cut_drops_what_this_node_sends_but_not_what_it_hears():
    faults = Faults(cut_to=frozenset({2}))
    assert faults.active
    assert faults.apply(2, ["m", "n"], outbound=True) == []
    assert faults.apply(2, ["m"], outbound=False) == ["m"]
    assert faults.apply(3, ["m"], outbound=True) == ["m"]
    assert faults.dropped_by_cut == 2 and faults.dropped_by_partition == 0


def test_the_operators_apply_a_cut_to_outbound_batches_only():
    faults = Faults(cut_to=frozenset({3}))
    assert run_marbles("-a-b-c-d-|", faults_outbound, faults) == "-a---c---|"
    assert run_marbles("-a-b-c-d-|", faults_inbound, faults) == "-a-b-c-d-|"


def test_a_link_has_its_own_delay_and_loss_instead_of_the_node_wide_ones():
    faults = Faults(delay_ms=250, links={3: Link(delay_ms=750)})
    # Peer 2's batches ("a", "c") take the node-wide slot of delay, peer 3's ("b") three.
    assert run_marbles("-a-b-c|", faults_outbound, faults) == "--a---(bc|)"
    lossy = Faults(links={2: Link(drop_rate=1.0)})
    assert lossy.apply(2, ["m"]) == [] and lossy.apply(3, ["m"]) == ["m"]
    assert lossy.dropped_by_loss == 1
    # The node-wide loss does not apply to a link with its own (lossless) setting.
    assert Faults(drop_rate=1.0, links={2: Link()}).apply(2, ["m"]) == ["m"]


def test_configure_reads_cuts_and_links_and_to_json_shows_them():
    faults = Faults()
    faults.configure({"cut_to": [3, 2], "links": {"4": {"delay_ms": 30, "jitter_ms": 5}, "5": {"drop_rate": 0.5}}})
    assert faults.active
    assert faults.cut_to == frozenset({2, 3})
    assert faults.links == {4: Link(30.0, 5.0, 0.0), 5: Link(0.0, 0.0, 0.5)}
    shown = faults.to_json()
    assert shown["cut_to"] == [2, 3]
    assert shown["links"] == {
        "4": {"delay_ms": 30.0, "jitter_ms": 5.0, "drop_rate": 0.0},
        "5": {"delay_ms": 0.0, "jitter_ms": 0.0, "drop_rate": 0.5},
    }
    assert shown["dropped_by_cut"] == 0
    faults.configure({})  # a body states the whole setting
    assert not faults.active and faults.to_json()["links"] == {}
    faults.configure({"cut_to": [2]})
    faults.heal()
    assert not faults.active and faults.cut_to == frozenset()
