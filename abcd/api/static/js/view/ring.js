// The members on a ring, as in RaftScope: each a circle in its term's colour, with its
// election timer drawn as an arc that empties, so a person sees *why* a member times
// out.  The leader's arc is its check-quorum lease instead.

import { formatMs, leaderOf, memberLabel, normalizeRole, termColor, termTint } from "../model.js";
import { setAttr, setText, svg } from "./svg.js";

export const RING_SIZE = 460;
const CENTER = RING_SIZE / 2;
const RADIUS = 160;
export const NODE_RADIUS = 38;
const ARC_RADIUS = NODE_RADIUS + 8;
const ARC_LENGTH = 2 * Math.PI * ARC_RADIUS;

export class RingView {
  /**
   * @param {SVGSVGElement} root the ring's <svg>, with groups .ring-links and .ring-nodes
   * @param {{animateTimers: boolean}} options animate timers between renders (live)
   */
  constructor(root, { animateTimers }) {
    this.root = root;
    this.links = root.querySelector(".ring-links");
    this.nodesLayer = root.querySelector(".ring-nodes");
    this.center = root.querySelector(".ring-center");
    this.positions = new Map();
    this.nodes = new Map();
    this.linkEls = new Map();
    this.layoutKey = "";
    this.animateTimers = animateTimers;
    this.timers = new Map(); // id -> {elapsed, timeout, lease, at}
    this.highlighted = new Set();
    this.votes = new Map(); // candidate id -> {pre, voters}: filled from GrantVote events
    if (animateTimers) this._tick = this._tick.bind(this);
  }

  /** Where a member sits, for the messages layer. */
  position(id) {
    return this.positions.get(id);
  }

  render(state) {
    const members = state.members || [];
    const key = members.map((m) => m.id).join(",");
    if (key !== this.layoutKey) this._layout(members, key);
    const leader = leaderOf(state);
    for (const m of members) this._renderNode(m, state, leader);
    this._renderLinks(members);
    this._renderCenter(state, leader);
    if (this.animateTimers && !this.raf) this.raf = requestAnimationFrame(this._tick);
  }

  highlight(ids) {
    this.highlighted = new Set(ids || []);
    for (const [id, n] of this.nodes) n.group.classList.toggle("violating", this.highlighted.has(id));
  }

