// One plain-language sentence per event, so that a person reading the timeline learns
// *why* each thing happened.  Event names and fields are those of the core's traces
// (abcd/raft, `self.trace(...)`), the node's log events (SnapshotTaken, Faults, ...) and
// the simulator's faults (Partition, Heal, Crash, Restart).

import { findMember, formatBytes, formatMs, formatNumber, labelList, memberLabel, normalizeRole } from "./model.js";

/**
 * Remembers what a sentence needs from earlier events: who voted for whom, each
 * node's previous commit index and role.  Feed it every event in order.
 */
export class Narrator {
  constructor() {
    this.reset();
  }

  reset() {
    this.votes = new Map(); // "candidate/term" -> Set of voters
    this.commit = new Map(); // node -> last commit index seen
    this.roles = new Map(); // node -> last role seen
  }

  /** The sentence for one event, and remember what later sentences need. */
  narrate(event, state, previous) {
    this.previous = previous || null;
    const text = caption(event, state, this);
    this.observe(event);
    return text;
  }

  observe(event) {
    const f = event.fields || {};
    if (event.event === "GrantVote" && !f.pre_vote && f.candidate !== undefined) {
      const key = `${f.candidate}/${event.term}`;
      if (!this.votes.has(key)) this.votes.set(key, new Set());
      this.votes.get(key).add(event.node);
    }
    if (event.event === "AdvanceCommitIndex" && f.commit_index !== undefined) {
      this.commit.set(event.node, f.commit_index);
    }
    if (event.role) this.roles.set(event.node, event.role);
  }

  votesFor(candidate, term) {
    const voters = new Set(this.votes.get(`${candidate}/${term}`) || []);
    voters.add(candidate); // a candidate votes for itself
    return [...voters].sort((a, b) => a - b);
  }
}

function name(id, state) {
  return memberLabel(id, state);
}

function plural(n, one, many) {
  return `${formatNumber(n)} ${n === 1 ? one : many}`;
}

