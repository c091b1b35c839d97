"""GET /v1/watch: history from a start revision joined to live changes, filtered."""
import aiohttp

from abcd.api import watch
from node_harness import run_with_node


async def frames(ws, count):
    out = []
    while len(out) < count:
        message = await ws.receive(timeout=5)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        out.append(message.json())
    return out


def test_watch_a_key_from_now(tmp_path):
    async def body(n):
        async with n.http.ws_connect(n.base.replace("http", "ws") + "/v1/watch?key=a") as ws:
            await n.call("PUT", "/v1/kv/b", json={"value": "other"})
            _, first = await n.call("PUT", "/v1/kv/a", json={"value": "1"})
            _, second = await n.call("PUT", "/v1/kv/a", json={"value": "2"})
            got = await frames(ws, 2)
        assert [f["revision"] for f in got] == [first["revision"], second["revision"]]
        assert [f["events"][0]["kv"]["value"] for f in got] == ["1", "2"]
        assert got[1]["events"][0]["prev_kv"]["value"] == "1"
        assert all(e["type"] == "put" and e["kv"]["key"] == "a" for f in got for e in f["events"])

    run_with_node(tmp_path, body)


def test_history_then_live_without_gap_or_duplicate(tmp_path):
    async def body(n):
        revisions = []
        for value in ("1", "2", "3"):
            _, put = await n.call("PUT", "/v1/kv/p/x", json={"value": value})
            revisions.append(put["revision"])
        url = n.base.replace("http", "ws") + f"/v1/watch?prefix=p/&start_revision={revisions[1]}"
        async with n.http.ws_connect(url) as ws:
            _, deleted = await n.call("DELETE", "/v1/kv/p/?prefix=true")
            got = await frames(ws, 3)
        assert [f["revision"] for f in got] == [revisions[1], revisions[2], deleted["revision"]]
        delete = got[2]["events"][0]
        assert delete["type"] == "delete" and delete["prev_kv"]["value"] == "3"

    run_with_node(tmp_path, body)


def test_a_compacted_start_revision_is_refused_before_the_upgrade(tmp_path):
    async def body(n):
        for value in ("1", "2", "3"):
            _, put = await n.call("PUT", "/v1/kv/c", json={"value": value})
        n.node.store.compact(put["revision"])
        status, error = await n.call("GET", "/v1/watch?key=c&start_revision=1")
        assert status == 400 and error["code"] == "compacted"

    run_with_node(tmp_path, body)


def test_watchers_are_closed_going_away_when_the_node_stops(tmp_path):
    async def body(n):
        async with n.http.ws_connect(n.base.replace("http", "ws") + "/v1/watch?prefix=") as ws:
            await n.node.stop()
            await n.server.stop()
            n.server = None
            message = await ws.receive(timeout=5)
            assert message.type == aiohttp.WSMsgType.CLOSE and message.data == 1001

    run_with_node(tmp_path, body)


def test_a_watcher_that_falls_behind_is_marked_with_the_revision_to_resume_from(monkeypatch):
    monkeypatch.setattr(watch, "MAX_QUEUED", 2)
    watcher = watch.Watcher(None, "k")
    event = {"type": "put", "kv": {"key": "k1"}, "prev_kv": None}
    other = {"type": "put", "kv": {"key": "x"}, "prev_kv": None}
    watcher.on_commit(5, [event, other])
    watcher.on_commit(6, [other])  # not watched: takes no room
    watcher.on_commit(7, [event])
    watcher.on_commit(8, [event])
    watcher.on_commit(9, [event])
    assert [rev for rev, _ in watcher.queue] == [5, 7]
    assert watcher.queue[0][1] == [event]
    assert watcher.overflowed_at == 8


def store_with(*puts, history_limit=None):
    from abcd.kv import KVStore

    store = KVStore(history_limit=history_limit)
    for index, (key, value) in enumerate(puts, start=1):
        store.apply({"op": "put", "key": key, "value": value, "lease": 0}, index=index)
    return store


def test_after_a_snapshot_is_installed_a_watch_resumes_from_its_history_without_gap_or_duplicate():
    watcher = watch.Watcher("a", None)
    watcher.next_revision = 2  # started at revision 1
    watcher.on_commit(2, [{"type": "put", "kv": {"key": "a", "value": "1"}, "prev_kv": None}])
    watcher.queue.clear()  # sent
    # The leader's state: revisions 2..6 (the follower saw 2), two of them for "a".
    leader = store_with(("a", "1"), ("b", "x"), ("a", "2"), ("c", "y"), ("a", "3"))
    watcher.on_restore(leader)
    assert [(rev, [e["kv"]["value"] for e in events]) for rev, events in watcher.queue] == [(4, ["2"]), (6, ["3"])]
    assert watcher.next_revision == 7 and watcher.overflowed_at is None and watcher.wakeup.is_set()
    watcher.on_commit(7, [{"type": "put", "kv": {"key": "a", "value": "4"}, "prev_kv": None}])
    assert [rev for rev, _ in watcher.queue] == [4, 6, 7]


def test_a_watch_whose_next_revision_the_snapshot_compacted_is_closed_with_where_to_resume():
    watcher = watch.Watcher(None, "")
    watcher.next_revision = 3
    leader = store_with(*[("k", str(i)) for i in range(10)])
    leader.compact(8)
    watcher.on_restore(leader)
    assert watcher.overflowed_at == 3 and "resume with start_revision=3" in watcher.close_reason
    assert not watcher.queue


def test_a_watch_on_a_restore_that_is_not_ahead_of_it_is_closed():
    watcher = watch.Watcher(None, "")
    watcher.next_revision = 9  # it saw revision 8
    watcher.on_restore(store_with(("k", "1")))  # revision 2
    assert watcher.overflowed_at == 9 and "went back to revision 2" in watcher.close_reason
