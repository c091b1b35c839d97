// The dashboard's view model: what the live source and the replay source both produce,
// and the only thing the drawing code (view/*.js) reads.  Names follow the Raft paper
// and the node's /v1/status answer (term, voted_for, commit_index, ...).

/**
 * A snapshot of the cluster at one moment.
 * @typedef {object} State
 * @property {number} time seconds: wall clock for a live cluster, virtual for a replayed run
 * @property {Member[]} members sorted by id
 * @property {number|null} leader the id of the leader, when one is known
 */

/**
 * One member as the page knows it.
 * @typedef {object} Member
 * @property {number} id
 * @property {string} name
 * @property {string|null} address
 * @property {boolean} voter false: a learner (it receives the log but does not vote)
 * @property {boolean} up false: stopped or unreachable (drawn grey)
 * @property {number|null} last_heard the time of the last status heard from it
 * @property {"leader"|"follower"|"candidate"|"pre-candidate"|"learner"|null} role
 * @property {number} term
 * @property {number|null} voted_for
 * @property {number|null} leader
 * @property {number} commit_index
 * @property {number} applied_index
 * @property {number} last_log_index
 * @property {number} snapshot_index the log is compacted up to here
 * @property {Array<[number, number]>} log_terms runs [first_index, term]: entries from
 *   first_index up to the next run's first_index - 1 (or last_log_index) have that term
 * @property {number|null} election_elapsed_ms
 * @property {number|null} election_timeout_ms
 * @property {number|null} heartbeat_ms
 * @property {number|null} lease_remaining_ms the leader's check-quorum lease
 * @property {"ok"|"unhealthy"|"down"} health
 * @property {Object<string, {match_index: number, next_index: number}>|null} progress leader only
 * @property {object|null} faults this node's fault settings, null when faults are disabled
 * @property {{pid: number, state: string}|null} supervised under the demo only
 */

/**
 * One thing that happened: the core's Trace name or the node's log event name.
 * @typedef {object} RaftEvent
 * @property {number} time
 * @property {number|null} node
 * @property {string} event e.g. "BecomeLeader", "GrantVote", "AdvanceCommitIndex"
 * @property {number|null} term
 * @property {string|null} role
 * @property {object} fields
 * @property {object[]} [records] the raw log or trace records behind it
 */

/**
 * Messages sent between members, possibly aggregated.
 * @typedef {object} Message
 * @property {number} time
 * @property {number} from
 * @property {number} to
 * @property {string} type a class name of abcd/raft/messages.py, or "Heartbeat" (an
 *   AppendEntries with no entries), "PreVote", "PreVoteResponse"
 * @property {number} count how many messages this record stands for
 * @property {number} entries the entries they carried in all
 * @property {boolean} [success] for answers: vote granted or append accepted
 */

/**
 * A broken invariant found by the simulator (replays only).
 * @typedef {object} Violation
 * @property {number} step
 * @property {number} time
 * @property {string} invariant
 * @property {number[]} members
 * @property {string} message
 */

/** The messages that answer a request (drawn hollow). */
export const RESPONSE_TYPES = new Set([
  "AppendEntriesResponse",
  "RequestVoteResponse",
  "PreVoteResponse",
  "InstallSnapshotResponse",
]);

/** A request type's normal name: the core's class names end in "Request". */
export function messageType(type) {
  if (!type) return "Message";
  if (type === "AppendEntriesRequest") return "AppendEntries";
  if (type === "RequestVoteRequest") return "RequestVote";
  if (type === "InstallSnapshotRequest") return "InstallSnapshot";
  return type;
}

export function isResponse(type) {
  return RESPONSE_TYPES.has(messageType(type));
}

// Terms are coloured by walking the hue circle by the golden angle, so that any two
// nearby terms look clearly different and the same term has the same colour in the
// ring, the log strips, the timeline and the messages.  Term 0 (nothing yet) is grey.
const GOLDEN_ANGLE = 137.508;
// Term 1 (the first leader of every cluster) comes out blue.
const HUE_OFFSET = 77.5;

