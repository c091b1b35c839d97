// The live source of the dashboard: a real cluster, read through each member's
// /v1/events websocket and turned into the view model of model.js.
//
// One socket per member. Each node sends its own status every 250 ms, its traces
// and log records as they happen, and the messages it sent and received, counted per
// link and type every 100 ms. This module keeps each member's latest status, marks a
// member down when its socket closes or its statuses stop for more than a second, and
// hands the Dashboard at most ten snapshots a second, so that a cluster at full write
// load still leaves the page fluid.
//
// HTTP calls (membership, leadership, faults) go to one member, shown in #connection;
// when it dies the page falls back to another. A node older than the status stream
// sends its status only in the first frame: the page then polls GET /v1/status.

import { mountControls, memberActions } from "./controls.js";
import { mountKeys } from "./keys.js";
import { HTTP_SCHEME, WS_SCHEME, introduce } from "./scheme.js";

const RENDER_INTERVAL_MS = 100; // at most ten snapshots a second
const STATUS_STALE_MS = 1000; // no status for this long: the member is down
const POLL_AFTER_MS = 600; // no status for this long on an open socket: ask over HTTP
const POLL_RETRY_MS = 5000;
const CHECK_INTERVAL_MS = 250;
const DEMO_POLL_MS = 1000;
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 4000;
const HTTP_TIMEOUT_MS = 8000;
const COALESCE_MS = 1000; // a burst of one noisy event from one member is one timeline row
const MAX_RECORDS = 20;
const EVENT_HOLD_MS = 300; // events wait this long, to be put in time order across members // raw records kept on a coalesced row

// Traces of every message: the message layer shows those, aggregated.
const MESSAGE_TRACES = new Set(["Send", "Receive"]);
// Events that come in bursts: one row per member and second, counting them.
const COALESCED = new Set([
  "AdvanceCommitIndex", "RejectAppend", "AppendRejected", "ReplicationStalled",
  "IgnoreVote", "SnapshotStalled", "LeaderUnreachable", "RetainLog",
]);
const ROLE_NAMES = { pre_candidate: "pre-candidate" };

/** Start the live view; resolves once the first members are known. */
export async function startLive(dashboard) {
  const cluster = new LiveCluster(dashboard);
  await cluster.start();
  return cluster;
}

/** Each member's events socket, its latest status and when it was heard from. */
class MemberLink {
  constructor(address, cluster) {
    this.address = address;
    this.cluster = cluster;
    this.status = null;
    this.heardAt = 0; // Date.now() of the last status
    this.statusEvents = 0; // statuses after the first frame: the node streams them
    this.open = false;
    this.closed = false;
    this.polling = false;
    this.pollFailedAt = 0; // a failed poll is not retried for a while (no CORS, or down)
    this.retryMs = RECONNECT_MIN_MS;
    this.socket = null;
    this.connect();
  }

  connect() {
    if (this.closed) return;
    introduce(this.address).then(() => this.openSocket());
  }

  openSocket() {
    if (this.closed) return;
    let socket;
    try {
      socket = new WebSocket(`${WS_SCHEME}://${this.address}/v1/events`);
    } catch (e) {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      this.open = true;
      this.retryMs = RECONNECT_MIN_MS;
      this.statusEvents = 0;
    };
    socket.onmessage = (message) => {
      let batch;
      try {
        batch = JSON.parse(message.data);
      } catch (e) {
        return;
      }
      for (const event of Array.isArray(batch) ? batch : []) this.cluster.onEvent(this, event);
    };
    socket.onclose = () => {
      const wasOpen = this.open;
      this.open = false;
      this.socket = null;
      if (wasOpen) this.cluster.changed();
      this.scheduleReconnect();
    };
  }

  scheduleReconnect() {
    if (this.closed) return;
    const wait = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, RECONNECT_MAX_MS);
    setTimeout(() => this.connect(), wait);
  }

  onStatus(status, streamed) {
    this.status = status;
    this.heardAt = Date.now();
    if (streamed) this.statusEvents += 1;
  }

  /** Up: the socket is open and, for a node that streams statuses, one came lately. */
  isUp(now) {
    if (!this.open || this.status === null) return false;
    if (this.statusEvents > 1) return now - this.heardAt <= STATUS_STALE_MS;
    return true;
  }

  close() {
    this.closed = true;
    if (this.socket) this.socket.close();
  }
}

