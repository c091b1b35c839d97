"""The HTTP API and the session channel of one real node, in process (docs/api.md)."""
import aiohttp
import orjson

from abcd.node import gcwatch
from node_harness import run_with_node, wait_until


def test_put_get_range_delete_txn(tmp_path):
    async def body(n):
        status, put = await n.call("PUT", "/v1/kv/a", json={"value": "x"})
        assert status == 200 and put["prev_kv"] is None
        status, again = await n.call("PUT", "/v1/kv/a/b", json={"value": "y"})
        assert status == 200 and again["revision"] == put["revision"] + 1
        status, got = await n.call("GET", "/v1/kv/a")
        assert status == 200 and got["kv"]["value"] == "x" and got["kv"]["version"] == 1
        status, got = await n.call("GET", "/v1/kv/a/b?serializable=true")
        assert status == 200 and got["kv"]["value"] == "y"
        status, listing = await n.call("GET", "/v1/kv?prefix=a&limit=1")
        assert status == 200 and [kv["key"] for kv in listing["kvs"]] == ["a"] and listing["more"] is True
        status, txn = await n.call(
            "POST",
            "/v1/txn",
            json={
                "compare": [{"key": "a", "target": "value", "op": "==", "value": "x"}],
                "success": [{"put": {"key": "a", "value": "z"}}],
                "failure": [],
            },
        )
        assert status == 200 and txn["succeeded"] is True
        status, deleted = await n.call("DELETE", "/v1/kv/a?prefix=true")
        assert status == 200 and deleted["deleted"] == 2
        status, missing = await n.call("GET", "/v1/kv/a")
        assert status == 404 and missing["code"] == "not_found"

    run_with_node(tmp_path, body)


def test_bad_input_gets_the_contracts_errors_and_the_node_keeps_serving(tmp_path):
    async def body(n):
        cases = [
            (("PUT", "/v1/kv/a"), {"data": b'{"value": '}, 400, "bad_request", "not valid JSON"),
            (("PUT", "/v1/kv/a"), {"json": {"value": 5}}, 400, "bad_request", "value must be a string"),
            (("PUT", "/v1/kv/a"), {"json": ["x"]}, 400, "bad_request", "JSON object"),
            (("PUT", "/v1/kv/a"), {"json": {"value": "x", "vaule": 1}}, 400, "bad_request", "unknown field"),
            (("PUT", "/v1/kv/a"), {}, 400, "bad_request", "empty"),
            (("PUT", "/v1/kv/" + "k" * 2000), {"json": {"value": "x"}}, 413, "too_large", "key is 2000 bytes"),
            (("PUT", "/v1/kv/a"), {"json": {"value": "v" * (1024 * 1024 + 1)}}, 413, "too_large", "value is"),
            (("PUT", "/v1/kv/"), {"json": {"value": "x"}}, 400, "bad_request", "non-empty"),
            (("PUT", "/v1/kv/a"), {"data": b"x" * (9 * 1024 * 1024)}, 413, "too_large", "too large"),
            (("GET", "/v1/kv/a?revision=abc"), {}, 400, "bad_request", "revision must be an integer"),
            (("GET", "/v1/kv/a?serializable=maybe"), {}, 400, "bad_request", "true or false"),
            (("GET", "/v1/kv?prefix=a&bogus=1"), {}, 400, "bad_request", "unknown query parameter 'bogus'"),
            (("POST", "/v1/txn"), {"json": {"compare": "no"}}, 400, "bad_request", "compare must be an array"),
            (("GET", "/v1/nothing"), {}, 404, "not_found", "no such endpoint"),
            (("PATCH", "/v1/status"), {}, 405, "method_not_allowed", ""),
            (("POST", "/v1/members"), {"json": {"address": "nope"}}, 400, "bad_request", "address"),
            (("DELETE", "/v1/members/xyz"), {}, 400, "bad_request", "integer"),
            (("POST", "/v1/leader/transfer"), {"json": {"to": "2"}}, 400, "bad_request", "to"),
            (("POST", "/v1/admin/faults"), {"json": {}}, 403, "forbidden", "--enable-faults"),
            (("GET", "/v1/watch?key=a&prefix=b"), {}, 400, "bad_request", "exactly one"),
            (("GET", "/v1/watch?key=a&start_revision=x"), {}, 400, "bad_request", "start_revision"),
            (("POST", "/v1/lease"), {"json": {"ttl": 0}}, 400, "bad_request", "ttl must be at least 1"),
            (("POST", "/v1/lease/abc/keepalive"), {}, 400, "bad_request", "lease id"),
            (("DELETE", "/v1/lease/77"), {}, 404, "lease_not_found", "77"),
        ]
        for (method, path), kwargs, status, code, text in cases:
            got_status, got = await n.call(method, path, **kwargs)
            where = f"{method} {path[:40]}"
            assert got_status == status, (where, got_status, got)
            assert got["code"] == code, (where, got)
            assert text in got["error"], (where, got)
        status, put = await n.call("PUT", "/v1/kv/still", json={"value": "alive"})
        assert status == 200

    run_with_node(tmp_path, body)


