"""Recorded runs for the dashboard (python -m abcd.sim --record): the file's format
(docs/dashboard.md, "The recorded run format"), that it tells the simulator's own story,
a broken core's violation, the command line's errors, and --serve."""
import asyncio
import json
import shlex
import signal
import subprocess
import sys
import urllib.request

import pytest

from abcd.localcluster import free_port, http, wait_for
from abcd.sim.__main__ import main
from abcd.sim.broken import EXAMPLES
from abcd.raft.message_kinds import MESSAGE_KINDS
from abcd.sim.record import FORMAT, VERSION, member_state, record_figure_8, record_run, write_run
from abcd.sim.runner import run_seed

KINDS = {"start", "tick", "deliver", "disk", "unreachable", "propose", "read", "partition", "heal", "crash", "restart", "noop"}
MEMBER_FIELDS = {
    "id", "name", "address", "voter", "up", "last_heard", "role", "term", "voted_for", "leader",
    "commit_index", "applied_index", "last_log_index", "snapshot_index", "log_terms",
    "election_elapsed_ms", "election_timeout_ms", "heartbeat_ms", "lease_remaining_ms",
    "health", "progress", "faults", "supervised",
}  # fmt: skip


class Spy:
    """An observer that only keeps the cluster, to compare with what was recorded."""

    def attach(self, cluster):
        self.cluster = cluster

    def on_event(self, kind, args):
        pass

    def on_send(self, m, delays):
        pass

    def on_client(self, node_id, what, commands):
        pass


def states_after_each_step(run):
    """The player's view: every member's state after each step, carried forward."""
    current = {}
    for step in run["steps"]:
        for member in step["state"]:
            current[member["id"]] = member
        yield step, current


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """The README's run: 5 nodes, seed 42, the default 2,000 events with every fault,
    read back from its file as a browser would."""
    path = tmp_path_factory.mktemp("record") / "run.json"
    size = write_run(record_run(42, nodes=5, steps=2000), str(path))
    with open(path) as f:
        return json.load(f), size


def test_a_recorded_run_has_the_format(default_run):
    run, size = default_run
    assert (run["format"], run["version"], run["seed"], run["nodes"]) == (FORMAT, VERSION, 42, 5)
    assert run["broken"] is None and run["violation"] is None
    assert run["members"] == [{"id": i, "name": f"n{i}"} for i in range(1, 6)]
    steps = run["steps"]
    assert [s["step"] for s in steps] == list(range(2001))  # the start, then one step per event
    assert steps[0]["kind"] == "start" and [m["id"] for m in steps[0]["state"]] == [1, 2, 3, 4, 5]
    times = [s["time"] for s in steps]
    assert times == sorted(times) and times[-1] > 1.0  # virtual seconds
    assert {s["kind"] for s in steps} <= KINDS
    assert size < 10_000_000, f"{size} bytes is too much for a browser"
    messages = 0
    for step in steps:
        for member in step["state"]:
            assert set(member) == MEMBER_FIELDS
        for event in step["events"]:
            assert set(event) == {"time", "node", "event", "term", "role", "fields"}
            assert event["time"] == step["time"]
        for m in step["messages"]:
            messages += 1
            assert m["type"] in MESSAGE_KINDS and m["count"] == 1 and m["from"] != m["to"]
            assert m["time"] == step["time"] and m["entries"] >= 0
            assert ("dropped" in m) != ("arrives" in m)
            assert m.get("dropped", "loss") in ("loss", "partition")
            assert all(t > step["time"] for t in m.get("arrives", ()))
            if m["type"].endswith("Response") and m["type"] != "InstallSnapshotResponse":
                assert isinstance(m["success"], bool)
    assert messages > 500


