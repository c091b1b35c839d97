"""A deterministic driver for scenario transcripts of the Raft core.

A transcript (testdata/*.txt) reads like a lab notebook: `#` comments, and commands
on lines starting with `> `, each followed by the lines it printed.  The harness
plays the commands against a small cluster of RaftCores wired by hand: messages
wait in one FIFO queue until a `deliver`, writes wait in a per-node queue until
they are persisted, and nothing happens unless a command says so.  Every effect
of every step prints one line (formatting.py), so a transcript shows the whole
story and a change in the core's behaviour shows up as a diff.

While playing, the harness checks what no transcript may ever show: two leaders
in one term, a new leader lacking an entry already applied somewhere, two
different entries applied at one index, and a message that promises durable
state (a vote, an append or snapshot acknowledgement, a candidate's request)
sent before that state was durable, and a snapshot restored that does not end
with the entry applied at its index.

Each node's shell keeps a snapshot store like a real node's: `compact` saves the
state machine (the list of commands applied) with its index, term and
configuration, and an outgoing InstallSnapshot gets the newest one filled in.

Commands (IDs are node numbers; `ID...` is one or more):

  cluster N [pre_vote=B] [check_quorum=B] [election_ticks=T] [heartbeat_ticks=H]
            [max_entries=M] [max_inflight=I]     fresh voters 1..N (B is true/false)
  add ID                 start an empty server with no configuration (a new member)
  tick ID [COUNT]        COUNT ticks (default 1) of node ID's logical clock
  tick all [COUNT]       COUNT rounds of one tick of every running node, in id order
  timeout ID             tick a follower or candidate until its election timer fires
  deliver [ID...] [persist=false]
                         until quiet: complete pending writes, then deliver the
                         queued messages in send order; only for the listed nodes
                         if given; persist=false leaves writes pending
  persist ID             complete node ID's pending writes (one Persisted)
  drop [ID...]           discard queued messages (to the listed nodes)
  inflight               list the queued messages
  propose ID DATA...     one proposal carrying one command per DATA word
  read ID [COUNT]        COUNT ReadIndex requests handled in one step (default 1)
  config ID voters=A,B [learners=C,D]   propose a configuration
  transfer ID TO         ask leader ID to hand leadership to TO
  cut A B                drop messages between A and B (both ways): those sent
                         from now on, and those in flight when delivered
  isolate ID             cut every link of ID
  heal [A B]             restore one link, or every link
  crash ID               stop ID, losing writes not yet persisted
  restart ID             a new core from what ID had persisted
  compact ID [INDEX]     ID's shell saves a snapshot at its last applied index,
                         then compacts the log up to INDEX (default: that index)
  status ID              role, term, leader, commit, applied, last index, log
  log ID                 the entries of ID's log, one a line
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from abcd.raft.core import Options, RaftCore
from abcd.raft.effects import Apply, Persist, Reply, Restore, Send, Trace
from abcd.raft.messages import (
    ENTRY_NORMAL,
    AppendEntriesResponse,
    Entry,
    HardState,
    InstallSnapshotRequest,
    InstallSnapshotResponse,
    Persisted,
    Propose,
    ProposeConfig,
    ReadIndex,
    RequestVoteRequest,
    RequestVoteResponse,
    Snapshot,
    SnapshotTaken,
    Tick,
    TransferLeadership,
)

from . import formatting as fmt


class ScenarioError(Exception):
    """A command the harness cannot run (a typo, an unknown node, a bad option)."""


class SafetyViolation(AssertionError):
    """The core did something Raft forbids."""


class NeverQuiet(AssertionError):
    """Messages kept flowing without end: a livelock between cores."""


@dataclass
class Node:
    id: int
    core: RaftCore | None  # None while crashed
    initial_voters: tuple[int, ...]
    durable_hard_state: HardState = field(default_factory=HardState)
    # The durable snapshot (None: none yet) and the durable log after log_start.
    snapshot: Snapshot | None = None
    snapshot_data: bytes = b""
    log_start: int = 0
    durable_log: list[Entry] = field(default_factory=list)
    pending: list[Persist] = field(default_factory=list)  # written, not yet durable
    applied: int = 0  # the last index handed to this node's state machine
    machine: list[str] = field(default_factory=list)  # the state machine: the commands applied

    @property
    def snapshot_index(self) -> int:
        return self.snapshot.last_included_index if self.snapshot is not None else 0

    def durable_term(self, index: int) -> int | None:
        """The term of durable entry `index` (the snapshot's for its own index)."""
        if index == self.snapshot_index:
            return self.snapshot.last_included_term if self.snapshot is not None else 0
        offset = index - self.log_start - 1
        return self.durable_log[offset].term if 0 <= offset < len(self.durable_log) else None

    def entries_after_snapshot(self) -> list[Entry]:
        return self.durable_log[self.snapshot_index - self.log_start :]


MAX_DELIVERY_ROUNDS = 1000


class Scenario:
    def __init__(self) -> None:
        self.nodes: dict[int, Node] = {}
        self.options = Options()
        self.in_flight: deque = deque()  # messages sent and not yet delivered, in send order
        self.cut: set[tuple[int, int]] = set()
        self.next_tag = 1
        self.out: list[str] = []
        self.leaders: dict[int, int] = {}  # term -> leader elected in it
        self.applied: dict[int, Entry] = {}  # index -> the entry any node applied there
        # index -> the lowest term of a node applying it: at or after the term in which
        # it was committed (a node learns of a commit in that term or later).
        self.applied_term: dict[int, int] = {}
        self.results: dict[int, object] = {}  # tag -> the Reply result it got

    # ------------------------------------------------------------------ running commands

    def run(self, line: str) -> list[str]:
        """Run one command line; returns the lines it printed."""
        words = line.split()
        if not words:
            raise ScenarioError("empty command")
        handler = getattr(self, "cmd_" + words[0], None)
        if handler is None:
            raise ScenarioError(f"unknown command {words[0]!r}; known: {', '.join(COMMANDS)}")
        if words[0] != "cluster" and not self.nodes:
            raise ScenarioError(f"{words[0]}: start with `cluster N`")
        self.out = []
        positional = [w for w in words[1:] if "=" not in w]
        options = dict(w.split("=", 1) for w in words[1:] if "=" in w)
        handler(positional, options)
        return self.out

    def step(self, node: Node, event) -> None:
        self.execute(node, node.core.step(event))

    def step_many(self, node: Node, events) -> None:
        self.execute(node, node.core.step_many(events))

    def execute(self, node: Node, record) -> None:
        # The record's parts as the shell honours them, after the step's traces.
        for e in record.effects():
            kind = type(e)
            if kind is Send:
                m = e.message
                if type(m) is InstallSnapshotRequest:
                    m = self.fill_snapshot(node, m)
                    e = Send(m)
                self.check_durable_before_send(node, m)
                if (m.source, m.dest) in self.cut:
                    self.out.append(f"{fmt.effect(node.id, e)} DROPPED (link cut)")
                    continue
                self.in_flight.append(m)
            elif kind is Persist:
                node.pending.append(e)
            elif kind is Apply:
                self.check_apply(node, e.entries)
            elif kind is Restore:
                self.check_restore(node, e)
            elif kind is Reply:
                self.results[e.tag] = e.result
            elif kind is Trace and e.name == "BecomeLeader":
                self.check_one_leader_per_term(node.id, e.fields["term"])
                self.check_leader_completeness(node)
            self.out.append(fmt.effect(node.id, e))

    # ------------------------------------------------------------------ safety checks

    def check_one_leader_per_term(self, node_id: int, term: int) -> None:
        other = self.leaders.setdefault(term, node_id)
        if other != node_id:
            raise SafetyViolation(f"election safety: n{node_id} and n{other} both became leader in term {term}")

    def check_leader_completeness(self, node: Node) -> None:
        """§5.4: a new leader's log holds every entry committed in an earlier term.

        An entry applied anywhere is committed; a leader of a term no later than the
        commit's may still win with votes granted before it (a late vote response),
        so only entries applied in earlier terms are checked.
        """
        log = node.core.log
        term = node.core.current_term
        for index, entry in self.applied.items():
            if self.applied_term[index] >= term:
                continue
            if index > log.snapshot_index and (index > log.last_index or log.entry(index) != entry):
                raise SafetyViolation(f"leader completeness: n{node.id} became leader without applied entry {entry}")

    def check_apply(self, node: Node, entries) -> None:
        for e in entries:
            if e.index != node.applied + 1:
                raise SafetyViolation(f"n{node.id} applied index {e.index} after {node.applied}")
            node.applied = e.index
            if e.data and e.kind == ENTRY_NORMAL:
                node.machine.append(e.data.decode(errors="backslashreplace"))
            first = self.applied.setdefault(e.index, e)
            self.applied_term[e.index] = min(self.applied_term.get(e.index, node.core.current_term), node.core.current_term)
            if first != e:
                raise SafetyViolation(f"state machine safety: index {e.index} applied as {first} and as {e} (n{node.id})")

    def fill_snapshot(self, node: Node, m: InstallSnapshotRequest) -> InstallSnapshotRequest:
        """The shell's part of InstallSnapshot: its newest snapshot, at or after the
        start of the core's log and never beyond its commit index."""
        s = node.snapshot
        if s is None or s.last_included_index < m.last_included_index or s.last_included_index > node.core.commit_index:
            raise SafetyViolation(
                f"n{node.id} asked to send a snapshot at {m.last_included_index} but its shell holds "
                f"{fmt.snapshot(s) if s else 'none'} (commit={node.core.commit_index})"
            )
        return InstallSnapshotRequest(
            m.term, m.source, m.dest, s.last_included_index, s.last_included_term, s.voters, s.learners, node.snapshot_data
        )

    def check_restore(self, node: Node, e: Restore) -> None:
        """A snapshot holds committed state: it ends with the entry applied at its index."""
        index, term = e.snapshot.last_included_index, e.snapshot.last_included_term
        entry = self.applied.get(index)
        if entry is None or entry.term != term:
            raise SafetyViolation(f"n{node.id} restored a snapshot ending at {index}@{term}, but {entry} was applied there")
        if index <= node.applied:
            raise SafetyViolation(f"n{node.id} restored a snapshot at {index} after applying {node.applied}")
        node.applied = index
        node.machine = decode_machine(e.data)

    def check_durable_before_send(self, node: Node, m) -> None:
        """Thesis §3.8: a message may only promise what is already on stable storage.

        Writes complete in order, so a durable term above the message's term means
        the write behind the promise completed too (and the message is stale).
        """
        hs = node.durable_hard_state
        kind = type(m)
        if kind is RequestVoteResponse and m.vote_granted and not m.pre_vote:
            if hs.current_term < m.term or (hs.current_term == m.term and hs.voted_for != m.dest):
                raise SafetyViolation(f"n{node.id} granted its vote to n{m.dest} in term {m.term} before persisting it ({hs})")
        elif kind is RequestVoteRequest and not m.pre_vote:
            if hs.current_term < m.term or (hs.current_term == m.term and hs.voted_for != node.id):
                raise SafetyViolation(f"n{node.id} asked for votes in term {m.term} before persisting its own ({hs})")
        elif kind in (AppendEntriesResponse, InstallSnapshotResponse) and node.core.current_term == m.term:
            if kind is AppendEntriesResponse and not m.success:
                return
            # Within one term a follower's log never loses entries it acknowledged
            # (they match the leader's), so the promise can be checked against today's
            # log; what the durable snapshot covers is durable.
            log = node.core.log
            for i in range(node.snapshot_index + 1, m.match_index + 1):
                durable, now = node.durable_term(i), log.term_at(i)  # now: None if compacted
                if durable is not None and (now is None or durable == now):
                    continue
                raise SafetyViolation(
                    f"n{node.id} acknowledged entries up to {m.match_index} with only "
                    f"{fmt.runs(node.durable_log)} durable after snapshot {node.snapshot_index}"
                )

    # ------------------------------------------------------------------ argument helpers

    def node(self, word: str, *, up: bool = True) -> Node:
        try:
            node_id = int(word)
        except ValueError:
            raise ScenarioError(f"expected a node id, got {word!r}") from None
        if node_id not in self.nodes:
            raise ScenarioError(f"no node {node_id} (nodes: {fmt.ids(self.nodes)})")
        node = self.nodes[node_id]
        if up and node.core is None:
            raise ScenarioError(f"n{node_id} is down (restart it first)")
        return node

    @staticmethod
    def count(word: str, what: str) -> int:
        try:
            value = int(word)
        except ValueError:
            raise ScenarioError(f"{what} must be a number, got {word!r}") from None
        if value < 1:
            raise ScenarioError(f"{what} must be at least 1, got {value}")
        return value

    @staticmethod
    def expect(cmd: str, positional, options, n_min: int, n_max: int | None, allowed=()) -> None:
        n = len(positional)
        if n < n_min or (n_max is not None and n > n_max):
            want = str(n_min) if n_min == n_max else f"{n_min}..{'' if n_max is None else n_max}"
            raise ScenarioError(f"{cmd}: expected {want} arguments, got {n}")
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise ScenarioError(f"{cmd}: unknown option {unknown[0]!r} (allowed: {', '.join(allowed) or 'none'})")

    @staticmethod
    def flag(cmd: str, options, name: str, default: bool) -> bool:
        value = options.get(name)
        if value is None:
            return default
        if value not in ("true", "false"):
            raise ScenarioError(f"{cmd}: {name} must be true or false, got {value!r}")
        return value == "true"

    def id_list(self, word: str) -> frozenset[int]:
        try:
            return frozenset(int(x) for x in word.split(",") if x)
        except ValueError:
            raise ScenarioError(f"expected node ids like 1,2,3, got {word!r}") from None

    def new_core(self, node: Node) -> RaftCore:
        return RaftCore(
            node.id,
            voters=node.initial_voters,
            hard_state=node.durable_hard_state,
            snapshot=node.snapshot,
            entries=node.entries_after_snapshot(),
            seed=node.id,
            options=self.options,
        )

    def tag(self) -> int:
        self.next_tag += 1
        return self.next_tag - 1

    # ------------------------------------------------------------------ commands: setup

    def cmd_cluster(self, positional, options) -> None:
        allowed = ("pre_vote", "check_quorum", "election_ticks", "heartbeat_ticks", "max_entries", "max_inflight")
        self.expect("cluster", positional, options, 1, 1, allowed)
        n = self.count(positional[0], "cluster size")
        defaults = Options()
        chosen = Options(
            pre_vote=self.flag("cluster", options, "pre_vote", defaults.pre_vote),
            check_quorum=self.flag("cluster", options, "check_quorum", defaults.check_quorum),
            election_ticks=self.count(options.get("election_ticks", str(defaults.election_ticks)), "election_ticks"),
            heartbeat_ticks=self.count(options.get("heartbeat_ticks", str(defaults.heartbeat_ticks)), "heartbeat_ticks"),
            max_entries_per_message=self.count(
                options.get("max_entries", str(defaults.max_entries_per_message)), "max_entries"
            ),
            max_inflight=self.count(options.get("max_inflight", str(defaults.max_inflight)), "max_inflight"),
        )
        self.__init__()  # a fresh cluster forgets everything about the previous one
        self.options = chosen
        voters = tuple(range(1, n + 1))
        for i in voters:
            node = Node(i, None, voters)
            node.core = self.new_core(node)
            self.nodes[i] = node

    def cmd_add(self, positional, options) -> None:
        self.expect("add", positional, options, 1, 1)
        node_id = self.count(positional[0], "node id")
        if node_id in self.nodes:
            raise ScenarioError(f"add: n{node_id} already exists")
        node = Node(node_id, None, ())
        node.core = self.new_core(node)
        self.nodes[node_id] = node
        self.out.append(f"n{node_id} started with an empty log and no configuration")

    # ------------------------------------------------------------------ commands: time

    def cmd_tick(self, positional, options) -> None:
        self.expect("tick", positional, options, 1, 2)
        if positional[0] == "all":
            nodes = [n for _, n in sorted(self.nodes.items()) if n.core is not None]
        else:
            nodes = [self.node(positional[0])]
        for _ in range(self.count(positional[1], "tick count") if len(positional) > 1 else 1):
            for node in nodes:
                self.step(node, Tick())

    def cmd_timeout(self, positional, options) -> None:
        self.expect("timeout", positional, options, 1, 1)
        node = self.node(positional[0])
        if node.core.is_leader():
            raise ScenarioError(f"timeout: n{node.id} is the leader; `tick` drives its check-quorum timer")
        # The randomized timeout is below 2T, so 2T ticks always reach it (§5.2).
        limit = 2 * self.options.election_ticks
        for _ in range(limit):
            effects = node.core.step(Tick())
            self.execute(node, effects)
            if any(t.name == "Timeout" for t in effects.traces):
                return
        raise ScenarioError(f"timeout: n{node.id} did not time out within {limit} ticks (not a voter?)")

    # ------------------------------------------------------------------ commands: network and disk

    def cmd_deliver(self, positional, options) -> None:
        self.expect("deliver", positional, options, 0, None, ("persist",))
        targets = {self.node(w, up=False).id for w in positional} or None
        with_persist = self.flag("deliver", options, "persist", True)
        for _ in range(MAX_DELIVERY_ROUNDS):
            progressed = False
            if with_persist:
                for node in sorted(self.nodes.values(), key=lambda n: n.id):
                    if node.pending and node.core is not None and (targets is None or node.id in targets):
                        self.complete_writes(node)
                        progressed = True
            batch = [m for m in self.in_flight if targets is None or m.dest in targets]
            if batch:
                self.in_flight = deque(m for m in self.in_flight if not (targets is None or m.dest in targets))
                for m in batch:
                    self.deliver_one(m)
                progressed = True
            if not progressed:
                return
        raise NeverQuiet(f"deliver: still busy after {MAX_DELIVERY_ROUNDS} rounds")

    def deliver_one(self, m) -> None:
        line = f"n{m.dest} <- n{m.source} {fmt.message(m)}"
        node = self.nodes.get(m.dest)
        if node is None:
            self.out.append(f"{line} DROPPED (no such node)")
        elif node.core is None:
            self.out.append(f"{line} DROPPED (n{m.dest} is down)")
        elif (m.source, m.dest) in self.cut:
            self.out.append(f"{line} DROPPED (link cut)")
        else:
            self.out.append(line)
            self.step(node, m)

    def complete_writes(self, node: Node) -> None:
        for p in node.pending:
            if p.snapshot is not None:
                # A leader's snapshot replaced the log: save it, then the log starts after it.
                node.snapshot, node.snapshot_data = p.snapshot, p.snapshot_data
                node.durable_log, node.log_start = [], p.snapshot.last_included_index
            if p.hard_state is not None:
                node.durable_hard_state = p.hard_state
            if p.entries:
                del node.durable_log[p.entries[0].index - node.log_start - 1 :]
                node.durable_log.extend(p.entries)
        seq = node.pending[-1].seq
        node.pending = []
        self.out.append(f"n{node.id} persisted seq={seq}")
        self.step(node, Persisted(seq))

    def cmd_persist(self, positional, options) -> None:
        self.expect("persist", positional, options, 1, 1)
        node = self.node(positional[0])
        if not node.pending:
            raise ScenarioError(f"persist: n{node.id} has no pending writes")
        self.complete_writes(node)

    def cmd_drop(self, positional, options) -> None:
        self.expect("drop", positional, options, 0, None)
        targets = {self.node(w, up=False).id for w in positional} or None
        kept = deque()
        for m in self.in_flight:
            if targets is None or m.dest in targets:
                self.out.append(f"n{m.dest} <- n{m.source} {fmt.message(m)} DROPPED")
            else:
                kept.append(m)
        self.in_flight = kept

    def cmd_inflight(self, positional, options) -> None:
        self.expect("inflight", positional, options, 0, 0)
        for m in self.in_flight:
            self.out.append(f"n{m.source} -> n{m.dest} {fmt.message(m)}")

    def cmd_cut(self, positional, options) -> None:
        self.expect("cut", positional, options, 2, 2)
        a, b = self.node(positional[0], up=False).id, self.node(positional[1], up=False).id
        self.cut |= {(a, b), (b, a)}

    def cmd_isolate(self, positional, options) -> None:
        self.expect("isolate", positional, options, 1, 1)
        a = self.node(positional[0], up=False).id
        for b in self.nodes:
            if b != a:
                self.cut |= {(a, b), (b, a)}

    def cmd_heal(self, positional, options) -> None:
        if positional:
            self.expect("heal", positional, options, 2, 2)
            a, b = self.node(positional[0], up=False).id, self.node(positional[1], up=False).id
            self.cut -= {(a, b), (b, a)}
        else:
            self.expect("heal", positional, options, 0, 0)
            self.cut = set()

    def cmd_crash(self, positional, options) -> None:
        self.expect("crash", positional, options, 1, 1)
        node = self.node(positional[0])
        lost = ",".join(str(p.seq) for p in node.pending)
        node.core, node.pending = None, []
        self.out.append(f"n{node.id} crashed" + (f", losing unpersisted seq={lost}" if lost else ""))

    def cmd_restart(self, positional, options) -> None:
        self.expect("restart", positional, options, 1, 1)
        node = self.node(positional[0], up=False)
        if node.core is not None:
            raise ScenarioError(f"restart: n{node.id} is running (crash it first)")
        node.core = self.new_core(node)
        # The state machine is the snapshot's, rebuilt further by applying the log again.
        node.applied = node.snapshot_index
        node.machine = decode_machine(node.snapshot_data)
        hs = node.durable_hard_state
        snap = f" snapshot={fmt.snapshot(node.snapshot)}" if node.snapshot is not None else ""
        self.out.append(
            f"n{node.id} restarted term={hs.current_term} vote={hs.voted_for}{snap} "
            f"log={fmt.runs(node.entries_after_snapshot())}"
        )

    def cmd_compact(self, positional, options) -> None:
        self.expect("compact", positional, options, 1, 2)
        node = self.node(positional[0])
        core = node.core
        index = core.last_applied
        upto = index
        if len(positional) > 1:
            try:
                upto = int(positional[1])
            except ValueError:
                raise ScenarioError(f"compact: INDEX must be a number, got {positional[1]!r}") from None
            if not 0 <= upto <= index:
                raise ScenarioError(f"compact: INDEX must be in 0..{index} (the last applied index), got {upto}")
        if index <= node.snapshot_index:
            raise ScenarioError(f"compact: n{node.id} has applied nothing since its snapshot at {node.snapshot_index}")
        config = core.config_at(index)
        node.snapshot = Snapshot(index, core.log.term_at(index), config.voters, config.learners)
        node.snapshot_data = encode_machine(node.machine)
        self.step(node, SnapshotTaken(index, upto))
        # The durable log drops the same prefix (a WAL drops what a snapshot covers).
        drop = min(max(0, core.log.snapshot_index - node.log_start), len(node.durable_log))
        del node.durable_log[:drop]
        node.log_start += drop
        self.out.append(
            f"n{node.id} snapshot {fmt.snapshot(node.snapshot)} data={node.snapshot_data.decode()!r}, "
            f"log compacted to {core.log.snapshot_index}"
        )

    # ------------------------------------------------------------------ commands: clients

    def cmd_propose(self, positional, options) -> None:
        self.expect("propose", positional, options, 2, None)
        node = self.node(positional[0])
        self.step(node, Propose(self.tag(), tuple(w.encode() for w in positional[1:])))

    def cmd_read(self, positional, options) -> None:
        self.expect("read", positional, options, 1, 2)
        node = self.node(positional[0])
        n = self.count(positional[1], "read count") if len(positional) > 1 else 1
        self.step_many(node, [ReadIndex(self.tag()) for _ in range(n)])

    def cmd_config(self, positional, options) -> None:
        self.expect("config", positional, options, 1, 1, ("voters", "learners"))
        node = self.node(positional[0])
        if "voters" not in options:
            raise ScenarioError("config: voters=... is required")
        voters, learners = self.id_list(options["voters"]), self.id_list(options.get("learners", ""))
        self.step(node, ProposeConfig(self.tag(), voters, learners))

    def cmd_transfer(self, positional, options) -> None:
        self.expect("transfer", positional, options, 2, 2)
        node = self.node(positional[0])
        to = self.count(positional[1], "transferee")
        self.step(node, TransferLeadership(self.tag(), to))

    # ------------------------------------------------------------------ commands: inspection

    def cmd_status(self, positional, options) -> None:
        self.expect("status", positional, options, 1, 1)
        node = self.node(positional[0], up=False)
        if node.core is None:
            hs = node.durable_hard_state
            snap = f" snapshot={fmt.snapshot(node.snapshot)}" if node.snapshot is not None else ""
            self.out.append(
                f"n{node.id} down term={hs.current_term} vote={hs.voted_for}{snap} log={fmt.runs(node.durable_log)}"
            )
            return
        c = node.core
        learners = f" learners={fmt.ids(c.config.learners)}" if c.config.learners else ""
        snap = f" snapshot={c.log.snapshot_index}@{c.log.snapshot_term}" if c.log.snapshot_index else ""
        self.out.append(
            f"n{node.id} {c.role} term={c.current_term} vote={c.voted_for} leader={c.leader_id} "
            f"commit={c.commit_index} applied={c.last_applied} last={c.log.last_index}{snap} "
            f"log={fmt.runs(c.log.entries)} voters={fmt.ids(c.config.voters)}{learners}"
        )

    def cmd_log(self, positional, options) -> None:
        self.expect("log", positional, options, 1, 1)
        node = self.node(positional[0], up=False)
        entries = node.core.log.entries if node.core is not None else node.durable_log
        if not entries:
            self.out.append(f"n{node.id} log is empty")
        for e in entries:
            self.out.append(f"n{node.id} {e.index}@{e.term} {fmt.entry_data(e)}")


COMMANDS = sorted(name[4:] for name in dir(Scenario) if name.startswith("cmd_"))


def encode_machine(machine: list[str]) -> bytes:
    return ",".join(machine).encode()


def decode_machine(data: bytes) -> list[str]:
    return data.decode().split(",") if data else []


# --------------------------------------------------------------------------- transcripts


def is_output(line: str) -> bool:
    return bool(line.strip()) and not line.startswith("#") and not line.startswith(">")


def play(text: str, name: str = "<transcript>") -> str:
    """Run every command of a transcript; returns the transcript with actual outputs.

    Comments, blank lines and commands are kept as they are; each command's output
    block (the non-blank, non-comment lines after it) is replaced by what it printed.
    """
    scenario = Scenario()
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if is_output(line):
            raise ScenarioError(f"{name}:{i}: output line before any command: {line!r}")
        out.append(line)
        if not line.startswith(">"):
            continue
        if not line.startswith("> "):
            raise ScenarioError(f"{name}:{i}: a command line starts with '> ', got {line!r}")
        try:
            out.extend(scenario.run(line[2:]))
        except ScenarioError as e:
            raise ScenarioError(f"{name}:{i}: {line[2:]}: {e}") from None
        except (SafetyViolation, NeverQuiet) as e:
            raise type(e)(f"{name}:{i}: {line[2:]}: {e}") from None
        while i < len(lines) and is_output(lines[i]):
            i += 1
    return "\n".join(out) + "\n"
