// Messages as dots that travel between members: requests full, answers hollow, a
// granted vote ticked, AppendEntries labelled with the entries they carry.  At most
// MAX_DOTS travel at once; the rest are counted per link and shown as a number on the
// link, so that thousands of messages a second cost the page a few dozen elements.

import { findMember, formatNumber, isResponse, messageType, termColor } from "../model.js";
import { svg } from "./svg.js";

export const MAX_DOTS = 60;
// Dots in flight on one link in one direction: past that, a busy link shows its count.
const MAX_PER_LINK = 3;
// Labels on the dots (entries carried, messages aggregated) only while few dots fly;
// past that they would hide each other, and the links' counts say it.
const LABELS_UNDER = 8;
// Rare messages that explain an election or a snapshot are drawn even past the cap.
const ALWAYS_DRAWN = new Set(["RequestVote", "RequestVoteResponse", "PreVote", "PreVoteResponse", "InstallSnapshot", "InstallSnapshotResponse", "TimeoutNow"]);
const MAX_ALWAYS = 40;
const SIDE_OFFSET = 7; // requests and answers on one link travel on either side of it
// How long a link's count stays after its last message (it fades for the last 500 ms).
const COUNT_LABEL_MS = 1500;

export class MessagesLayer {
  /**
   * @param {SVGGElement} layer the #messages group
   * @param {(id: number) => {x: number, y: number}|undefined} position where a member sits
   * @param {number} nodeRadius dots leave and arrive at the edge of the members' circles
   */
  constructor(layer, position, nodeRadius) {
    this.layer = layer;
    this.position = position;
    this.nodeRadius = nodeRadius;
    this.dots = [];
    this.labels = new Map(); // "from-to" -> {el, count, until}
    this.perLink = new Map(); // "from-to" -> dots in flight
    this.duration = 700;
    this.state = null;
    this.dotsLayer = svg("g", { class: "dots" }, layer);
    this.labelsLayer = svg("g", { class: "link-counts" }, layer);
    this._frame = this._frame.bind(this);
    this.raf = null;
    this.stopped = false;
  }

  /** How long a dot takes to travel, in ms of wall time. */
  setDuration(ms) {
    this.duration = Math.max(150, ms);
  }

  setState(state) {
    this.state = state;
  }

  show(messages) {
    if (this.stopped) return;
    const now = performance.now();
    const overflow = new Map(); // "from-to" -> [count, a, b, m]: DOM written once per link
    const over = (m, a, b, key, count) => {
      const o = overflow.get(key);
      if (o) o[0] += count;
      else overflow.set(key, [count, a, b, m]);
    };
    for (const m of messages) {
      const type = messageType(m.type);
      const a = this.position(m.from);
      const b = this.position(m.to);
      if (!a || !b || m.from === m.to) continue;
      const count = m.count || 1;
      const rare = ALWAYS_DRAWN.has(type);
      const key = `${m.from}-${m.to}`;
      const onLink = this.perLink.get(key) || 0;
      const room = this.dots.length < MAX_DOTS && onLink < MAX_PER_LINK;
      if (room || (rare && this.dots.length < MAX_DOTS + MAX_ALWAYS)) {
        const dot = this._dot(m, type, a, b, now);
        dot.key = key;
        this.perLink.set(key, onLink + 1);
        this.dots.push(dot);
        if (count > 1) over(m, a, b, key, count - 1);
      } else {
        over(m, a, b, key, count);
      }
    }
    for (const [, [count, a, b, m]] of overflow) this._count(m, a, b, count, now);
    if (!this.raf) this.raf = requestAnimationFrame(this._frame);
  }

  clear() {
    for (const d of this.dots) d.el.remove();
    this.dots = [];
    this.perLink.clear();
    for (const l of this.labels.values()) l.el.remove();
    this.labels.clear();
  }

  stop() {
    this.stopped = true;
    this.clear();
    if (this.raf) cancelAnimationFrame(this.raf);
    this.raf = null;
  }