// The sentence for each event name.  `e` is the event, `f` its fields, `who` the name of
// the node it happened on, `s` the state (for names and the member's settings), `n` the
// Narrator (may be undefined: then the sentence says a little less).
const SENTENCES = {
  Timeout(e, f, who, s, n) {
    // The timeout that expired is the one known before this event: the member draws a
    // new random one as it changes role.
    const before = n && n.previous ? findMember(n.previous, e.node) : null;
    const ms = f.elapsed_ms ?? f.election_timeout_ms ?? (before && before.election_timeout_ms);
    const heard = ms ? `for ${formatNumber(ms)} ms` : "for a whole election timeout";
    if (f.pre_vote === false) {
      return `${who} heard no heartbeat ${heard}: it starts an election for term ${e.term + 1}`;
    }
    return `${who} heard no heartbeat ${heard}: it becomes a pre-candidate and asks whether it could win term ${e.term + 1}`;
  },
  BecomePreCandidate(e, f, who) {
    return `${who} is a pre-candidate: it asks the others whether they would vote for it in term ${e.term + 1}; no term changes unless a majority says yes (pre-vote)`;
  },
  BecomeCandidate(e, f, who) {
    return `${who} becomes a candidate for term ${e.term}: it votes for itself and asks the others for their votes`;
  },
  BecomeLeader(e, f, who, s, n) {
    const votes = n ? n.votesFor(e.node, e.term) : [];
    if (votes.length > 1) {
      return `${who} won term ${e.term} with votes from ${labelList(votes, s)}: it is the leader and sends heartbeats to keep its followers`;
    }
    return `${who} won term ${e.term}: a majority of voters granted it their vote, so it is the leader`;
  },
  BecomeFollower(e, f, who, s, n) {
    const before = n && n.roles.get(e.node);
    const leader = f.leader ?? null;
    if (before === "leader") {
      return `${who} steps down in term ${e.term}: it is no longer the leader${leader !== null ? `; ${name(leader, s)} leads now` : ""}`;
    }
    if (leader !== null && leader !== undefined) {
      return `${who} follows ${name(leader, s)}, the leader of term ${e.term}`;
    }
    return `${who} is a follower in term ${e.term}: it knows no leader yet and waits for one`;
  },
  GrantVote(e, f, who, s) {
    const c = name(f.candidate, s);
    if (f.pre_vote) {
      return `${who} answers ${c}'s pre-vote: yes, it would vote for ${c} (it hears no leader and ${c}'s log is at least as up to date as its own)`;
    }
    return `${who} granted its vote to ${c} for term ${e.term}`;
  },
  RejectVote(e, f, who, s) {
    const c = name(f.candidate, s);
    const me = findMember(s, e.node);
    const what = f.pre_vote ? "pre-vote" : "vote request";
    let why = `${c}'s log is less up to date than its own`;
    if (me && me.leader !== null && me.leader !== undefined && me.leader !== f.candidate) {
      why = `it still hears from the leader ${name(me.leader, s)}`;
    } else if (!f.pre_vote && me && me.voted_for !== null && me.voted_for !== undefined && me.voted_for !== f.candidate) {
      why = `it already voted for ${name(me.voted_for, s)} in term ${e.term}`;
    }
    return `${who} refused ${c}'s ${what}: ${why}`;
  },
  IgnoreVote(e, f, who, s) {
    const c = name(f.candidate, s);
    return `${who} ignored ${c}'s vote request for term ${f.their_term ?? "?"}: it heard from its leader less than an election timeout ago (${f.reason || "leader lease"}), so ${c} cannot disrupt a working leader`;
  },
  AdvanceCommitIndex(e, f, who, s, n) {
    const earlier = n && n.previous ? findMember(n.previous, e.node) : null;
    const before = f.from_commit_index ?? (n ? n.commit.get(e.node) : undefined) ?? (earlier ? earlier.commit_index : undefined);
    const to = formatNumber(f.commit_index);
    const moved = before !== undefined && before !== null ? `${formatNumber(before)} → ${to}` : `to ${to}`;
    return `the leader ${who}'s commit index moved ${moved}: those entries are on a majority and will be applied`;
  },
  ConfigChange(e, f, who, s) {
    const voters = f.voters || [];
    const learners = f.learners || [];
    const l = learners.length ? `; learners ${labelList(learners, s)}` : "";
    return `${who} now uses the configuration voters ${labelList(voters, s)}${l} (a majority is ${Math.floor(voters.length / 2) + 1} of ${voters.length})`;
  },
  TruncateLog(e, f, who) {
    return `${who} dropped its entries from index ${formatNumber(f.from_index)} on: they conflict with the leader's log, which wins (§5.3)`;
  },
  AppendRejected(e, f, who, s) {
    return `${name(f.peer, s)}'s log did not match ${who}'s: ${who} backs up and sends again from index ${formatNumber(f.next_index)}`;
  },
  RejectAppend(e, f, who, s) {
    return `${who} rejected ${name(f.leader, s)}'s AppendEntries: it has no entry at index ${formatNumber(f.prev_log_index)} with the term the leader expects`;
  },
  SendInstallSnapshot(e, f, who, s) {
    return `${who} sends its snapshot (up to index ${formatNumber(f.last_included_index)}, term ${f.last_included_term}) to ${name(f.peer, s)}: the entries it needs were compacted away`;
  },
  InstallSnapshot(e, f, who, s) {
    return `${who} installs ${name(f.leader, s)}'s snapshot up to index ${formatNumber(f.last_included_index)} (term ${f.last_included_term}) in place of its log`;
  },
  SnapshotAccepted(e, f, who, s) {
    return `${name(f.peer, s)} installed ${who}'s snapshot: replication goes on from index ${formatNumber((f.match_index ?? 0) + 1)}`;
  },
  SnapshotTaken(e, f, who) {
    const parts = [];
    if (f.keys !== undefined) parts.push(plural(f.keys, "key", "keys"));
    if (f.bytes !== undefined) parts.push(formatBytes(f.bytes));
    if (f.seconds !== undefined) parts.push(`in ${f.seconds} s`);
    const what = parts.length ? ` (${parts.join(", ")})` : "";
    const compacted = f.log_compacted_to ? ` and compacted its log up to index ${formatNumber(f.log_compacted_to)}` : "";
    return `${who} took a snapshot at index ${formatNumber(f.index)}${what}${compacted}`;
  },
  SnapshotInstalled(e, f, who) {
    return `${who}'s snapshot at index ${formatNumber(f.index)} (${formatBytes(f.bytes)}) is on disk: its log now starts after it`;
  },
  TransferLeadership(e, f, who, s) {
    return `${who} hands leadership to ${name(f.to, s)}: it brings ${name(f.to, s)}'s log up to date, then tells it to time out now`;
  },
  SendTimeoutNow(e, f, who, s) {
    return `${who} tells ${name(f.to, s)} to start an election at once (TimeoutNow): its log is up to date`;
  },
  TimeoutNow(e, f, who, s) {
    return `${who} got TimeoutNow from ${name(f.from_leader, s)}: it starts an election for term ${e.term + 1} without waiting for its timer`;
  },
  TransferAborted(e, f, who, s) {
    return `${who} gives up handing leadership to ${name(f.to, s)}: the transfer did not finish within an election timeout`;
  },
  LeaderRemoved(e, f, who) {
    return `${who} is not in the new configuration: the leader steps down now that the change is committed`;
  },
  CheckQuorumFailed(e, f, who) {
    return `${who} steps down: it did not hear from a majority within an election timeout (check quorum), so it cannot be sure it still leads`;
  },
  LeaderUnreachable(e, f, who, s) {
    return `${who} lost its connection to the leader ${name(f.leader, s)}: it will campaign after a short random wait instead of a whole election timeout`;
  },
  ReplicationStalled(e, f, who, s) {
    return `${who} pauses sending entries to ${name(f.peer, s)}: too many are in flight unanswered (match index ${formatNumber(f.match_index)})`;
  },
  SnapshotStalled(e, f, who, s) {
    return `${who}'s snapshot to ${name(f.peer, s)} went unanswered: it will send it again`;
  },
  IgnoreSnapshot(e, f, who, s) {
    return `${who} ignored ${name(f.leader, s)}'s snapshot at index ${formatNumber(f.last_included_index)}: it has already committed up to ${formatNumber(f.commit_index)}`;
  },
  RetainLog(e, f, who) {
    return `${who} already holds the snapshot's last entry (index ${formatNumber(f.last_included_index)}): it keeps the log that follows`;
  },
  PromoteLearner(e, f, who) {
    return `${who}'s learner has caught up: it becomes a voter`;
  },
  Faults(e, f, who, s) {
    return `${who}'s network faults changed: ${describeFaults(f, s)}`;
  },
  Partition(e, f, who, s) {
    const groups = f.groups || (f.side ? [f.side, f.rest || f.other || []] : null);
    const how = f.one_way ? "one way" : "both ways";
    if (groups && groups.length) {
      const sides = groups.filter((g) => g && g.length).map((g) => `{${labelList(g, s)}}`);
      return `the network is cut ${how} between ${sides.join(" and ")}: messages across the cut are lost`;
    }
    return `the network is partitioned ${how}: messages across the cut are lost`;
  },
  Heal() {
    return "the network is healed: every member can reach every other again";
  },
  Crash(e, f, who, s) {
    const id = f.node ?? e.node;
    return `${name(id, s)} crashed: it stops, keeping only what it wrote to disk (its term, vote and log)`;
  },
  Restart(e, f, who, s) {
    const id = f.node ?? e.node;
    return `${name(id, s)} restarts from its disk as a follower and waits to hear from a leader`;
  },
  Watching(e, f, who, s) {
    const others = (f.up || []).filter((id) => id !== f.leader);
    const down = f.down && f.down.length ? `; ${labelList(f.down, s)} ${f.down.length === 1 ? "does" : "do"} not answer` : "";
    return `the page starts watching: ${who} leads term ${e.term}` +
      (others.length ? ` with ${labelList(others, s)} following` : "") +
      `, commit index ${formatNumber(f.commit_index)}${down}. What happens from now on appears here.`;
  },
  MemberDown(e, f, who) {
    const how = f.supervised === "killed" ? "was killed (kill -9)" : f.supervised === "stopped" ? "was stopped" : "stopped answering";
    return `${who} ${how}: the page no longer hears from it; the others carry on while a majority of voters is up`;
  },
  MemberUp(e, f, who) {
    return `${who} answers again: it rejoins as a follower and the leader brings its log up to date`;
  },
  DropMessage(e, f, who, s) {
    return `the network lost ${who}'s ${f.type || "message"} to ${name(f.to, s)}: Raft does not need it to arrive, it sends again`;
  },
  DuplicateMessage(e, f, who, s) {
    return `the network delivers ${who}'s ${f.type || "message"} to ${name(f.to, s)} twice: the second copy changes nothing`;
  },
  NodeStarted(e, f, who) {
    return `${who} started`;
  },
  NodeStopping(e, f, who) {
    return `${who} is stopping`;
  },
};