export class LiveCluster {
  constructor(dashboard) {
    this.dashboard = dashboard;
    this.links = new Map(); // address -> MemberLink
    this.memberList = []; // [{id, name, address, voter}] from the most authoritative status
    this.demo = null; // {members: [...], slow} when the page is served by the demo supervisor
    this.primary = null; // id of the member HTTP calls go to
    this.servedBy = window.location.host; // the advertised address of the node serving the page
    this.faultsRefused = new Set(); // ids that answered 403 to a faults call
    this.wasUp = new Map(); // id -> up, to put "stopped answering" on the timeline
    this.firstLookDone = false; // the "Watching" row, once a leader is known
    this.firstLookAt = Date.now() + 3000;
    this.reportedDown = new Set(); // ids whose going down is on the timeline
    this.pendingMessages = [];
    this.pendingEvents = [];
    this.bursts = new Map(); // "node:event" -> coalesced event being built
    this.lastCommit = new Map(); // node -> commit index its last AdvanceCommitIndex row ended at
    this.listeners = [];
    this.dirty = true;
    this.renderTimer = null;
    this.lastRender = 0;
    this.state = null;
    this.connectionShown = null;
    this.timers = [];
    this.panels = []; // the keys and controls panels, each with stop()
    this.stopped = false;
  }

  async start() {
    const addresses = await this.discover();
    for (const address of addresses) this.link(address);
    // Give the first frames a moment, so that the first picture is not all grey.
    await this.waitFor(() => [...this.links.values()].some((l) => l.status !== null), 1500);
    if (this.stopped) return;
    this.timers.push(setInterval(() => this.check(), CHECK_INTERVAL_MS));
    if (this.demo) this.timers.push(setInterval(() => this.pollDemo(), DEMO_POLL_MS));
    const context = this.context();
    if (typeof this.dashboard.setActions === "function") this.dashboard.setActions(memberActions(context));
    const keys = document.getElementById("keys");
    if (keys) this.panels.push(mountKeys(keys, context));
    const controls = document.getElementById("controls");
    if (controls) this.panels.push(mountControls(controls, context));
    this.changed();
  }

  /** Close every socket and timer and empty the panels (the page switched to a replay). */
  stop() {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    clearTimeout(this.renderTimer);
    this.renderTimer = 0; // never null again: nothing more is scheduled
    for (const link of this.links.values()) link.close();
    this.links.clear();
    for (const panel of this.panels) panel.stop();
    this.panels = [];
    this.listeners = [];
  }

  /** The addresses to watch: the demo's nodes, or the members the serving node knows. */
  async discover() {
    const demo = await this.fetchJson("/demo/members");
    if (demo && Array.isArray(demo.members)) {
      this.demo = demo;
      return demo.members.map((m) => m.address);
    }
    const members = await this.fetchJson("/v1/members");
    const status = await this.fetchJson("/v1/status");
    // The page may be opened under another name than the node advertises
    // (localhost:8080 for 127.0.0.1:8080): calls to that node stay on the page's origin.
    if (status) {
      this.primary = status.id;
      this.servedBy = status.address;
    }
    const addresses = new Set([this.servedBy]);
    for (const m of members?.members ?? status?.members ?? []) if (m.address) addresses.add(m.address);
    return [...addresses];
  }

  async fetchJson(path) {
    try {
      const reply = await fetch(path, { signal: AbortSignal.timeout(3000) });
      return reply.ok ? await reply.json() : null;
    } catch (e) {
      return null;
    }
  }

