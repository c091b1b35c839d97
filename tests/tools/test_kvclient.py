"""The client command line against a fake cluster: output, --json, exit codes.

Most tests call abcd.cli.main in-process (a subprocess costs a second of imports);
test_every_command_as_a_subprocess runs tools/kvclient.py itself for every command.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from fake_cluster import free_port
from tools_helpers import REPO, LineReader, run_cli, tool_env


def kv(threaded, *args, stdin="", timeout="3"):
    return run_cli("--endpoints", threaded.cluster.nodes[0].endpoint, "--timeout", timeout, *args, stdin=stdin)


def ok(result) -> str:
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return result.stdout


def test_put_and_get_print_ok_and_the_bare_value(threaded):
    assert ok(kv(threaded, "put", "greeting", "hello world")) == "OK (revision 2)\n"
    assert ok(kv(threaded, "get", "greeting")) == "hello world\n"


def test_json_prints_the_api_answers(threaded):
    assert json.loads(ok(kv(threaded, "--json", "put", "a", "1"))) == {"revision": 2, "prev_kv": None}
    answer = json.loads(ok(kv(threaded, "--json", "get", "a")))
    assert answer["kv"]["value"] == "1" and answer["revision"] == 2


def test_get_of_a_missing_key_exits_1_with_a_message_and_no_output(threaded):
    result = kv(threaded, "get", "nope")
    assert result.returncode == 1 and result.stdout == "" and "key 'nope' not found" in result.stderr


def test_get_passes_serializable_and_revision(threaded):
    ok(kv(threaded, "put", "a", "1"))
    assert ok(kv(threaded, "get", "a", "--serializable", "--rev", "2")) == "1\n"
    last = threaded.cluster.nodes[0].frames[-1][0]
    assert (last["op"], last["serializable"], last["revision"]) == ("get", True, 2)


def test_put_with_a_lease(threaded):
    lease = json.loads(ok(kv(threaded, "--json", "lease", "grant", "30")))
    ok(kv(threaded, "put", "s", "x", "--lease", str(lease["id"])))
    assert threaded.cluster.store.kvs["s"]["lease"] == lease["id"]


def test_del_reports_the_count_and_exits_1_when_nothing_was_deleted(threaded):
    for key in ("app/a", "app/b", "x"):
        ok(kv(threaded, "put", key, "v"))
    assert ok(kv(threaded, "del", "x")) == "deleted 1\n"
    assert ok(kv(threaded, "del", "app/", "--prefix")) == "deleted 2\n"
    missing = kv(threaded, "del", "x")
    assert missing.returncode == 1 and "key 'x' not found" in missing.stderr


def test_range_prints_an_aligned_listing_and_notes_more(threaded):
    for key, value in (("k/long-name", "1"), ("k/a", "2"), ("k/b", "3"), ("z", "4")):
        ok(kv(threaded, "put", key, value))
    assert ok(kv(threaded, "range", "k/")) == "k/a          2\nk/b          3\nk/long-name  1\n"
    limited = kv(threaded, "range", "k/", "--limit", "1")
    assert limited.stdout == "k/a  2\n" and "more keys follow" in limited.stderr
    answer = json.loads(ok(kv(threaded, "--json", "range", "k/", "--limit", "2")))
    assert [x["key"] for x in answer["kvs"]] == ["k/a", "k/b"] and answer["more"] is True
    assert ok(kv(threaded, "range", "nothing/")) == ""


def test_cas_swaps_only_on_the_expected_value(threaded):
    ok(kv(threaded, "put", "c", "old"))
    assert ok(kv(threaded, "cas", "c", "old", "new")) == "OK (revision 3)\n"
    refused = kv(threaded, "cas", "c", "old", "newer")
    assert refused.returncode == 1 and "compare failed" in refused.stderr
    assert threaded.cluster.store.kvs["c"]["value"] == "new"
    as_json = kv(threaded, "--json", "cas", "c", "old", "newer")
    assert as_json.returncode == 1 and json.loads(as_json.stdout)["succeeded"] is False


def test_txn_reads_its_body_on_stdin(threaded):
    ok(kv(threaded, "put", "t", "1"))
    body = {"compare": [{"key": "t", "target": "version", "op": "==", "value": 1}],
            "success": [{"put": {"key": "t", "value": "2"}}, {"get": {"key": "t"}}],
            "failure": [{"get": {"key": "t"}}]}
    first = kv(threaded, "txn", stdin=json.dumps(body))
    assert ok(first).splitlines()[0] == "SUCCEEDED" and len(first.stdout.splitlines()) == 3
    second = kv(threaded, "--json", "txn", stdin=json.dumps(body))  # version is 2 now
    assert second.returncode == 1 and json.loads(second.stdout)["succeeded"] is False


@pytest.mark.parametrize("stdin, message", [
    ("", "reads a JSON body on stdin"),
    ("{not json", "not valid JSON"),
    ("[1]", "must hold a JSON object"),
    ('{"compare": [], "sucess": []}', "unknown field(s) sucess"),
    ('{"compare": {}}', "compare must be a list"),
])
def test_a_bad_txn_body_is_a_usage_error(threaded, stdin, message):
    result = kv(threaded, "txn", stdin=stdin)
    assert result.returncode == 2 and message in result.stderr


def test_leases(threaded):
    assert ok(kv(threaded, "lease", "grant", "10")) == "lease 1 granted with TTL 10s\n"
    assert ok(kv(threaded, "lease", "keepalive", "1")) == "lease 1 kept alive, TTL 10s\n"
    assert ok(kv(threaded, "lease", "revoke", "1")) == "lease 1 revoked\n"
    gone = kv(threaded, "lease", "revoke", "1")
    assert gone.returncode == 1 and "lease 1 not found" in gone.stderr


def test_status_prints_an_aligned_table(threaded):
    lines = ok(kv(threaded, "status")).splitlines()
    assert lines[0] == "id              1"
    assert "role            leader" in lines and "commit_index    42" in lines
    assert lines[-1].startswith("members         1@127.0.0.1:") and lines[-1].endswith("*")
    assert json.loads(ok(kv(threaded, "--json", "status")))["term"] == 3


def test_members_list_add_promote_remove_and_leader_transfer(threaded):
    port = threaded.cluster.nodes[0].port
    table = ok(kv(threaded, "members")).splitlines()
    assert table == ["ID  NAME" + " " * (len(f"node-{port}") - 2) + "ADDRESS" + " " * (len(f"127.0.0.1:{port}") - 5)
                     + "ROLE", f"1   node-{port}  127.0.0.1:{port}  leader"]
    learner = "as a learner (the leader promotes it to voter once its log has caught up)\n"
    assert ok(kv(threaded, "members", "add", "127.0.0.1:9999", "--learner")) == "member 2 added: 127.0.0.1:9999 " + learner
    assert ok(kv(threaded, "members")).splitlines()[2].split() == ["2", "node-9999", "127.0.0.1:9999", "learner"]
    assert ok(kv(threaded, "members", "promote", "2")) == "member 2 promoted to voter\n"
    assert ok(kv(threaded, "leader", "transfer", "2")) == "leader is now 2\n"
    assert ok(kv(threaded, "members")).splitlines()[1].split()[-1] == "voter"
    assert ok(kv(threaded, "members", "remove", "1")) == "member 1 removed\n"
    assert json.loads(ok(kv(threaded, "--json", "members")))["members"][0]["id"] == 2
    missing = kv(threaded, "members", "remove", "7")
    assert missing.returncode == 1 and "member 7 not found" in missing.stderr
    # Without a flag: a learner, as the API's default; --voter asks for a voter.
    assert ok(kv(threaded, "members", "add", "127.0.0.1:9998")) == "member 3 added: 127.0.0.1:9998 " + learner
    assert ok(kv(threaded, "members", "add", "127.0.0.1:9997", "--voter")) == "member 4 added: 127.0.0.1:9997 as a voter\n"
    roles = {m["id"]: m["voter"] for m in json.loads(ok(kv(threaded, "--json", "members")))["members"]}
    assert (roles[3], roles[4]) == (False, True)
    both = kv(threaded, "members", "add", "127.0.0.1:9996", "--voter", "--learner")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


def test_watch_prints_events_as_they_happen(threaded):
    ok(kv(threaded, "put", "w", "first"))
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tools" / "kvclient.py"), "--endpoints", threaded.cluster.nodes[0].endpoint,
         "watch", "w", "--rev", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=tool_env(), cwd=REPO.parent)
    try:
        lines = LineReader(proc.stdout)
        assert lines.next(10) == "PUT    w = first  (revision 2)"
        ok(kv(threaded, "del", "w"))
        assert lines.next(10) == "DELETE w  (revision 3)"
    finally:
        proc.kill()
        proc.wait(10)


def test_a_command_the_cluster_does_not_implement_says_not_supported_yet(threaded):
    threaded.cluster.nodes[0].behaviour.leases = False
    result = kv(threaded, "lease", "grant", "10")
    assert result.returncode == 2 and "lease: not supported yet by this cluster" in result.stderr


def test_watch_on_a_cluster_without_watch_says_not_supported_yet(threaded):
    threaded.cluster.nodes[0].behaviour.watch = False
    result = kv(threaded, "watch", "w")
    assert result.returncode == 2 and "not supported yet" in result.stderr


@pytest.mark.parametrize("args, message", [
    ((), "required: COMMAND"),
    (("frobnicate",), "invalid choice: 'frobnicate'"),
    (("get",), "required: key"),
    (("put", "k"), "required: value"),
    (("lease", "grant", "0"), "must be at least 1"),
    (("range", "p", "--limit", "x"), "'x' is not a whole number"),
    (("members", "add", "nohost"), "is not HOST:PORT"),
    (("--timeout", "-1", "status"), "must be more than 0"),
    (("--endpoints", "bad", "status"), "endpoint 'bad' is not HOST:PORT"),
])
def test_usage_errors_exit_2_with_a_message(args, message):
    result = run_cli(*args)
    assert result.returncode == 2 and message in result.stderr, result.stderr


def test_a_request_the_cluster_calls_bad_is_a_usage_error(threaded):
    result = kv(threaded, "put", "", "x")
    assert result.returncode == 2 and "bad request: key must be a non-empty string" in result.stderr


def test_an_unreachable_cluster_exits_3_and_says_the_write_was_not_applied():
    down = f"127.0.0.1:{free_port()}"
    result = run_cli("--endpoints", down, "--timeout", "0.3", "put", "a", "1")
    assert result.returncode == 3 and "the write was not applied" in result.stderr
    read = run_cli("--endpoints", down, "--timeout", "0.3", "get", "a")
    assert read.returncode == 3 and "cluster unavailable" in read.stderr and "applied" not in read.stderr


def test_a_lost_answer_exits_3_and_says_the_outcome_is_unknown(threaded):
    threaded.cluster.nodes[0].behaviour.drop_after_apply = 10_000
    result = kv(threaded, "put", "a", "1", timeout="0.3")
    assert result.returncode == 3 and "outcome unknown" in result.stderr


def test_a_slow_cluster_times_out_with_exit_3(threaded):
    threaded.cluster.nodes[0].behaviour.delay = 2.0
    result = kv(threaded, "put", "a", "1", timeout="0.3")
    assert result.returncode == 3 and "no answer" in result.stderr and "outcome unknown" in result.stderr


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_output_to_a_reader_that_stopped_reading_ends_quietly(threaded, json_flag):
    # As `abcdctl status | head -0`: the pipe is closed before the client writes.
    env = dict(tool_env(), PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tools" / "kvclient.py"), "--endpoints", threaded.cluster.nodes[0].endpoint,
         *json_flag, "status"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    proc.stdout.close()
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0 and stderr == b"", stderr.decode()


def test_every_command_as_a_subprocess(threaded):
    """tools/kvclient.py itself, run from outside the checkout without installing, once
    per command; the commands touch different keys, so they run concurrently."""
    cluster = threaded.cluster

    def seed():
        for key, value in (("g", "gv"), ("d", "dv"), ("r/1", "a"), ("r/2", "b"), ("c", "old")):
            cluster.store.execute({"op": "put", "key": key, "value": value})
        cluster.store.leases.update({1: 10, 2: 5})
        cluster.store.next_lease = 3
        node = cluster.nodes[0]
        cluster.admin(node, "POST", "/v1/members", {"address": "127.0.0.1:9001", "learner": True})  # id 2
        cluster.admin(node, "POST", "/v1/members", {"address": "127.0.0.1:9002"})  # id 3
    threaded.call(seed)
    endpoint = cluster.nodes[0].endpoint
    txn = json.dumps({"compare": [{"key": "absent", "target": "value", "op": "==", "value": "x"}],
                      "success": [], "failure": [{"get": {"key": "g"}}]})
    cases = [  # (args, stdin, exit code, expected stdout: exact text, or a prefix ending in "…")
        (("put", "p", "pv"), None, 0, "OK (revision …"),
        (("get", "g"), None, 0, "gv\n"),
        (("--json", "get", "g"), None, 0, '{"kv":{"key":"g","value":"gv",…'),
        (("del", "d"), None, 0, "deleted 1\n"),
        (("range", "r/"), None, 0, "r/1  a\nr/2  b\n"),
        (("cas", "c", "old", "new"), None, 0, "OK (revision …"),
        (("txn",), txn, 1, "FAILED (compare false: the failure branch ran)\n…"),
        (("lease", "grant", "7"), None, 0, "lease 3 granted with TTL 7s\n"),
        (("lease", "keepalive", "1"), None, 0, "lease 1 kept alive, TTL 10s\n"),
        (("lease", "revoke", "2"), None, 0, "lease 2 revoked\n"),
        (("status",), None, 0, "id              1\n…"),
        (("members",), None, 0, "ID  NAME…"),
        (("members", "add", "127.0.0.1:9003", "--voter"), None, 0, "member 4 added: 127.0.0.1:9003 as a voter\n"),
        (("members", "promote", "2"), None, 0, "member 2 promoted to voter\n"),
        (("members", "remove", "3"), None, 0, "member 3 removed\n"),
        (("leader", "transfer", "2"), None, 0, "leader is now 2\n"),
        (("get", "missing"), None, 1, ""),
        (("get",), None, 2, ""),
    ]
    env = tool_env()
    procs = []
    for args, stdin, _code, _out in cases:
        proc = subprocess.Popen([sys.executable, str(REPO / "tools" / "kvclient.py"), "--endpoints", endpoint, *args],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=REPO.parent, env=env)
        procs.append(proc)
    down = subprocess.Popen([sys.executable, str(REPO / "tools" / "kvclient.py"), "--endpoints",
                             f"127.0.0.1:{free_port()}", "--timeout", "0.3", "put", "a", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO.parent, env=env)
    for (args, stdin, code, expected), proc in zip(cases, procs):
        out, err = proc.communicate(stdin or "", timeout=60)
        assert proc.returncode == code, f"{args}: exit {proc.returncode}, stderr {err}"
        if expected.endswith("…"):
            assert out.startswith(expected[:-1]), f"{args}: {out!r}"
        else:
            assert out == expected, f"{args}: {out!r}"
    _out, err = down.communicate(timeout=60)
    assert down.returncode == 3 and "the write was not applied" in err
    assert cluster.store.kvs["c"]["value"] == "new" and "d" not in cluster.store.kvs
