// The dashboard: one drawing code for a live cluster and a replayed simulator run.
// Sources (live.js, replay.js) hand it model objects (model.js) and it draws them.

import { memberLabel } from "../model.js";
import { CardsView } from "./cards.js";
import { LogsView } from "./logs.js";
import { MessagesLayer } from "./messages.js";
import { NODE_RADIUS, RingView } from "./ring.js";
import { html, setAttr, setText } from "./svg.js";
import { TimelineView } from "./timeline.js";

export class Dashboard {
  /**
   * @param {HTMLElement|Document} root the page (holds #cluster, #messages, #logs, #timeline...)
   * @param {{mode: "live"|"replay", actions?: object}} options `actions`: member-card
   *   callbacks by name (isolate, heal, kill, stop, restart, transfer, remove, promote)
   *   and disabledReason(id, action) -> string|null; a missing callback shows no button
   */
  constructor(root, { mode = "live", actions = {} } = {}) {
    const $ = (sel) => root.querySelector(sel);
    this.root = root;
    this.mode = mode;
    this.state = null;
    this.retired = false;
    this.ring = new RingView($("#ring"), { animateTimers: mode === "live" });
    this.cards = new CardsView($("#cluster .cards"), actions);
    this.messages = new MessagesLayer($("#messages"), (id) => this.ring.position(id), NODE_RADIUS);
    this.logs = new LogsView($("#logs"), { live: mode === "live" });
    this.timeline = new TimelineView($("#timeline"), $("#event-detail"), { mode });
    this.violation = $("#violation");
    this.connection = $("#connection");
    this.notice = $("#notice");
    this._filters($("#timeline-filter"));
  }

  /** Draw a snapshot of the cluster: ring, cards, log strips. */
  render(state) {
    if (this.retired || !state) return;
    // The state before this one: some sentences need it (the timeout that just expired).
    this.previous = this.state;
    this.state = state;
    this.ring.render(state);
    this.cards.render(state);
    this.logs.render(state);
    this.messages.setState(state);
  }

  /** Animate messages travelling between members (aggregated past a few dozen). */
  showMessages(messages) {
    if (this.retired || !messages || !messages.length) return;
    this.messages.show(messages);
  }

  /** Add events (oldest first) to the timeline, each with its caption. */
  addEvents(events) {
    if (this.retired) return;
    this.timeline.add(events, this.state, this.previous);
    if (this._countVotes(events) && this.state) this.ring.render(this.state);
  }

  /** Show a broken invariant (replays), or hide the banner with null. */
  showViolation(v) {
    if (this.retired) return;
    const el = this.violation;
    if (!v) {
      el.hidden = true;
      setAttr(el, "data-invariant", "");
      setAttr(el, "data-members", "");
      this.ring.highlight([]);
      this.cards.highlight([]);
      return;
    }
    const members = v.members || [];
    setAttr(el, "data-invariant", v.invariant || "");
    setAttr(el, "data-members", members.join(","));
    el.replaceChildren();
    html("strong", { class: "violation-title", text: `${v.invariant || "An invariant"} broken` }, el);
    const where = [];
    if (v.step !== undefined && v.step !== null) where.push(`at step ${v.step}`);
    if (v.time !== undefined && v.time !== null) where.push(`t = ${Number(v.time).toFixed(3)} s`);
    if (members.length) where.push(`members ${members.map((id) => memberLabel(id, this.state)).join(", ")}`);
    html("span", { class: "violation-where", text: where.join(" · ") }, el);
    if (v.message) html("span", { class: "violation-message", text: v.message }, el);
    el.hidden = false;
    this.ring.highlight(members);
    this.cards.highlight(members);
  }

  // ---------------------------------------------------------------- for the sources

  /** Say which member the page reads from (live) or which run it plays (replay). */
  setConnection(text, memberId = null, ok = true) {
    if (this.retired || !this.connection) return;
    setText(this.connection, text);
    setAttr(this.connection, "data-member", memberId === null || memberId === undefined ? "" : memberId);
    this.connection.classList.toggle("lost", !ok);
  }

  /** A line under the header for what the person must know (errors, a lost cluster); null hides it. */
  setNotice(text, level = "info") {
    if (this.retired || !this.notice) return;
    this.notice.hidden = !text;
    setText(this.notice, text || "");
    setAttr(this.notice, "data-level", level);
  }

  /** How long a message dot takes to cross (replay speed). */
  setMessageDuration(ms) {
    this.messages.setDuration(ms);
  }

  /** Replay: start the timeline again (after a jump back). */
  clearEvents() {
    if (this.retired) return;
    this.timeline.clear();
    this.ring.votes.clear();
    this.state = null; // the next render has no "before"
  }

  /** Replay: highlight the events of the current step. */
  markCurrentEvents(events) {
    if (this.retired) return;
    this.timeline.markCurrent(events);
  }

  /** Replay: drop the dots in flight (a jump). */
  clearMessages() {
    this.messages.clear();
  }

  /** The member-card buttons' callbacks (the live source knows them once it is connected). */
  setActions(actions) {
    this.cards.actions = actions || {};
    for (const card of this.cards.cards.values()) card.actionsKey = null;
    if (this.state) this.cards.render(this.state);
  }

  /** Stop drawing and empty the page: later calls do nothing (the page switched to another source). */
  retire() {
    this.retired = true;
    this.ring.stop();
    this.messages.stop();
    const root = this.root;
    for (const sel of [".ring-links", ".ring-nodes", "#messages", "#cluster .cards", "#logs .logs-body", "#timeline"]) {
      const el = root.querySelector(sel);
      if (el) el.replaceChildren();
    }
    for (const sel of [".center-label", ".center-sub", "#logs .logs-summary"]) {
      const el = root.querySelector(sel);
      if (el) el.textContent = "";
    }
    this.timeline.select(null);
    this.violation.hidden = true;
    if (this.notice) this.notice.hidden = true;
  }

  // The votes each (pre-)candidate has collected since its campaign began, for the ring.
  _countVotes(events) {
    let changed = false;
    for (const e of events) {
      const f = e.fields || {};
      if (e.event === "BecomePreCandidate" || e.event === "BecomeCandidate") {
        this.ring.votes.set(e.node, { pre: e.event === "BecomePreCandidate", voters: new Set([e.node]) });
        changed = true;
      } else if (e.event === "GrantVote") {
        const campaign = this.ring.votes.get(f.candidate);
        if (campaign && campaign.pre === Boolean(f.pre_vote)) {
          campaign.voters.add(e.node);
          changed = true;
        }
      }
    }
    return changed;
  }

  _filters(bar) {
    if (!bar) return;
    const list = this.timeline.list;
    for (const button of bar.querySelectorAll("button[data-filter]")) {
      button.addEventListener("click", () => {
        list.dataset.filter = button.dataset.filter;
        for (const b of bar.querySelectorAll("button[data-filter]")) b.setAttribute("aria-pressed", String(b === button));
      });
    }
  }
}