  async waitFor(predicate, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    while (!predicate() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  }

  link(address) {
    if (!address || this.links.has(address)) return;
    this.links.set(address, new MemberLink(address, this));
  }

  // ------------------------------------------------------------------ incoming events

  onEvent(link, event) {
    switch (event.type) {
      case "status":
        link.onStatus(event, link.status !== null);
        this.learnMembers(event.members);
        this.changed();
        break;
      case "messages":
        this.onMessages(event);
        break;
      case "trace":
        this.onTrace(link, event);
        break;
      case "log":
        this.onLog(link, event);
        break;
      default:
        break; // "dropped": the node skipped events this page was too slow for
    }
  }

  onMessages(event) {
    // Requests are counted where they leave, answers where they arrive (the
    // receiver knows whether it was granted or succeeded): each message once.
    for (const s of event.sent ?? []) {
      if (s.type.endsWith("Response")) continue;
      this.pendingMessages.push({
        time: event.time, from: event.node, to: s.to, type: s.type, count: s.count ?? 1, entries: s.entries ?? 0,
      });
    }
    for (const r of event.received ?? []) {
      if (!r.type.endsWith("Response")) continue;
      const message = {
        time: event.time, from: r.from, to: event.node, type: r.type, count: r.count ?? 1, entries: r.entries ?? 0,
      };
      if (r.success !== undefined && r.success !== null) message.success = r.success;
      this.pendingMessages.push(message);
    }
    this.schedule();
  }

  onTrace(link, trace) {
    if (MESSAGE_TRACES.has(trace.event)) return;
    const event = {
      time: trace.time, node: trace.node, event: trace.event, term: trace.term,
      role: roleName(trace.role), fields: { ...(trace.fields ?? {}) }, records: [trace],
    };
    if (trace.event === "ConfigChange") this.refreshMembers();
    if (trace.event === "AdvanceCommitIndex" && trace.role !== "leader") return; // followers only follow
    if (COALESCED.has(trace.event)) this.coalesce(link, event);
    else this.emit(event);
  }

  onLog(link, record) {
    const named = record.event && record.event !== "log";
    if (!named && record.level !== "WARNING" && record.level !== "ERROR" && record.level !== "CRITICAL") return;
    const node = link.status ? link.status.id : null;
    this.emit({
      time: record.time, node, event: named ? record.event : "log", term: record.term,
      role: roleName(record.role), fields: { message: record.message, level: record.level }, records: [record],
    });
  }

  /** One row per member and event for a burst; it says how many and where it ended. */
  coalesce(link, event) {
    const key = `${event.node}:${event.event}`;
    const burst = this.bursts.get(key);
    if (burst) {
      burst.count += 1;
      Object.assign(burst.event.fields, event.fields, { count: burst.count });
      burst.event.term = event.term;
      burst.event.role = event.role;
      if (burst.event.records.length < MAX_RECORDS) burst.event.records.push(...event.records);
      return;
    }
    if (event.event === "AdvanceCommitIndex") {
      // Where the last row left it, or what the last status said (it may lag 250 ms).
      const below = [this.lastCommit.get(event.node), link.status?.commit_index]
        .filter((i) => typeof i === "number" && i < event.fields.commit_index);
      if (below.length) event.fields.previous_commit_index = Math.max(...below);
    }
    event.fields.count = 1;
    this.bursts.set(key, { event, count: 1, until: Date.now() + COALESCE_MS });
    this.schedule();
  }

  emit(event) {
    this.pendingEvents.push({ event, arrived: Date.now() });
    this.schedule();
  }

  /** Re-read the members after a configuration change (a learner added, a member removed). */
  async refreshMembers() {
    const reply = await this.request("GET", "/v1/members");
    if (reply.ok && Array.isArray(reply.body.members)) this.learnMembers(reply.body.members, true);
    for (const link of this.links.values()) if (link.open) this.pollStatus(link);
  }

  learnMembers(members, authoritative = false) {
    if (!Array.isArray(members)) return;
    for (const m of members) this.link(m.address);
    if (authoritative) {
      this.memberList = members;
      this.changed();
    }
  }

  async pollDemo() {
    const demo = await this.fetchJson("/demo/members");
    if (demo && Array.isArray(demo.members)) {
      this.demo = demo;
      for (const m of demo.members) this.link(m.address);
      this.changed();
    }
  }

  async pollStatus(link) {
    if (link.polling) return;
    link.polling = true;
    try {
      const reply = await fetch(this.url(link.address, "/v1/status"), { signal: AbortSignal.timeout(1000) });
      if (reply.ok) {
        link.onStatus({ type: "status", ...(await reply.json()) }, false);
        this.changed();
      } else {
        link.pollFailedAt = Date.now();
      }
    } catch (e) {
      // unreachable, or another origin without CORS: the socket decides whether it is up
      link.pollFailedAt = Date.now();
    } finally {
      link.polling = false;
    }
  }

  /** Every quarter second: poll quiet members, notice silent ones, end bursts. */
  check() {
    const now = Date.now();
    for (const link of this.links.values()) {
      const quiet = now - link.heardAt > POLL_AFTER_MS;
      if (link.open && quiet && now - link.pollFailedAt > POLL_RETRY_MS) this.pollStatus(link);
    }
    for (const [key, burst] of this.bursts) {
      if (burst.until <= now) {
        this.bursts.delete(key);
        if (burst.event.event === "AdvanceCommitIndex") this.lastCommit.set(burst.event.node, burst.event.fields.commit_index);
        this.emit(burst.event);
      }
    }
    this.changed(); // "last heard 3.2 s ago" moves on, and silence is noticed
  }

  // ------------------------------------------------------------------ the model

  changed() {
    this.dirty = true;
    this.schedule();
  }

  schedule() {
    if (this.renderTimer !== null) return;
    const wait = Math.max(0, RENDER_INTERVAL_MS - (Date.now() - this.lastRender));
    this.renderTimer = setTimeout(() => this.flush(), wait);
  }

  flush() {
    this.renderTimer = null;
    this.lastRender = Date.now();
    if (this.dirty) {
      this.dirty = false;
      this.state = this.buildState(Date.now());
      this.noteUpDown(this.state);
      this.noteFirstLook(this.state);
      this.choosePrimary(this.state);
      this.dashboard.render(this.state);
      for (const listener of this.listeners) listener(this.state);
    }
    if (this.pendingMessages.length) {
      const messages = this.pendingMessages;
      this.pendingMessages = [];
      this.dashboard.showMessages(messages);
    }
    if (this.pendingEvents.length) {
      // Each member's events come on its own socket: holding them a moment lets
      // the timeline show a vote before the victory it made possible.
      const ripe = Date.now() - EVENT_HOLD_MS;
      const events = this.pendingEvents.filter((e) => e.arrived <= ripe).map((e) => e.event);
      this.pendingEvents = this.pendingEvents.filter((e) => e.arrived > ripe);
      if (events.length) this.dashboard.addEvents(events.sort((a, b) => a.time - b.time));
      if (this.pendingEvents.length) this.schedule();
    }
  }

  /** The statuses of members that answer, freshest view of the configuration first. */
  liveStatuses(now) {
    const statuses = [];
    for (const link of this.links.values()) if (link.isUp(now)) statuses.push(link.status);
    return statuses.sort(
      (a, b) => b.term - a.term || (b.role === "leader") - (a.role === "leader") || b.commit_index - a.commit_index,
    );
  }

  buildState(now) {
    const statuses = this.liveStatuses(now);
    // The leader of the highest term knows the configuration best; a follower's list
    // is the same once the change reached it.
    const best = statuses[0];
    let list = best ? best.members : this.memberList;
    if (best) {
      this.memberList = list;
      this.forgetRemoved(list);
    }
    if (!list || !list.length) list = [...this.links.values()].filter((l) => l.status).map((l) => describeSelf(l.status));
    const members = list.map((m) => this.buildMember(m, now)).sort((a, b) => a.id - b.id);
    const leaders = members.filter((m) => m.up && m.role === "leader").sort((a, b) => b.term - a.term);
    return { time: now / 1000, members, leader: leaders.length ? leaders[0].id : null };
  }

  buildMember(info, now) {
    const link = info.address ? this.links.get(info.address) : undefined;
    const s = link && link.status && link.status.id === info.id ? link.status : null;
    const supervised = this.supervised(info.address);
    const up = Boolean(s && link.isUp(now)) && (!supervised || supervised.state === "running");
    const voter = s && typeof s.voter === "boolean" ? s.voter : info.voter;
    // A member that does not answer has no role we could vouch for: its last word
    // may be "leader" while another leads (only a learner stays one while down).
    let role = s && up ? roleName(s.role) : null;
    if (!voter && (role === "follower" || role === null)) role = "learner";
    const member = {
      id: info.id, name: info.name ?? (s ? s.name : `node-${info.id}`), address: info.address ?? null, voter, up,
      last_heard: link && link.heardAt ? link.heardAt / 1000 : null,
      role, term: s ? s.term : 0, voted_for: s ? s.voted_for ?? null : null, leader: s ? s.leader : null,
      commit_index: s ? s.commit_index : 0, applied_index: s ? s.applied_index : 0,
      last_log_index: s ? s.last_log_index : 0, snapshot_index: s ? s.snapshot_index : 0,
      log_terms: s && Array.isArray(s.log_terms) ? s.log_terms : [],
      election_elapsed_ms: s ? s.election_elapsed_ms ?? null : null,
      election_timeout_ms: s ? s.election_timeout_ms ?? null : null,
      heartbeat_ms: s ? s.heartbeat_ms ?? null : null,
      lease_remaining_ms: s ? s.lease_remaining_ms ?? null : null,
      health: !up ? "down" : s.leader !== null && s.applied_index >= s.commit_index ? "ok" : "unhealthy",
      progress: s ? s.progress ?? null : null,
      faults: s ? s.faults ?? null : null,
      faults_enabled: s && typeof s.faults_enabled === "boolean" ? s.faults_enabled && !this.faultsRefused.has(info.id)
        : !this.faultsRefused.has(info.id),
      supervised,
    };
    return member;
  }

  /** Close the sockets of members no longer in the configuration (nor run by the demo). */
  forgetRemoved(list) {
    const keep = new Set(list.map((m) => m.address));
    for (const m of this.demo ? this.demo.members : []) keep.add(m.address);
    for (const [address, link] of this.links) {
      if (keep.has(address)) continue;
      link.close();
      this.links.delete(address);
    }
  }

  supervised(address) {
    if (!this.demo || !address) return null;
    const m = this.demo.members.find((d) => d.address === address);
    if (!m) return null;
    const state = m.state === "exited" ? "stopped" : m.state;
    return { pid: m.pid ?? null, state, port: m.port, since: m.since ?? null };
  }

  /** The timeline's first row: what the cluster looks like when the page starts watching
   * (the elections before that are in node.log, not on the page). */
  noteFirstLook(state) {
    if (this.firstLookDone) return;
    const leader = state.members.find((m) => m.up && m.role === "leader");
    if (!leader || state.members.some((m) => m.up && m.term === 0)) return;
    // Give every member's first status a moment to arrive before calling one down.
    if (state.members.some((m) => !m.up) && Date.now() < this.firstLookAt) return;
    this.firstLookDone = true;
    this.emit({
      time: state.time, node: leader.id, event: "Watching", term: leader.term, role: "leader",
      fields: {
        leader: leader.id, commit_index: leader.commit_index,
        up: state.members.filter((m) => m.up).map((m) => m.id),
        down: state.members.filter((m) => !m.up).map((m) => m.id),
      },
      records: [],
    });
  }

  /** A member that stops answering, or comes back, is a row on the timeline. */
  noteUpDown(state) {
    for (const m of state.members) {
      const before = this.wasUp.get(m.id);
      this.wasUp.set(m.id, m.up);
      // Only a member seen up goes down, and only one seen down comes back: the
      // first connections of the page are not news.
      if (before !== true && !(before === false && this.reportedDown.has(m.id))) continue;
      if (before === m.up) continue;
      if (m.up) this.reportedDown.delete(m.id);
      else this.reportedDown.add(m.id);
      const fields = { address: m.address, last_heard: m.last_heard };
      if (m.supervised) fields.supervised = m.supervised.state;
      this.emit({
        time: state.time, node: m.id, event: m.up ? "MemberUp" : "MemberDown", term: m.term, role: m.role, fields,
        records: [],
      });
    }
  }

  /** The member HTTP calls go to: the one serving the page while it answers. */
  choosePrimary(state) {
    const up = state.members.filter((m) => m.up);
    const current = up.find((m) => m.id === this.primary);
    const served = this.demo ? undefined : up.find((m) => m.address === this.servedBy);
    const next = served ?? current ?? up.find((m) => m.id === state.leader) ?? up[0];
    if (next) this.primary = next.id;
    const chosen = state.members.find((m) => m.id === this.primary);
    const ok = Boolean(chosen && chosen.up);
    const text = !chosen ? "no member answers"
      : `reading from ${chosen.name} (${chosen.address})${chosen.up ? "" : ": not answering"}`;
    const key = `${text}|${ok}`;
    if (key === this.connectionShown) return;
    this.connectionShown = key;
    if (typeof this.dashboard.setConnection === "function") {
      this.dashboard.setConnection(text, chosen ? chosen.id : null, ok);
      return;
    }
    const label = document.getElementById("connection");
    if (!label) return;
    label.dataset.member = chosen ? String(chosen.id) : "";
    label.textContent = text;
  }

  // ------------------------------------------------------------------ calls to the cluster

  url(address, path) {
    return address === this.servedBy ? path : `${HTTP_SCHEME}://${address}${path}`;
  }

  member(id) {
    return this.state ? this.state.members.find((m) => m.id === id) ?? null : null;
  }

  /** Members to try, the connection's member first, then the others that answer. */
  candidates() {
    const members = this.state ? this.state.members : [];
    const up = members.filter((m) => m.up && m.address);
    up.sort((a, b) => (b.id === this.primary) - (a.id === this.primary));
    return up.length ? up : members.filter((m) => m.address);
  }

  /**
   * One HTTP call: to `member` (an id) when given, else to the connection's member,
   * falling back to the others when it cannot be reached.
   * Resolves to {ok, status, body, member}; body is the JSON answer or {error, code}.
   */
  async request(method, path, body, { member = null, timeoutMs = HTTP_TIMEOUT_MS } = {}) {
    const targets = member !== null ? [this.member(member) ?? { id: member, address: null }] : this.candidates();
    let failure = "no member is known";
    for (const target of targets) {
      if (!target.address) continue;
      const init = { method, signal: AbortSignal.timeout(timeoutMs) };
      if (body !== undefined) {
        init.headers = { "Content-Type": "application/json" };
        init.body = JSON.stringify(body);
      }
      let reply;
      try {
        reply = await fetch(this.url(target.address, path), init);
      } catch (e) {
        failure = `${target.name ?? target.address} could not be reached (${e.message})`;
        continue;
      }
      const answer = await readBody(reply);
      if (reply.status === 403 && path.startsWith("/v1/admin/faults")) {
        this.faultsRefused.add(target.id);
        this.changed();
      }
      return { ok: reply.ok, status: reply.status, body: answer, member: target.id };
    }
    return { ok: false, status: 0, body: { error: `${method} ${path}: ${failure}`, code: "unreachable" }, member: null };
  }

  /** A call to the demo supervisor that serves the page. */
  async demoRequest(method, path, body) {
    const init = { method, signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) };
    if (body !== undefined) {
      init.headers = { "Content-Type": "application/json" };
      init.body = JSON.stringify(body);
    }
    try {
      const reply = await fetch(path, init);
      const answer = await readBody(reply);
      setTimeout(() => this.pollDemo(), 100);
      return { ok: reply.ok, status: reply.status, body: answer, member: null };
    } catch (e) {
      return { ok: false, status: 0, body: { error: `${method} ${path}: ${e.message}`, code: "unreachable" }, member: null };
    }
  }

  /** What keys.js and controls.js may use. */
  context() {
    return {
      state: () => this.state,
      member: (id) => this.member(id),
      primary: () => this.member(this.primary),
      candidates: () => this.candidates(),
      demo: () => this.demo,
      request: (method, path, body, options) => this.request(method, path, body, options),
      demoRequest: (method, path, body) => this.demoRequest(method, path, body),
      onState: (listener) => {
        this.listeners.push(listener);
        if (this.state) listener(this.state);
      },
      refresh: () => this.refreshMembers(),
    };
  }
}

function roleName(role) {
  return role ? ROLE_NAMES[role] ?? role : null;
}

function describeSelf(status) {
  return { id: status.id, name: status.name, address: status.address, voter: status.voter ?? true };
}

async function readBody(reply) {
  const text = await reply.text();
  try {
    return JSON.parse(text);
  } catch (e) {
    return { error: text || `HTTP ${reply.status}`, code: reply.ok ? "not_json" : `http_${reply.status}` };
  }
}