function describeFaults(f, s) {
  const parts = [];
  const settings = f.faults || f;
  if (settings.healed || f.message === "healed") return "healed, every link works again";
  if (settings.partition && settings.partition.length) parts.push(`cut off from ${labelList(settings.partition, s)}`);
  if (settings.cut_to && settings.cut_to.length) parts.push(`its messages to ${labelList(settings.cut_to, s)} are dropped (one way)`);
  if (settings.delay_ms) parts.push(`${formatNumber(settings.delay_ms)} ms delay`);
  if (settings.jitter_ms) parts.push(`±${formatNumber(settings.jitter_ms)} ms jitter`);
  if (settings.drop_rate) parts.push(`${Math.round(settings.drop_rate * 100)} % loss`);
  if (settings.links && Object.keys(settings.links).length) {
    parts.push(`per-link settings for ${labelList(Object.keys(settings.links).map(Number), s)}`);
  }
  return parts.length ? parts.join(", ") : "no faults: every link works";
}

/**
 * The plain sentence for an event.
 * @param {import("./model.js").RaftEvent} event
 * @param {import("./model.js").State} [state] names and settings of the members
 * @param {Narrator} [narrator] what earlier events taught (votes, previous commit index)
 * @returns {string}
 */
export function caption(event, state, narrator) {
  const f = event.fields || {};
  const who = event.node === null || event.node === undefined ? "the cluster" : name(event.node, state);
  const sentence = SENTENCES[event.event];
  if (sentence) {
    try {
      return sentence(event, f, who, state, narrator);
    } catch (err) {
      // A record with unexpected fields still gets the generic sentence below.
    }
  }
  const shown = Object.entries(f)
    .filter(([, v]) => v === null || typeof v !== "object")
    .slice(0, 4)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  const role = normalizeRole({ role: event.role });
  const where = event.term !== null && event.term !== undefined ? ` in term ${event.term}` : "";
  return `${who}${role ? ` (${role})` : ""}: ${event.event}${where}${shown ? ` (${shown})` : ""}`;
}

