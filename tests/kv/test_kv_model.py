"""The MVCC store against a naive model that keeps a full copy of the state per revision."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kvtest_helpers import Log, kv, raises_kv

KEYS = ["a", "ab", "b", "b/1", "b/2"]
PREFIXES = ["", "a", "b", "b/", "c"]


class Model:
    """states[r] is the whole store at revision r, built by copying: obviously right."""

    def __init__(self) -> None:
        self.revision = 1
        self.states: dict[int, dict[str, dict]] = {1: {}}

    def write(self, changes: list[tuple[str, str | None]]) -> int:
        """Apply (key, value) puts and (key, None) deletes as one write; the revision."""
        state = dict(self.states[self.revision])
        rev = self.revision + 1
        changed = False
        for key, value in changes:
            prev = state.get(key)
            if value is None:
                if prev is not None:
                    del state[key]
                    changed = True
            else:
                create = prev["create_revision"] if prev else rev
                state[key] = kv(key, value, create, rev, prev["version"] + 1 if prev else 1)
                changed = True
        if changed:
            self.revision = rev
            self.states[rev] = state
        return self.revision

    def matching(self, prefix: str) -> list[str]:
        return sorted(k for k in self.states[self.revision] if k.startswith(prefix))


def run(log: Log, model: Model, cmd: tuple) -> None:
    kind = cmd[0]
    if kind == "put":
        _, key, value = cmd
        assert log.put(key, value)["revision"] == model.write([(key, value)])
    elif kind == "delete":
        _, key, prefix = cmd
        keys = model.matching(key) if prefix else [k for k in [key] if k in model.states[model.revision]]
        body = log.delete(key, prefix=prefix)
        assert body == {"deleted": len(keys), "revision": model.write([(k, None) for k in keys])}
    elif kind == "txn":
        _, key, version, success, failure = cmd
        current = model.states[model.revision].get(key)
        succeeded = (current["version"] if current else 0) == version
        ops = success if succeeded else failure
        body = log.apply(
            op="txn",
            compare=[{"key": key, "target": "version", "op": "==", "value": version}],
            success=[{"put": {"key": k, "value": v}} if v is not None else {"delete": {"key": k}} for k, v in success],
            failure=[{"put": {"key": k, "value": v}} if v is not None else {"delete": {"key": k}} for k, v in failure],
        )
        assert body["succeeded"] is succeeded
        assert body["revision"] == model.write(list(ops))
    else:
        _, revision = cmd
        if revision <= log.store.compact_revision or revision > log.store.current_revision:
            return
        log.store.compact(revision)


def check(log: Log, model: Model) -> None:
    store = log.store
    assert store.current_revision == model.revision
    compact = store.compact_revision
    for rev, state in model.states.items():
        if rev < compact:
            with raises_kv(400, "compacted"):
                store.range("", revision=rev)
            continue
        for key in KEYS:
            assert store.get(key, rev) == state.get(key)
        for prefix in PREFIXES:
            expected = [state[k] for k in sorted(state) if k.startswith(prefix)]
            assert store.range(prefix, revision=rev) == (expected, False)
            if expected:
                assert store.range(prefix, limit=1, revision=rev) == (expected[:1], len(expected) > 1)
    # Replaying the events from the compaction point rebuilds every later state.
    start = max(compact, 1)
    state = dict(model.states[start - 1]) if start > 1 else {}
    events = store.events_since(start)
    for i, (rev, event) in enumerate(events):
        key = event["kv"]["key"]
        assert event["prev_kv"] == model.states[rev - 1].get(key)
        if event["type"] == "put":
            state[key] = event["kv"]
        else:
            assert event["kv"] == kv(key, "", 0, rev, 0)
            del state[key]
        if i + 1 == len(events) or events[i + 1][0] != rev:  # the last event of revision rev
            assert state == model.states[rev]
    assert state == model.states[model.revision]


changes = st.lists(st.tuples(st.sampled_from(KEYS), st.one_of(st.none(), st.sampled_from(["x", "y"]))), max_size=3, unique_by=lambda c: c[0])
commands = st.one_of(
    st.tuples(st.just("put"), st.sampled_from(KEYS), st.sampled_from(["1", "2", "3"])),
    st.tuples(st.just("delete"), st.sampled_from(KEYS + ["b/", "a"]), st.booleans()),
    st.tuples(st.just("txn"), st.sampled_from(KEYS), st.integers(0, 3), changes, changes),
    st.tuples(st.just("compact"), st.integers(1, 40)),
)


def check_version_lists(log: Log, model: Model) -> None:
    """White box: each key's version list holds exactly what a read at or after the
    compaction point can see, so compaction keeps memory bounded: the key's last
    version at that point (unless it was deleted then), then every later version, a
    deletion being a tombstone."""
    mvcc = log.store._mvcc
    start = max(mvcc.compact_revision, 1)
    expected: dict[str, list[dict]] = {}
    for key, value in model.states[start].items():
        expected[key] = [value]
    for rev in range(start + 1, model.revision + 1):
        before, after = model.states[rev - 1], model.states[rev]
        for key in set(before) | set(after):
            if key not in after:
                expected.setdefault(key, []).append(kv(key, "", 0, rev, 0))
            elif before.get(key) != after[key]:
                expected.setdefault(key, []).append(after[key])
    from abcd.kv.mvcc import kv_dict

    assert {key: [kv_dict(v) for v in versions] for key, versions in mvcc._versions.items()} == expected
    assert list(mvcc._index) == sorted(expected)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(commands, max_size=30), st.sampled_from([None, 3]))
def test_store_matches_the_model(cmds, history_limit):
    log = Log(history_limit=history_limit)
    model = Model()
    for cmd in cmds:
        run(log, model, cmd)
    check(log, model)
    check_version_lists(log, model)