def test_unknown_query_parameters_are_refused_on_every_endpoint(tmp_path):
    async def body(n):
        await n.call("PUT", "/v1/kv/k1", json={"value": "v1"})
        await n.call("PUT", "/v1/kv/k1", json={"value": "v2"})
        # Misspelled: answered as if absent, these would read the latest value and
        # delete only the key "zz".
        cases = [
            ("GET", "/v1/kv/k1?revison=2", "'revison'; GET /v1/kv/{key} takes revision, serializable"),
            ("DELETE", "/v1/kv/zz?prefx=true", "'prefx'; DELETE /v1/kv/{key} takes prefix"),
            ("PUT", "/v1/kv/k1?lease=1", "'lease'; PUT /v1/kv/{key} takes no query parameters"),
            ("GET", "/v1/kv?prefix=k&limt=1", "'limt'; GET /v1/kv takes limit, prefix, revision, serializable"),
            ("POST", "/v1/txn?x=1", "'x'"),
            ("POST", "/v1/lease?ttl=5", "'ttl'"),
            ("POST", "/v1/lease/1/keepalive?x=1", "'x'"),
            ("DELETE", "/v1/lease/1?x=1", "'x'"),
            ("GET", "/v1/members?verbose=1", "'verbose'"),
            ("POST", "/v1/members?learner=false", "'learner'"),
            ("DELETE", "/v1/members/2?force=1", "'force'"),
            ("POST", "/v1/members/2/promote?x=1", "'x'"),
            ("POST", "/v1/leader/transfer?to=2", "'to'"),
            ("GET", "/v1/status?x=1", "'x'"),
            ("GET", "/healthz?x=1", "'x'"),
            ("GET", "/metrics?x=1", "'x'"),
            ("GET", "/v1/watch?key=k1&start_rev=1", "'start_rev'; GET /v1/watch takes key, prefix, start_revision"),
            ("GET", "/v1/session?forward=1", "'forward'"),
            ("GET", "/v1/events?x=1", "'x'"),
            ("GET", "/v1/raft?x=1", "'x'"),
            ("POST", "/v1/admin/faults?x=1", "'x'"),
        ]
        for method, path, text in cases:
            status, answer = await n.call(method, path, json={"value": "x"} if method == "PUT" else None)
            assert (status, answer["code"]) == (400, "bad_request"), (method, path, status, answer)
            assert f"unknown query parameter {text}" in answer["error"], (path, answer)
        status, got = await n.call("GET", "/v1/kv/k1")
        assert got["kv"]["value"] == "v2"  # nothing was deleted or changed
        # The parameters each call takes are still accepted.
        status, old = await n.call("GET", "/v1/kv/k1?revision=2&serializable=true")
        assert status == 200 and old["kv"]["value"] == "v1"
        status, deleted = await n.call("DELETE", "/v1/kv/k?prefix=true")
        assert status == 200 and deleted["deleted"] == 1

    run_with_node(tmp_path, body)


def test_a_websocket_endpoint_asked_with_plain_http_says_it_needs_a_websocket(tmp_path):
    async def body(n):
        for path in ("/v1/watch?key=a", "/v1/session", "/v1/events", "/v1/raft"):
            status, answer = await n.call("GET", path)
            assert (status, answer["code"]) == (400, "bad_request"), (path, answer)
            assert "websocket" in answer["error"] and path.split("?")[0] in answer["error"], (path, answer)
        # Bad parameters of a watch are still named first (they are refused before any upgrade).
        status, answer = await n.call("GET", "/v1/watch")
        assert status == 400 and "exactly one" in answer["error"]

    run_with_node(tmp_path, body)