/** Event names grouped by what a person may want to follow in the timeline. */
export const EVENT_KINDS = {
  elections: new Set([
    "Watching", "Timeout", "BecomePreCandidate", "BecomeCandidate", "BecomeLeader", "BecomeFollower",
    "GrantVote", "RejectVote", "IgnoreVote", "CheckQuorumFailed", "LeaderUnreachable",
    "TransferLeadership", "SendTimeoutNow", "TimeoutNow", "TransferAborted",
  ]),
  log: new Set([
    "AdvanceCommitIndex", "TruncateLog", "AppendRejected", "RejectAppend", "ReplicationStalled",
    "SendInstallSnapshot", "InstallSnapshot", "SnapshotAccepted", "SnapshotStalled", "IgnoreSnapshot",
    "RetainLog", "SnapshotTaken", "SnapshotInstalled",
  ]),
  membership: new Set(["ConfigChange", "LeaderRemoved", "PromoteLearner"]),
  faults: new Set(["Faults", "Partition", "Heal", "Crash", "Restart", "NodeStarted", "NodeStopping", "MemberDown", "MemberUp", "DropMessage", "DuplicateMessage"]),
};

/** The kind of an event for the timeline's filter: elections, log, membership, faults or other. */
export function eventKind(name) {
  for (const [kind, names] of Object.entries(EVENT_KINDS)) if (names.has(name)) return kind;
  return "other";
}