/** One colour per term, the same everywhere on the page. */
export function termColor(term) {
  if (!term) return "hsl(220 9% 62%)";
  const hue = (HUE_OFFSET + term * GOLDEN_ANGLE) % 360;
  return `hsl(${hue.toFixed(1)} 62% 48%)`;
}

/** A pale version of the term's colour, for large areas and backgrounds. */
export function termTint(term) {
  if (!term) return "hsl(220 14% 94%)";
  const hue = (HUE_OFFSET + term * GOLDEN_ANGLE) % 360;
  return `hsl(${hue.toFixed(1)} 70% 92%)`;
}

/** The ink that reads on a term's colour. */
export function termInk(term) {
  return term ? "#fff" : "#1f2733";
}

/**
 * A lookup of the term of each index from the runs of a member's log.
 * @param {Array<[number, number]>} runs [first_index, term], sorted by first_index
 * @param {number} lastIndex the member's last_log_index
 * @returns {(index: number) => number|null} null for an index the log does not hold
 */
export function termLookup(runs, lastIndex) {
  const starts = (runs || []).map((r) => r[0]);
  const terms = (runs || []).map((r) => r[1]);
  return (index) => {
    if (index > lastIndex || starts.length === 0 || index < starts[0]) return null;
    // The last run starting at or before index (runs are few; binary search anyway,
    // a long-lived log can hold many terms).
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid] <= index) lo = mid;
      else hi = mid - 1;
    }
    return terms[lo];
  };
}

/** The role as the page spells it: the core writes "pre_candidate". */
export function normalizeRole(member) {
  if (!member) return null;
  if (member.voter === false && member.role !== "leader") return "learner";
  const role = member.role;
  return role ? String(role).replace("_", "-") : null;
}

/** A member's label: n<id>. */
export function memberLabel(id, state) {
  // Short and the same everywhere (ring, cards, logs, captions): n<id>. The member's own
  // name (node-8080 by default) is on its card, next to its address.
  if (id === null || id === undefined) return "nobody";
  return `n${id}`;
}

/** A list of labels in plain English: "n1, n2 and n4". */
export function labelList(ids, state) {
  const names = ids.map((id) => memberLabel(id, state));
  if (names.length <= 1) return names.join("");
  return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

const NUMBER = new Intl.NumberFormat("en-US");

/** 1042 -> "1,042". */
export function formatNumber(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  return NUMBER.format(Math.round(n));
}

/** A duration in ms in the unit a person reads best. */
export function formatMs(ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms < 1000) return `${formatNumber(ms)} ms`;
  return `${(ms / 1000).toFixed(ms < 10000 ? 1 : 0)} s`;
}

/** An election timer: "40 / 160 ms", "1.2 / 5.0 s". */
export function formatTimer(elapsedMs, timeoutMs) {
  if (!timeoutMs) return "–";
  const elapsed = elapsedMs || 0;
  if (timeoutMs < 1000) return `${formatNumber(elapsed)} / ${formatNumber(timeoutMs)} ms`;
  return `${(elapsed / 1000).toFixed(1)} / ${(timeoutMs / 1000).toFixed(1)} s`;
}

/** Bytes as kB/MB. */
export function formatBytes(n) {
  if (n === null || n === undefined) return "?";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} kB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** The member with this id in a state, or undefined. */
export function findMember(state, id) {
  return state && state.members ? state.members.find((m) => m.id === id) : undefined;
}

/** The leader of a state: the member it names, else the up member that says it leads with the highest term. */
export function leaderOf(state) {
  if (!state || !state.members) return undefined;
  if (state.leader !== null && state.leader !== undefined) {
    const m = findMember(state, state.leader);
    if (m) return m;
  }
  let best;
  for (const m of state.members) {
    if (m.up !== false && normalizeRole(m) === "leader" && (!best || m.term > best.term)) best = m;
  }
  return best;
}