  _dot(m, type, a, b, now) {
    const sender = findMember(this.state, m.from);
    const color = termColor(sender ? sender.term : 0);
    const response = isResponse(type);
    const g = svg("g", { class: `dot ${response ? "response" : "request"}`, "data-type": type, "data-from": m.from, "data-to": m.to }, this.dotsLayer);
    const style = response ? { fill: "#fff", stroke: color } : { fill: color, stroke: color };
    if (type === "RequestVote" || type === "PreVote" || type === "RequestVoteResponse" || type === "PreVoteResponse") {
      svg("rect", { x: -6, y: -6, width: 12, height: 12, transform: "rotate(45)", ...style, class: type.startsWith("PreVote") ? "shape pre" : "shape" }, g);
      if (response && m.success === true) svg("path", { class: "mark granted", d: "M-4 0 l3 3 l5 -6" }, g);
      if (response && m.success === false) svg("path", { class: "mark refused", d: "M-3 -3 l6 6 M3 -3 l-6 6" }, g);
    } else if (type === "InstallSnapshot" || type === "InstallSnapshotResponse") {
      svg("rect", { x: -7, y: -7, width: 14, height: 14, rx: 2, ...style, class: "shape" }, g);
    } else if (type === "TimeoutNow") {
      svg("path", { d: "M0 -9 L8 6 L-8 6 Z", ...style, class: "shape" }, g);
    } else {
      const heartbeat = type === "Heartbeat" || (type === "AppendEntries" && !m.entries);
      svg("circle", { r: heartbeat ? 4 : 6.5, ...style, class: "shape" }, g);
      if (response && m.success === false) svg("path", { class: "mark refused", d: "M-3 -3 l6 6 M3 -3 l-6 6" }, g);
    }
    const labelled = this.dots.length < LABELS_UNDER;
    if (labelled && !response && m.entries) {
      const t = svg("text", { class: "dot-label", x: 9, y: -7 }, g);
      t.textContent = `+${formatNumber(m.entries)}`;
    }
    if (labelled && (m.count || 1) > 1) {
      const t = svg("text", { class: "dot-label count", x: 9, y: 12 }, g);
      t.textContent = `×${formatNumber(m.count)}`;
    }
    const title = svg("title", {}, g);
    title.textContent = describe(m, type);
    return { el: g, from: edge(a, b, this.nodeRadius, SIDE_OFFSET), to: edge(b, a, this.nodeRadius, -SIDE_OFFSET), start: now, duration: this.duration };
  }

  // Messages past the cap: a number on their link, near the sender, that fades.
  _count(m, a, b, count, now) {
    const key = `${m.from}-${m.to}`;
    let label = this.labels.get(key);
    if (!label) {
      // On the link, a third of the way from the sender: clear of the members' labels.
      const p = edge(a, b, Math.hypot(b.x - a.x, b.y - a.y) * 0.36, SIDE_OFFSET + 8);
      const el = svg("text", { class: "link-count", x: p.x.toFixed(1), y: p.y.toFixed(1) }, this.labelsLayer);
      label = { el, count: 0, until: 0, since: now, rate: null };
      this.labels.set(key, label);
      label.el.setAttribute("transform", rotationAt(a, b, label.el));
    }
    // A link that stays busy shows messages per second over the last second, not a
    // total that grows for ever.
    if (now - label.since >= 1000) {
      label.rate = (label.count * 1000) / (now - label.since);
      label.count = 0;
      label.since = now;
    }
    label.count += count;
    label.until = now + COUNT_LABEL_MS;
    // The arrow points the way the messages go, whichever way the text reads.
    const n = label.rate === null ? formatNumber(label.count) : `${formatNumber(label.rate)}/s`;
    label.el.textContent = label.el.classList.contains("flipped") ? `‹ ${n}` : `${n} ›`;
    label.el.style.opacity = 1;
  }

  _frame(now) {
    this.raf = null;
    const keep = [];
    for (const d of this.dots) {
      const t = (now - d.start) / d.duration;
      if (t >= 1) {
        d.el.remove();
        const left = (this.perLink.get(d.key) || 1) - 1;
        if (left > 0) this.perLink.set(d.key, left);
        else this.perLink.delete(d.key);
        continue;
      }
      const k = Math.max(0, t);
      // Ease in and out, so a dot is readable as it leaves and arrives.
      const e = k < 0.5 ? 2 * k * k : 1 - Math.pow(-2 * k + 2, 2) / 2;
      const x = d.from.x + (d.to.x - d.from.x) * e;
      const y = d.from.y + (d.to.y - d.from.y) * e;
      d.el.setAttribute("transform", `translate(${x.toFixed(1)} ${y.toFixed(1)})`);
      keep.push(d);
    }
    this.dots = keep;
    for (const [key, label] of this.labels) {
      const left = label.until - now;
      if (left <= 0) {
        label.el.remove();
        this.labels.delete(key);
      } else if (left < 500) {
        label.el.style.opacity = (left / 500).toFixed(2);
      }
    }
    if (this.dots.length || this.labels.size) this.raf = requestAnimationFrame(this._frame);
  }
}

// The point at distance r from a towards b, moved `side` px to the right of the way.
function edge(a, b, r, side) {
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const len = Math.hypot(dx, dy) || 1;
  const ux = dx / len;
  const uy = dy / len;
  return { x: a.x + ux * r - uy * side, y: a.y + uy * r + ux * side };
}

function rotationAt(a, b, el) {
  let angle = (Math.atan2(b.y - a.y, b.x - a.x) * 180) / Math.PI;
  let flip = false;
  if (angle > 90 || angle < -90) {
    angle += 180;
    flip = true;
  }
  el.classList.toggle("flipped", flip);
  return `rotate(${angle.toFixed(1)} ${el.getAttribute("x")} ${el.getAttribute("y")})`;
}

function describe(m, type) {
  const parts = [`${type} n${m.from} → n${m.to}`];
  if (m.count > 1) parts.push(`${formatNumber(m.count)} messages`);
  if (m.entries) parts.push(`${formatNumber(m.entries)} entries`);
  if (m.success === true) parts.push(type.includes("Vote") ? "granted" : "success");
  if (m.success === false) parts.push(type.includes("Vote") ? "refused" : "rejected");
  return parts.join(", ");
}
