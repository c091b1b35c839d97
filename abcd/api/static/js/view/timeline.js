// The timeline: what the cluster did, newest first, one plain sentence per event
// (captions.js).  A click on a row shows the records behind it in #event-detail.

import { Narrator, eventKind } from "../captions.js";
import { memberLabel, termColor } from "../model.js";
import { html, setText } from "./svg.js";

export const MAX_ROWS = 400;
// A live leader advances its commit index once per batch: such rows are merged while
// they follow each other, so elections and faults stay visible.
const MERGE_WINDOW_S = { live: 2, replay: 0.1 };
const MAX_MERGED_RECORDS = 50;

export class TimelineView {
  /**
   * @param {HTMLOListElement} list #timeline
   * @param {HTMLElement} detail #event-detail
   * @param {{mode: string}} options "live" merges runs of commit events and shows clock times
   */
  constructor(list, detail, { mode }) {
    this.list = list;
    this.detail = detail;
    this.mode = mode;
    this.narrator = new Narrator();
    this.rows = [];
    this.selected = null;
    this.detailBody = detail.querySelector(".detail-body") || detail;
    const close = detail.querySelector(".detail-close");
    if (close) close.addEventListener("click", () => this.select(null));
  }

  /** Append events (oldest first), each with its caption. */
  add(events, state, previous) {
    if (!events || events.length === 0) return;
    const fragment = [];
    for (const original of events) {
      if (this._merge(original, state)) continue;
      const e = this._withCommitFrom(original, previous);
      const text = this.narrator.narrate(e, state, previous);
      const row = this._row(e, text, state);
      row.sources.add(original);
      fragment.push(row);
    }
    // Newest first: the list reads from the top down into the past.
    for (const row of fragment) this.list.insertBefore(row.el, this.list.firstChild);
    this.rows.push(...fragment);
    while (this.rows.length > MAX_ROWS) {
      const old = this.rows.shift();
      old.el.remove();
      if (this.selected === old) this.select(null);
    }
  }

  /** Forget every row (a replay that jumps back starts the story again). */
  clear() {
    this.list.replaceChildren();
    this.rows = [];
    this.narrator.reset();
    this.select(null);
  }

  /** Mark the rows of the current step (replay). */
  markCurrent(events) {
    const set = new Set(events || []);
    for (const row of this.rows.slice(-200)) row.el.classList.toggle("current", [...row.sources].some((e) => set.has(e)));
  }

  select(row) {
    if (this.selected) this.selected.el.classList.remove("selected");
    this.selected = row;
    if (!row) {
      this.detail.hidden = true;
      return;
    }
    row.el.classList.add("selected");
    this.detail.hidden = false;
    this.detailBody.replaceChildren();
    const e = row.event;
    html("h3", { text: `${e.event} · ${memberLabel(e.node, row.state)}${e.term !== null && e.term !== undefined ? ` · term ${e.term}` : ""}` }, this.detailBody);
    html("p", { class: "detail-caption", text: row.caption.textContent }, this.detailBody);
    const records = row.records.length ? row.records : [withoutRecords(e)];
    html("p", { class: "detail-note", text: records.length === 1 ? "The record behind it:" : `The ${records.length} records behind it:` }, this.detailBody);
    html("pre", { class: "detail-records", text: records.map((r) => JSON.stringify(r, null, 2)).join("\n") }, this.detailBody);
  }

  _row(e, text, state) {
    const el = html("li", {
      class: `timeline-event kind-${eventKind(e.event)}`,
      "data-event": e.event,
      "data-kind": eventKind(e.event),
      "data-node": e.node ?? "",
      tabindex: "0",
    });
    el.style.setProperty("--term", termColor(e.term || 0));
    html("time", { class: "event-time", text: this._time(e.time) }, el);
    const who = html("span", { class: "event-node", text: e.node === null || e.node === undefined ? "·" : memberLabel(e.node, state) }, el);
    who.title = e.term !== null && e.term !== undefined ? `term ${e.term}` : "";
    const body = html("div", { class: "event-body" }, el);
    html("span", { class: "event-name", text: e.event }, body);
    const caption = html("span", { class: "caption", text }, body);
    const row = { el, event: e, caption, state, records: e.records ? [...e.records] : [], sources: new Set() };
    el.addEventListener("click", () => this.select(row));
    el.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") {
        ev.preventDefault();
        this.select(row);
      }
    });
    return row;
  }

  // A commit event right after another of the same leader and term: one row "41 → 57".
  _merge(e, state) {
    if (e.event !== "AdvanceCommitIndex") return false;
    const top = this.rows[this.rows.length - 1];
    if (!top || top.event.event !== "AdvanceCommitIndex" || top.event.node !== e.node || top.event.term !== e.term) return false;
    if (Math.abs((e.time || 0) - (top.last || top.event.time || 0)) > (MERGE_WINDOW_S[this.mode] ?? 2)) return false;
    const from = top.event.fields.from_commit_index;
    top.last = e.time;
    top.sources.add(e);
    if (top.sources.size > MAX_MERGED_RECORDS) top.sources.delete(top.sources.values().next().value);
    top.merged = (top.merged || 1) + 1;
    const merged = { ...e, fields: { ...e.fields, from_commit_index: from } };
    setText(top.caption, this.narrator.narrate(merged, state) + ` (${top.merged} commits)`);
    if (top.records.length === 0) top.records.push(withoutRecords(top.event));
    top.records.push(...(e.records || [withoutRecords(e)]));
    if (top.records.length > MAX_MERGED_RECORDS) top.records.splice(0, top.records.length - MAX_MERGED_RECORDS);
    return true;
  }

  // Where a commit index moved from: the last one this timeline saw for that node, else
  // the node's commit index in the state before.
  _withCommitFrom(e, previous) {
    if (e.event !== "AdvanceCommitIndex" || (e.fields && e.fields.from_commit_index !== undefined)) return e;
    let from = this.narrator.commit.get(e.node);
    if (from === undefined && previous && previous.members) {
      const m = previous.members.find((x) => x.id === e.node);
      if (m) from = m.commit_index;
    }
    return from === undefined ? e : { ...e, fields: { ...e.fields, from_commit_index: from } };
  }

  _time(t) {
    if (t === null || t === undefined) return "";
    if (this.mode === "live") {
      const d = new Date(t * 1000);
      return d.toTimeString().slice(0, 8) + "." + String(d.getMilliseconds()).padStart(3, "0");
    }
    return `${t.toFixed(3)} s`;
  }
}

function withoutRecords(e) {
  const { records, ...rest } = e;
  return rest;
}