def test_a_retried_write_with_the_same_request_id_applies_once(tmp_path):
    async def body(n):
        headers = {"X-Request-Id": "client-7:1"}
        first = await n.call("PUT", "/v1/kv/k", json={"value": "1"}, headers=headers)
        second = await n.call("PUT", "/v1/kv/k", json={"value": "1"}, headers=headers)
        assert first == second and first[0] == 200
        status, got = await n.call("GET", "/v1/kv/k")
        assert got["kv"]["version"] == 1
        status, bad = await n.call("PUT", "/v1/kv/k", json={"value": "1"}, headers={"X-Request-Id": "nocolon"})
        assert status == 400 and "request_id" in bad["error"]

    run_with_node(tmp_path, body)


def test_session_channel_answers_by_id_and_survives_bad_requests(tmp_path):
    async def body(n):
        async with n.http.ws_connect(n.base.replace("http", "ws") + "/v1/session") as ws:
            await ws.send_str(
                orjson.dumps(
                    [
                        {"id": 1, "op": "put", "key": "s", "value": "1"},
                        {"id": 2, "op": "put", "key": "s", "value": 2},
                        {"id": "three", "op": "nonsense"},
                        {"id": 4, "op": "put", "key": "t", "value": "2", "request_id": "c:1"},
                    ]
                ).decode()
            )
            answers = {}
            while len(answers) < 4:
                frame = await ws.receive_json(timeout=5)
                for answer in frame:
                    answers[answer["id"]] = answer
            assert answers[1]["status"] == 200
            assert answers[2]["status"] == 400 and answers[2]["body"]["code"] == "bad_request"
            assert answers["three"]["status"] == 400 and "unknown op" in answers["three"]["body"]["error"]
            assert answers[4]["status"] == 200 and answers[4]["body"]["revision"] == answers[1]["body"]["revision"] + 1
            # Still open after the bad requests: reads work (linearizable by default).
            await ws.send_str('[{"id": 5, "op": "get", "key": "s"}, {"id": 6, "op": "range", "prefix": ""}]')
            got = {}
            while len(got) < 2:
                for answer in await ws.receive_json(timeout=5):
                    got[answer["id"]] = answer
            assert got[5]["body"]["kv"]["value"] == "1"
            assert [kv["key"] for kv in got[6]["body"]["kvs"]] == ["s", "t"]
            # A frame that is not a JSON list of objects closes the session with a reason.
            await ws.send_str('{"id": 7, "op": "get", "key": "s"}')
            closed = await ws.receive(timeout=5)
            assert closed.type == aiohttp.WSMsgType.CLOSE
            assert closed.data == 1003 and "JSON list" in closed.extra
        async with n.http.ws_connect(n.base.replace("http", "ws") + "/v1/session") as ws:
            await ws.send_str("[{]")
            closed = await ws.receive(timeout=5)
            assert closed.data == 1007 and "not valid JSON" in closed.extra

    run_with_node(tmp_path, body)



def test_a_big_session_frame_is_proposed_in_slices_in_frame_order(tmp_path):
    from abcd.api.session import SLICE

    count = 2 * SLICE + 22

    async def body(n):
        proposals_before = n.node.requests.proposals
        async with n.http.ws_connect(n.base.replace("http", "ws") + "/v1/session") as ws:
            frame = [{"id": i, "op": "put", "key": f"k{i}", "value": str(i)} for i in range(count)]
            await ws.send_str(orjson.dumps(frame).decode())
            answers = {}
            while len(answers) < count:
                for answer in await ws.receive_json(timeout=5):
                    answers[answer["id"]] = answer
        assert all(a["status"] == 200 for a in answers.values())
        revisions = [answers[i]["body"]["revision"] for i in range(count)]
        assert revisions == sorted(revisions) and len(set(revisions)) == count  # applied in frame order
        # One proposal per slice (each slice's step runs before the next is handed over).
        assert n.node.requests.proposals - proposals_before == 3

    run_with_node(tmp_path, body)

def test_the_answers_one_step_completes_leave_in_one_frame(tmp_path):
    async def body(n):
        async with n.http.ws_connect(n.base.replace("http", "ws") + "/v1/session") as ws:
            # One slice, so one proposal; on a single node one step commits and applies it.
            frame = [{"id": i, "op": "put", "key": f"one{i}", "value": str(i)} for i in range(10)]
            await ws.send_str(orjson.dumps(frame).decode())
            answers = await ws.receive_json(timeout=5)
        assert sorted(answer["id"] for answer in answers) == list(range(10))
        assert all(answer["status"] == 200 for answer in answers)

    run_with_node(tmp_path, body)