  _layout(members, key) {
    this.layoutKey = key;
    this.positions.clear();
    const n = members.length;
    members.forEach((m, i) => {
      const angle = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(n, 1);
      const r = n === 1 ? 0 : RADIUS;
      this.positions.set(m.id, { x: CENTER + r * Math.cos(angle), y: CENTER + r * Math.sin(angle) });
    });
    this.nodesLayer.replaceChildren();
    this.links.replaceChildren();
    this.nodes.clear();
    this.linkEls.clear();
    for (let i = 0; i < members.length; i++) {
      for (let j = i + 1; j < members.length; j++) {
        const a = this.positions.get(members[i].id);
        const b = this.positions.get(members[j].id);
        const line = svg("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y, class: "ring-link" }, this.links);
        const title = svg("title", {}, line);
        this.linkEls.set(`${members[i].id}-${members[j].id}`, { line, title, a: members[i].id, b: members[j].id });
      }
    }
    for (const m of members) this.nodes.set(m.id, this._makeNode(m));
  }

  _makeNode(m) {
    const p = this.positions.get(m.id);
    const group = svg("g", { class: "ring-node", "data-id": m.id, transform: `translate(${p.x.toFixed(1)} ${p.y.toFixed(1)})` }, this.nodesLayer);
    const title = svg("title", {}, group);
    svg("circle", { class: "halo", r: NODE_RADIUS + 16 }, group);
    svg("circle", { class: "timer-track", r: ARC_RADIUS }, group);
    const arc = svg("circle", {
      class: "timer-arc", r: ARC_RADIUS, "stroke-dasharray": ARC_LENGTH.toFixed(2), "stroke-dashoffset": 0, transform: "rotate(-90)",
    }, group);
    const body = svg("circle", { class: "node-body", r: NODE_RADIUS }, group);
    const name = svg("text", { class: "node-name", y: -4 }, group);
    const term = svg("text", { class: "node-term", y: 14 }, group);
    const role = svg("text", { class: "node-role", y: NODE_RADIUS + 26 }, group);
    const note = svg("text", { class: "node-note", y: NODE_RADIUS + 40 }, group);
    // The leader wears a crown above its timer.
    const crown = svg("path", { class: "crown", d: "M-11 0 l-3 -11 l8 5 l6 -9 l6 9 l8 -5 l-3 11 z", transform: `translate(0 ${-(ARC_RADIUS + 6)})` }, group);
    return { group, title, arc, body, name, term, role, note, crown };
  }

  _renderNode(m, state, leader) {
    const n = this.nodes.get(m.id);
    if (!n) return;
    const role = normalizeRole(m);
    const up = m.up !== false;
    const g = n.group;
    setAttr(g, "data-role", up ? role || "unknown" : "down");
    setAttr(g, "data-up", up ? "true" : "false");
    g.classList.toggle("learner", m.voter === false);
    g.classList.toggle("down", !up);
    g.classList.toggle("is-leader", up && leader !== undefined && leader.id === m.id);
    const color = up ? termColor(m.term) : "#c3c9d1";
    setAttr(n.body, "fill", m.voter === false && up ? termTint(m.term) : color);
    setAttr(n.body, "stroke", up ? color : "#98a1ad");
    setAttr(n.arc, "stroke", color);
    setText(n.name, memberLabel(m.id, state));
    setText(n.term, up ? `term ${m.term}` : "down");
    let roleText = role || "?";
    if (!up) roleText = "down";
    const campaign = this.votes.get(m.id);
    if (up && campaign && (role === "candidate" || role === "pre-candidate") && campaign.pre === (role === "pre-candidate")) {
      // A majority of the voters wins: show how far this campaign is.
      const voters = (state.members || []).filter((x) => x.voter !== false).length;
      const need = Math.floor(voters / 2) + 1;
      roleText = `${role} · ${campaign.voters.size}/${need} ${role === "candidate" ? "votes" : "pre-votes"}`;
    }
    setText(n.role, roleText);
    let note = "";
    if (!up) {
      if (m.last_heard !== null && m.last_heard !== undefined && state.time !== undefined) {
        note = `last heard ${Math.max(0, state.time - m.last_heard).toFixed(1)} s ago`;
      }
    } else if (role === "leader" && m.lease_remaining_ms !== null && m.lease_remaining_ms !== undefined) {
      note = `lease ${formatMs(m.lease_remaining_ms)}`;
    } else if (m.election_timeout_ms) {
      note = `timer ${formatMs(m.election_elapsed_ms || 0)} / ${formatMs(m.election_timeout_ms)}`;
    }
    setText(n.note, note);
    n.title.textContent = `${memberLabel(m.id, state)} (id ${m.id}) · ${roleText} · term ${m.term}` +
      (m.voted_for !== null && m.voted_for !== undefined ? ` · voted for ${memberLabel(m.voted_for, state)}` : "");
    this.timers.set(m.id, {
      up,
      leader: role === "leader",
      elapsed: m.election_elapsed_ms,
      timeout: m.election_timeout_ms,
      lease: m.lease_remaining_ms,
      at: performance.now(),
    });
    this._drawArc(m.id, 0);
  }

  // The fraction of the arc left: what remains of the election timeout for a follower
  // or candidate, what remains of the lease for a leader.
  _drawArc(id, sinceMs) {
    const n = this.nodes.get(id);
    const t = this.timers.get(id);
    if (!n || !t) return;
    let left = null;
    if (t.up && t.timeout) {
      if (t.leader) {
        if (t.lease !== null && t.lease !== undefined) left = (t.lease - sinceMs) / t.timeout;
      } else if (t.elapsed !== null && t.elapsed !== undefined) {
        left = 1 - (t.elapsed + sinceMs) / t.timeout;
      }
    }
    const visible = left !== null;
    n.arc.style.display = visible ? "" : "none";
    if (visible) {
      const f = Math.min(1, Math.max(0, left));
      setAttr(n.arc, "stroke-dashoffset", (ARC_LENGTH * (1 - f)).toFixed(1));
      n.arc.classList.toggle("lease", t.leader);
      n.arc.classList.toggle("urgent", !t.leader && f < 0.25);
    }
  }

  // Live: a status arrives every 250 ms or so; between two, the timers keep moving.
  _tick() {
    const now = performance.now();
    for (const [id, t] of this.timers) this._drawArc(id, now - t.at);
    this.raf = requestAnimationFrame(this._tick);
  }

  stop() {
    if (this.raf) cancelAnimationFrame(this.raf);
    this.raf = null;
    this.animateTimers = false;
  }

  _renderLinks(members) {
    const byId = new Map(members.map((m) => [m.id, m]));
    for (const link of this.linkEls.values()) {
      const a = byId.get(link.a);
      const b = byId.get(link.b);
      const ab = cutState(a, link.b);
      const ba = cutState(b, link.a);
      const cut = ab.cut || ba.cut;
      const slow = ab.slow || ba.slow;
      link.line.classList.toggle("cut", cut);
      link.line.classList.toggle("slow", !cut && slow);
      link.line.classList.toggle("down", !a || !b || a.up === false || b.up === false);
      const words = [];
      if (ab.cut) words.push(`${a.name || "n" + a.id} → ${b.name || "n" + b.id} cut`);
      if (ba.cut) words.push(`${b.name || "n" + b.id} → ${a.name || "n" + a.id} cut`);
      if (slow) words.push("delay or loss on this link");
      link.title.textContent = words.join(", ") || "link ok";
    }
  }

  _renderCenter(state, leader) {
    if (!this.center) return;
    const label = this.center.querySelector(".center-label");
    const sub = this.center.querySelector(".center-sub");
    if (leader) {
      setText(label, `leader ${memberLabel(leader.id, state)}`);
      setText(sub, `term ${leader.term} · commit ${leader.commit_index}`);
      setAttr(label, "fill", termColor(leader.term));
    } else {
      setText(label, "no leader");
      const top = Math.max(0, ...(state.members || []).map((m) => m.term || 0));
      setText(sub, top ? `highest term ${top}` : "");
      setAttr(label, "fill", "#5b6573");
    }
  }
}

// Whether member `m`'s own fault settings cut or slow its messages to `peer`.
function cutState(m, peer) {
  const f = m && m.faults;
  if (!f) return { cut: false, slow: false };
  const inList = (list) => Array.isArray(list) && list.map(Number).includes(peer);
  const cut = inList(f.partition) || inList(f.cut_to);
  const link = f.links && (f.links[peer] || f.links[String(peer)]);
  const slow = Boolean(f.delay_ms || f.drop_rate || (link && (link.delay_ms || link.drop_rate)));
  return { cut, slow };
}