def test_the_recorded_states_are_the_simulators(default_run):
    """Carried forward, the recorded states end as the simulator's own members do, and
    recording changes nothing: the same seed unrecorded runs the same events."""
    run, _ = default_run
    spy = Spy()
    observed = run_seed(42, nodes=5, steps=2000, observer=spy, check_liveness=False)
    plain = run_seed(42, nodes=5, steps=2000, check_liveness=False)
    assert (observed.virtual_ms, observed.acked_writes, observed.leaders_elected) == (
        plain.virtual_ms,
        plain.acked_writes,
        plain.leaders_elected,
    )
    *_, (last, final) = states_after_each_step(run)
    cluster = spy.cluster
    assert last["time"] == round(cluster.now / 1000, 6)
    for node in cluster.nodes.values():
        assert final[node.id] == member_state(node, cluster.options)
    assert sum(1 for s in run["steps"] if s["kind"] == "propose") > 20


def test_recorded_states_show_at_most_one_leader_per_term_and_the_faults(default_run):
    run, _ = default_run
    leaders = {}
    for step, members in states_after_each_step(run):
        for m in members.values():
            if m["role"] == "leader":
                assert m["up"] and leaders.setdefault(m["term"], m["id"]) == m["id"], f"step {step['step']}"
        for event in step["events"]:
            if event["event"] == "BecomeLeader":
                assert members[event["node"]]["role"] == "leader"
                assert members[event["node"]]["term"] == event["term"]
        if step["kind"] == "crash":
            crashed = members[step["node"]]
            assert (crashed["up"], crashed["role"], crashed["health"]) == (False, None, "down")
        if step["kind"] == "partition":
            (event,) = [e for e in step["events"] if e["event"] == "Partition"]
            groups = event["fields"]["groups"]
            assert sorted(groups[0] + groups[1]) == [1, 2, 3, 4, 5] and groups[0] and groups[1]
    assert len(leaders) >= 2
    kinds = {s["kind"] for s in run["steps"]}
    assert {"partition", "crash"} <= kinds


def test_a_broken_core_records_its_violation():
    run = record_run(90, nodes=5, steps=2000, broken="GrantEveryVote")
    violation = run["violation"]
    assert run["broken"] == "GrantEveryVote"
    assert violation["invariant"] == "Election Safety"
    assert len(violation["members"]) == 2
    assert "both leaders in term" in violation["message"]
    last = run["steps"][-1]
    assert (violation["step"], violation["time"]) == (last["step"], last["time"])
    assert len(run["steps"]) < 200  # it stops at the violation
    # The states at that step show it: two leaders of one term.
    *_, (_, members) = states_after_each_step(run)
    leaders = [m for m in members.values() if m["role"] == "leader"]
    assert sorted(m["id"] for m in leaders) == violation["members"]
    assert len({m["term"] for m in leaders}) == 1
    assert any(e["event"] == "BecomeLeader" and e["node"] in violation["members"] for e in last["events"])


def test_the_staged_figure_8_is_recorded_with_its_faults_and_violation():
    """§5.4.2 as a recording: the correct core stays safe through the scripted crashes
    and partitions, each a step of its own; CommitOldTerms loses a committed entry."""
    safe = record_figure_8()
    assert safe["violation"] is None and safe["scenario"] == "figure8"
    faults = [s for s in safe["steps"] if s["kind"] in ("partition", "heal", "crash", "restart")]
    assert [s["kind"] for s in faults].count("crash") == 3
    for step in faults:
        assert [e["event"] for e in step["events"]][0] == step["kind"].capitalize()
    broken = record_figure_8("CommitOldTerms")
    violation = broken["violation"]
    assert violation["invariant"] == "Leader Completeness" and violation["members"]
    assert violation["step"] == len(broken["steps"]) - 1