def test_status_health_metrics_members(tmp_path):
    gcwatch.install()  # as `python -m abcd` does

    async def body(n):
        status, s = await n.call("GET", "/v1/status")
        assert status == 200
        for field in ("id", "name", "role", "term", "leader", "commit_index", "applied_index",
                      "last_log_index", "snapshot_index", "members", "version"):
            assert field in s
        assert s["role"] == "leader" and s["leader"] == s["id"] == 1
        status, health = await n.call("GET", "/healthz")
        assert status == 200
        status, members = await n.call("GET", "/v1/members")
        assert members["members"] == [
            {"id": 1, "name": s["name"], "address": n.base[len("http://"):], "voter": True, "leader": True}
        ]
        async with n.http.get(n.base + "/metrics") as reply:
            text = await reply.text()
        assert reply.status == 200
        assert f'abcd_term{{node="{s["name"]}"}} {float(s["term"])}' in text
        assert "abcd_wal_fsyncs_total" in text and "abcd_proposals_total" in text
        tasks = next(line for line in text.splitlines() if line.startswith("abcd_asyncio_tasks{"))
        assert 0 < float(tasks.split()[-1]) < 1000, tasks  # the loop's tasks, this request's among them
        for generation in range(3):
            assert f'abcd_gc_collections_total{{generation="{generation}",node="{s["name"]}"}}' in text
            assert f'abcd_gc_pause_seconds_total{{generation="{generation}",node="{s["name"]}"}}' in text
        assert "abcd_gc_longest_pause_seconds" in text

    run_with_node(tmp_path, body)


def test_members_add_a_learner_remove_it_and_events_stream_the_config_change(tmp_path):
    async def body(n):
        async with n.http.ws_connect(n.base.replace("http", "ws") + "/v1/events") as events:
            first = await events.receive_json(timeout=5)
            assert first[0]["type"] == "status" and first[0]["role"] == "leader"
            # A learner that never starts: a one-voter cluster keeps committing regardless.
            status, added = await n.call("POST", "/v1/members", json={"address": "127.0.0.1:9", "learner": True})
            assert status == 200, added
            assert added["member"]["id"] == 2 and added["member"]["voter"] is False
            assert added["cluster_id"] == n.node.cluster_id
            # Adding the same address again is answered with the same member (a retried join).
            status, again = await n.call("POST", "/v1/members", json={"address": "127.0.0.1:9"})
            assert status == 200 and again["member"]["id"] == 2
            # A learner that never answered is never promoted (that would cost the quorum).
            core = n.node.core
            ticks = core.tick_count
            await wait_until(lambda: core.tick_count >= ticks + 5, "five leader ticks")
            assert core.config.voters == {1} and core.config.learners == {2}
            # Nor can it be promoted by hand.
            status, refused = await n.call("POST", "/v1/members/2/promote")
            assert (status, refused["code"]) == (409, "learner_not_ready"), refused
            assert "never answered" in refused["error"]
            assert core.config.voters == {1}
            seen = []
            while not any(e.get("event") == "ConfigChange" for e in seen):
                seen.extend(await events.receive_json(timeout=5))
            change = next(e for e in seen if e.get("event") == "ConfigChange")
            assert change["fields"]["learners"] == [2]
            status, removed = await n.call("DELETE", "/v1/members/2")
            assert status == 200 and [m["id"] for m in removed["members"]] == [1]
            status, gone = await n.call("DELETE", "/v1/members/2")
            assert status == 404 and gone["code"] == "member_not_found"
            status, put = await n.call("PUT", "/v1/kv/after", json={"value": "x"})
            assert status == 200

    run_with_node(tmp_path, body)


def test_concurrent_member_additions_are_serialized_not_refused(tmp_path):
    async def body(n):
        import asyncio

        adds = [n.call("POST", "/v1/members", json={"address": f"127.0.0.1:{port}"}) for port in (9, 10, 11)]
        results = await asyncio.gather(*adds)
        assert [status for status, _ in results] == [200, 200, 200], results
        assert sorted(answer["member"]["id"] for _, answer in results) == [2, 3, 4]
        assert n.node.core.config.learners == {2, 3, 4}

    run_with_node(tmp_path, body)


