// One card per member with everything its /v1/status says, in the paper's words, and
// the buttons the live source offers for it (isolate, kill -9, transfer leadership...).

import { formatMs, formatNumber, formatTimer, memberLabel, normalizeRole, termColor, termTint } from "../model.js";
import { html, setAttr, setText } from "./svg.js";

// The member-card buttons, in the order they are shown, with what each says.
export const ACTIONS = [
  ["transfer", "Make leader", "Transfer leadership to this member (TimeoutNow)"],
  ["isolate", "Isolate", "Cut this member off from every other member (both ways)"],
  ["heal", "Heal", "Remove this member's network faults"],
  ["stop", "Stop", "Stop the process (SIGTERM): it shuts down cleanly"],
  ["kill", "Kill -9", "Kill the process (SIGKILL): it stops at once, keeping only what is on disk"],
  ["restart", "Restart", "Start the process again on its data directory"],
  ["promote", "Promote", "Make this learner a voter"],
  ["remove", "Remove", "Remove this member from the cluster configuration"],
];

// The actions whose disabled reason names something to change (faults need --enable-faults).
const SAID_ON_CARD = new Set(["isolate", "heal"]);

const FIELDS = [
  ["term", "term"],
  ["voted", "voted for"],
  ["commit", "commit"],
  ["leader", "leader"],
  ["applied", "applied"],
  ["last", "last log"],
  ["snapshot", "snapshot"],
  ["timer", "election timer"],
  ["lease", "leader lease"],
];

export class CardsView {
  /**
   * @param {HTMLElement} container where the cards go (inside #cluster)
   * @param {object} actions callbacks by action name, plus disabledReason(id, action)
   */
  constructor(container, actions) {
    this.container = container;
    this.actions = actions || {};
    this.cards = new Map();
    this.onHover = null;
  }

  render(state) {
    const members = state.members || [];
    const seen = new Set();
    for (const m of members) {
      seen.add(m.id);
      let card = this.cards.get(m.id);
      if (!card) {
        card = this._make(m);
        this.cards.set(m.id, card);
      }
      this._update(card, m, state);
    }
    for (const [id, card] of this.cards) {
      if (!seen.has(id)) {
        card.el.remove();
        this.cards.delete(id);
      }
    }
    // Keep the DOM order the members' order (sorted by id).
    members.forEach((m, i) => {
      const el = this.cards.get(m.id).el;
      if (this.container.children[i] !== el) this.container.insertBefore(el, this.container.children[i] || null);
    });
  }

  highlight(ids) {
    const set = new Set(ids || []);
    for (const [id, card] of this.cards) card.el.classList.toggle("violating", set.has(id));
  }

  _make(m) {
    const el = html("article", { class: "member", "data-id": m.id });
    const head = html("header", { class: "member-head" }, el);
    const name = html("span", { class: "member-name" }, head);
    const id = html("span", { class: "member-id" }, head);
    const role = html("span", { class: "role-badge" }, head);
    const health = html("span", { class: "health" }, head);
    const address = html("div", { class: "member-address" }, el);
    const down = html("div", { class: "member-down" }, el);
    const dl = html("dl", { class: "member-fields" }, el);
    const values = {};
    for (const [key, label] of FIELDS) {
      const cell = html("div", { class: `field field-${key}` }, dl);
      html("dt", { text: label }, cell);
      values[key] = html("dd", {}, cell);
    }
    const extra = html("div", { class: "member-extra" }, el);
    const buttons = html("div", { class: "member-actions" }, el);
    const reasons = html("div", { class: "member-reasons" }, el);
    const error = html("div", { class: "member-error", role: "status" }, el);
    this.container.appendChild(el);
    return { el, name, id, role, health, address, down, values, extra, buttons, reasons, error, actionsKey: null };
  }