@pytest.mark.parametrize(
    "name, invariant",
    [
        ("GrantEveryVote", "Election Safety"),
        ("SkipPersistGate", "Durability Before Speech"),
        ("AcksSnapshotBeforeDurable", "Durability Before Speech"),
        ("ForgetsRestore", "Applied In Order"),
        ("InstallsOverItsCommittedLog", "State Machine Safety"),
    ],
)
def test_each_documented_broken_seed_breaks_early(name, invariant):
    flags = shlex.split(EXAMPLES[name])
    options = dict(zip(flags[::2], map(int, flags[1::2])))
    run = record_run(
        options["--seed"], nodes=options["--nodes"], broken=name, snapshots=options.get("--snapshot-every", True)
    )
    assert run["violation"] is not None, f"{name} {EXAMPLES[name]} no longer breaks"
    assert run["violation"]["invariant"] == invariant
    assert run["violation"]["members"]
    assert run["violation"]["step"] < 1000


def test_the_command_line_records_a_run(tmp_path, capsys):
    path = tmp_path / "run.json"
    assert main(["--nodes", "3", "--seed", "1", "--steps", "300", "--record", str(path)]) == 0
    assert "recorded seed 1: 301 steps" in capsys.readouterr().out
    with open(path) as f:
        run = json.load(f)
    assert len(run["steps"]) == 301 and run["nodes"] == 3


def test_the_command_line_reports_a_broken_cores_violation(tmp_path, capsys):
    path = tmp_path / "broken.json"
    assert main(["--nodes", "5", "--seed", "90", "--broken", "GrantEveryVote", "--record", str(path)]) == 0
    out = capsys.readouterr().out
    assert "violation at step" in out and "Election Safety" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--serve"], "--serve serves the run it records: give --record FILE too"),
        (["--record", "{tmp}/run.json", "--seeds", "3"], "--record records one run"),
        (["--broken", "NoSuchCore"], "invalid choice: 'NoSuchCore'"),
        (["--port", "9000"], "--port is the port of --serve"),
        (["--record", "{tmp}/run.json", "--serve", "--port", "70000"], "--port must be between 1 and 65535"),
        (["--record", "{tmp}/missing/run.json"], "missing does not exist"),
        (["--steps", "0"], "--steps must be at least 1"),
        (["--scenario", "figure8"], "--scenario is recorded: give --record FILE too"),
    ],
)
def test_bad_flags_fail_with_a_clear_message(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        main([a.format(tmp=tmp_path) for a in argv])
    assert exit.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run.json").exists()


def test_serve_answers_the_run_and_the_page(tmp_path):
    port = free_port()
    path = tmp_path / "run.json"
    command = [sys.executable, "-m", "abcd.sim", "--nodes", "3", "--seed", "1", "--steps", "200"]
    command += ["--record", str(path), "--serve", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        status, run = wait_for(lambda: http(port, "GET", "/run.json"), "the recorded run on /run.json", timeout=30)
        assert status == 200
        assert run["format"] == FORMAT and len(run["steps"]) == 201
        with open(path) as f:
            assert json.load(f) == run
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
            assert page.status == 200
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=20)
        assert process.returncode == 0, out
        assert f"http://127.0.0.1:{port}/?run=/run.json" in out
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_answers_the_dashboards_page_and_files(tmp_path):
    """With the page installed, `/` is its index.html and `/static/...` its files."""
    from aiohttp.test_utils import TestClient, TestServer

    from abcd.sim.serve import make_app

    static = tmp_path / "static"
    (static / "js").mkdir(parents=True)
    (static / "index.html").write_text("<title>abcd</title>")
    (static / "js" / "main.js").write_text("export {};")
    run = tmp_path / "run.json"
    run.write_text('{"format": "abcd-sim-run"}')

    async def fetch():
        async with TestClient(TestServer(make_app(str(run), str(static)))) as client:
            answers = {}
            for path in ("/", "/static/js/main.js", "/run.json", "/static/missing.js"):
                reply = await client.get(path)
                answers[path] = (reply.status, await reply.text(), reply.content_type)
            return answers

    answers = asyncio.run(fetch())
    assert answers["/"][:2] == (200, "<title>abcd</title>")
    assert answers["/static/js/main.js"][:2] == (200, "export {};")
    assert answers["/run.json"] == (200, '{"format": "abcd-sim-run"}', "application/json")
    assert answers["/static/missing.js"][0] == 404