def test_faults_endpoint_with_enable_faults(tmp_path):
    async def body(n):
        async with n.http.ws_connect(n.base.replace("http", "ws") + "/v1/events") as events:
            await events.receive_json(timeout=5)  # the status snapshot
            status, faults = await n.call("POST", "/v1/admin/faults", json={"partition": [2], "drop_rate": 0.5})
            assert status == 200 and faults["partition"] == [2] and faults["drop_rate"] == 0.5
            # The node's log records reach the event stream too.
            seen = []
            while not any(e["type"] == "log" and e["event"] == "Faults" for e in seen):
                seen.extend(await events.receive_json(timeout=5))
            record = next(e for e in seen if e["type"] == "log")
            assert record["level"] == "WARNING" and "partition" in record["message"]
        status, bad = await n.call("POST", "/v1/admin/faults", json={"drop_rate": 2})
        assert status == 400 and "drop_rate" in bad["error"]
        status, healed = await n.call("DELETE", "/v1/admin/faults")
        assert status == 200 and healed["partition"] == []

    run_with_node(tmp_path, body, enable_faults=True)


def test_a_stopping_node_answers_503(tmp_path):
    async def body(n):
        await n.node.stop()
        status, answer = await n.call("PUT", "/v1/kv/a", json={"value": "x"})
        assert status == 503 and answer["code"] == "shutting_down"

    run_with_node(tmp_path, body)


def test_a_failed_fsync_stops_the_node_and_answers_what_waits(tmp_path):
    async def body(n):
        import asyncio

        def broken_sync():
            raise OSError(5, "Input/output error")

        n.node.wal.sync = broken_sync
        status, answer = await n.call("PUT", "/v1/kv/a", json={"value": "x"})
        # The write is in the WAL's file, just not known durable: a restart may find it,
        # so "not applied" (503) would be a lie.
        assert status == 504 and "outcome is unknown" in answer["error"]
        await asyncio.wait_for(n.node.stopped.wait(), 5)
        assert isinstance(n.node.failed, OSError)
        status, health = await n.call("GET", "/healthz")
        assert status == 503

    run_with_node(tmp_path, body)


def test_keys_are_percent_decoded_from_the_path(tmp_path):
    async def body(n):
        from urllib.parse import quote

        import yarl

        key = "dir/sub key?ü%"
        url = yarl.URL(n.base + "/v1/kv/" + quote(key, safe=""), encoded=True)
        async with n.http.put(url, json={"value": "v"}) as reply:
            assert reply.status == 200
        status, listing = await n.call("GET", "/v1/kv?prefix=dir/")
        assert [kv["key"] for kv in listing["kvs"]] == [key]
        async with n.http.get(url) as reply:
            assert reply.status == 200 and (await reply.json())["kv"]["key"] == key

    run_with_node(tmp_path, body)


def test_past_the_in_flight_limit_requests_are_refused_with_503(tmp_path, monkeypatch):
    from abcd.node import router as router_module

    async def body(n):
        monkeypatch.setattr(router_module, "MAX_PENDING_REQUESTS", 0)
        status, answer = await n.call("PUT", "/v1/kv/a", json={"value": "x"})
        assert status == 503 and answer["code"] == "overloaded"
        monkeypatch.setattr(router_module, "MAX_PENDING_REQUESTS", 100_000)
        assert (await n.call("PUT", "/v1/kv/a", json={"value": "x"}))[0] == 200

    run_with_node(tmp_path, body)


def test_the_in_flight_limit_counts_the_requests_of_one_frame(tmp_path, monkeypatch):
    from abcd.node import router as router_module

    async def body(n):
        # Answered requests leave the count at the next tick: wait for none, so that the
        # room left is exactly two.
        await wait_until(lambda: n.node.requests.tracked == 0, "no request tracked")
        monkeypatch.setattr(router_module, "MAX_PENDING_REQUESTS", 2)
        async with n.http.ws_connect(n.base.replace("http", "ws") + "/v1/session") as ws:
            frame = [{"id": i, "op": "put", "key": f"k{i}", "value": "v"} for i in range(3)]
            await ws.send_str(orjson.dumps(frame).decode())
            answers = {}
            while len(answers) < 3:
                for answer in await ws.receive_json(timeout=5):
                    answers[answer["id"]] = answer
        assert [answers[i]["status"] for i in range(3)] == [200, 200, 503]
        assert answers[2]["body"]["code"] == "overloaded"

    run_with_node(tmp_path, body)