  _update(card, m, state) {
    const role = normalizeRole(m);
    const up = m.up !== false;
    const el = card.el;
    // A member that is down has no role now, whatever it last said (a killed leader is
    // not a second leader).
    setAttr(el, "data-role", up ? role || "unknown" : "down");
    setAttr(el, "data-up", up ? "true" : "false");
    setAttr(el, "data-term", m.term);
    setAttr(el, "data-commit-index", m.commit_index);
    setAttr(el, "data-last-log-index", m.last_log_index);
    setAttr(el, "data-voter", m.voter === false ? "false" : "true");
    el.style.setProperty("--term", up ? termColor(m.term) : "#aab2bd");
    el.style.setProperty("--term-tint", up ? termTint(m.term) : "#eef0f3");
    setText(card.name, memberLabel(m.id, state));
    setText(card.id, m.name && m.name !== memberLabel(m.id, state) ? `${m.name} · id ${m.id}` : `id ${m.id}`);
    setText(card.role, up ? role || "unknown" : "down");
    setAttr(card.role, "data-role", up ? role || "unknown" : "down");
    const health = up ? m.health || "ok" : "down";
    setAttr(card.health, "data-health", health);
    setAttr(card.health, "title", `health: ${health}`);
    setText(card.health, health);
    setText(card.address, m.address || "");
    let downText = "";
    if (!up) {
      const ago = m.last_heard !== null && m.last_heard !== undefined && state.time !== undefined
        ? ` · last heard ${Math.max(0, state.time - m.last_heard).toFixed(1)} s ago`
        : "";
      const sup = m.supervised && m.supervised.state ? ` (${m.supervised.state})` : "";
      downText = `down${sup}${ago}`;
    }
    setText(card.down, downText);
    card.down.hidden = up;

    const v = card.values;
    setText(v.term, m.term ?? "–");
    setText(v.voted, m.voted_for === null || m.voted_for === undefined ? "none" : memberLabel(m.voted_for, state));
    setText(v.leader, m.leader === null || m.leader === undefined ? "none" : memberLabel(m.leader, state));
    setText(v.commit, formatNumber(m.commit_index));
    setText(v.applied, formatNumber(m.applied_index));
    setText(v.last, formatNumber(m.last_log_index));
    setText(v.snapshot, formatNumber(m.snapshot_index || 0));
    setText(v.timer, formatTimer(m.election_elapsed_ms, m.election_timeout_ms));
    setText(v.lease, m.lease_remaining_ms === null || m.lease_remaining_ms === undefined ? "–" : formatMs(m.lease_remaining_ms));
    // A member that is down has no running timer or lease, whatever it last reported.
    card.values.lease.parentElement.hidden = !up || role !== "leader";
    card.values.timer.parentElement.hidden = !up || role === "leader";

    const extras = [];
    if (m.faults && hasFaults(m.faults)) extras.push(`faults: ${describe(m.faults, state)}`);
    if (m.supervised && m.supervised.pid) extras.push(`pid ${m.supervised.pid}`);
    setText(card.extra, extras.join(" · "));
    card.extra.hidden = extras.length === 0;
    this._buttons(card, m);
  }

  _buttons(card, m) {
    const actions = this.actions;
    const reasonOf = typeof actions.disabledReason === "function" ? actions.disabledReason : () => null;
    const shown = [];
    for (const [action, label, help] of ACTIONS) {
      if (typeof actions[action] !== "function") continue;
      let reason = null;
      try {
        reason = reasonOf(m.id, action) || null;
      } catch (err) {
        reason = null;
      }
      shown.push({ action, label, help, reason });
    }
    const key = JSON.stringify(shown.map((b) => [b.action, b.reason]));
    if (key === card.actionsKey) return;
    card.actionsKey = key;
    card.buttons.replaceChildren();
    const reasons = [];
    for (const b of shown) {
      const button = html("button", { type: "button", "data-action": b.action, text: b.label }, card.buttons);
      if (b.reason) {
        button.disabled = true;
        button.title = b.reason;
        // Written out only where the person can change it (a node's flags); "already the
        // leader" and the like stay in the tooltip, or every card would repeat them.
        if (SAID_ON_CARD.has(b.action) && m.up !== false) reasons.push(`${b.label}: ${b.reason}`);
      } else {
        button.title = b.help;
        button.addEventListener("click", () => this._run(card, m.id, b.action, button));
      }
    }
    // Those disabled buttons say why in words, not only in a tooltip; one line per reason.
    const unique = [...new Set(reasons)];
    card.reasons.replaceChildren(...unique.map((r) => html("div", { text: r })));
    card.reasons.hidden = unique.length === 0;
    card.buttons.hidden = shown.length === 0;
  }

  async _run(card, id, action, button) {
    setText(card.error, "");
    button.classList.add("busy");
    try {
      await this.actions[action](id);
    } catch (err) {
      setText(card.error, `${action} failed: ${err && err.message ? err.message : err}`);
    } finally {
      button.classList.remove("busy");
    }
  }
}

function hasFaults(f) {
  return Boolean(
    (f.partition && f.partition.length) || (f.cut_to && f.cut_to.length) || f.delay_ms || f.jitter_ms || f.drop_rate ||
      (f.links && Object.keys(f.links).length),
  );
}

function describe(f, state) {
  const parts = [];
  if (f.partition && f.partition.length) parts.push(`cut from ${f.partition.map((id) => memberLabel(Number(id), state)).join(", ")}`);
  if (f.cut_to && f.cut_to.length) parts.push(`drops to ${f.cut_to.map((id) => memberLabel(Number(id), state)).join(", ")}`);
  if (f.delay_ms) parts.push(`${f.delay_ms} ms delay`);
  if (f.drop_rate) parts.push(`${Math.round(f.drop_rate * 100)} % loss`);
  if (f.links) {
    for (const [peer, l] of Object.entries(f.links)) {
      const w = [];
      if (l.delay_ms) w.push(`${l.delay_ms} ms`);
      if (l.drop_rate) w.push(`${Math.round(l.drop_rate * 100)} % loss`);
      if (w.length) parts.push(`to ${memberLabel(Number(peer), state)}: ${w.join(", ")}`);
    }
  }
  return parts.join("; ");
}
