// The members' logs, one strip per member, aligned by index: entries coloured by term,
// uncommitted entries paler, the commit index marked, the snapshot (compaction)
// boundary hatched, entries that differ from the leader's crossed out, and the
// leader's matchIndex/nextIndex for each follower.  Only the newest WINDOW indexes are
// drawn; older ones are counted.

import { formatNumber, leaderOf, memberLabel, normalizeRole, termColor, termInk, termLookup } from "../model.js";
import { html, setAttr, setText } from "./svg.js";

export const WINDOW = 60;
const RULER_EVERY = 10;

export class LogsView {
  /** @param {HTMLElement} root #logs */
  constructor(root, { live = false } = {}) {
    // Live statuses come from each member at its own moment (every 250 ms), so under load
    // a follower's may be newer than the leader's: the window then ends at the leader's
    // last index, not at the newest index anyone reported, or the leader's row would
    // look empty. A replayed state is one instant, and its newest index is exact.
    this.live = live;
    this.root = root;
    this.summary = root.querySelector(".logs-summary");
    this.body = root.querySelector(".logs-body") || root;
    this.ruler = html("div", { class: "log-ruler" }, this.body);
    html("div", { class: "strip-label" }, this.ruler);
    this.rulerTrack = html("div", { class: "strip-track" }, this.ruler);
    this.strips = new Map();
    this.start = -1;
  }

  render(state) {
    const members = state.members || [];
    const leader = leaderOf(state);
    const end = this.live && leader && leader.up !== false
      ? leader.last_log_index || 0
      : Math.max(0, ...members.map((m) => m.last_log_index || 0));
    const start = Math.max(1, end - WINDOW + 1);
    if (start !== this.start) this._ruler(start);
    this.start = start;
    const leaderTerm = leader ? termLookup(leader.log_terms, leader.last_log_index) : null;
    const seen = new Set();
    for (const m of members) {
      seen.add(m.id);
      let strip = this.strips.get(m.id);
      if (!strip) {
        strip = this._make(m);
        this.strips.set(m.id, strip);
      }
      this._update(strip, m, state, start, leader, leaderTerm);
    }
    for (const [id, strip] of this.strips) {
      if (!seen.has(id)) {
        strip.el.remove();
        this.strips.delete(id);
      }
    }
    members.forEach((m, i) => {
      const el = this.strips.get(m.id).el;
      const want = this.body.children[i + 1]; // after the ruler
      if (want !== el) this.body.insertBefore(el, want || null);
    });
    if (this.summary) {
      const older = start - 1;
      setText(
        this.summary,
        end === 0
          ? "no entries yet"
          : `indexes ${formatNumber(start)}–${formatNumber(end)}` + (older > 0 ? ` · ${formatNumber(older)} older not drawn` : ""),
      );
    }
  }

  _ruler(start) {
    this.rulerTrack.replaceChildren();
    for (let c = 0; c < WINDOW; c++) {
      const index = start + c;
      if (index % RULER_EVERY === 0 || c === 0) {
        const tick = html("span", { class: "ruler-tick", text: formatNumber(index) }, this.rulerTrack);
        tick.style.gridColumn = `${c + 1} / span ${Math.min(6, WINDOW - c)}`;
      }
    }
  }

  _make(m) {
    const el = html("div", { class: "log-strip", "data-id": m.id });
    const label = html("div", { class: "strip-label" }, el);
    const name = html("span", { class: "strip-name" }, label);
    const role = html("span", { class: "strip-role" }, label);
    const track = html("div", { class: "strip-track" }, el);
    const older = html("div", { class: "older" }, track);
    const snapshot = html("div", { class: "snapshot-marker" }, track);
    const cells = [];
    for (let c = 0; c < WINDOW; c++) {
      const cell = html("div", { class: "entry" }, track);
      cell.style.gridColumn = String(c + 1);
      cells.push(cell);
    }
    const commit = html("div", { class: "commit-marker" }, track);
    const match = html("div", { class: "progress-marker match-marker", text: "m" }, track);
    const next = html("div", { class: "progress-marker next-marker", text: "n" }, track);
    return { el, name, role, track, older, snapshot, cells, commit, match, next };
  }

  _update(strip, m, state, start, leader, leaderTerm) {
    const up = m.up !== false;
    const role = normalizeRole(m);
    strip.el.classList.toggle("down", !up);
    setAttr(strip.el, "data-role", up ? role || "unknown" : "down");
    setText(strip.name, memberLabel(m.id, state));
    setText(strip.role, up ? role || "" : "down");
    const last = m.last_log_index || 0;
    const snap = m.snapshot_index || 0;
    const commitIndex = m.commit_index || 0;
    const termAt = termLookup(m.log_terms, last);
    const isLeader = leader && leader.id === m.id;
    // Live, under load, the leader's matchIndex for a follower is often newer than the
    // follower's own status (each member reports at its own moment). Up to matchIndex
    // the follower's log is the leader's (Log Matching, §5.3), so draw it from there.
    let matched = 0;
    if (this.live && leader && !isLeader && up && leader.progress && leaderTerm) {
      const p = leader.progress[m.id] || leader.progress[String(m.id)];
      if (p && p.match_index > last) matched = p.match_index;
    }
    let previousTerm = null;
    let diverged = 0;
    for (let c = 0; c < WINDOW; c++) {
      const index = start + c;
      const cell = strip.cells[c];
      const term = index <= snap ? null : index <= last ? termAt(index) : index <= matched ? leaderTerm(index) : null;
      if (term === null) {
        if (cell.hasAttribute("data-index")) {
          cell.removeAttribute("data-index");
          cell.removeAttribute("data-term");
          cell.className = "entry-empty";
          cell.textContent = "";
          cell.removeAttribute("style");
          cell.style.gridColumn = String(c + 1);
          cell.removeAttribute("title");
        } else if (cell.className !== "entry-empty") {
          cell.className = "entry-empty";
        }
        previousTerm = null;
        continue;
      }
      let cls = "entry";
      if (index > commitIndex) cls += " uncommitted";
      // Where this log differs from the leader's, the leader's wins (§5.3): the
      // follower will truncate these entries.
      if (!isLeader && leaderTerm && index > (leader.snapshot_index || 0)) {
        const lt = leaderTerm(index);
        if (lt === null ? index > leader.last_log_index : lt !== term) {
          cls += " diverged";
          diverged++;
        }
      }
      if (cell.className !== cls) cell.className = cls;
      setAttr(cell, "data-index", index);
      setAttr(cell, "data-term", term);
      const color = termColor(term);
      if (cell.style.getPropertyValue("--term") !== color) cell.style.setProperty("--term", color);
      cell.style.color = termInk(term);
      setText(cell, term !== previousTerm || c === 0 ? term : "");
      setAttr(cell, "title", `index ${index} · term ${term}${index <= commitIndex ? " · committed" : " · not committed"}`);
      previousTerm = term;
    }
    // Entries older than the window: how many, and whether compaction removed them.
    const older = Math.min(start - 1, Math.max(last, matched));
    strip.older.hidden = older <= 0;
    setText(strip.older, older > 0 ? `… ${formatNumber(older)}` : "");
    // The snapshot boundary: everything up to snapshot_index lives only in the snapshot.
    const snapCols = Math.min(WINDOW, snap - start + 1);
    strip.snapshot.hidden = snap <= 0;
    if (snap > 0) {
      if (snapCols > 0) {
        strip.snapshot.style.gridColumn = `1 / span ${snapCols}`;
        setText(strip.snapshot, snapCols >= 4 ? `snapshot ≤ ${formatNumber(snap)}` : "");
      } else {
        strip.snapshot.style.gridColumn = "1 / span 1";
        setText(strip.snapshot, "");
      }
      strip.snapshot.classList.toggle("edge", snapCols <= 0);
      setAttr(strip.snapshot, "title", `compacted into a snapshot up to index ${formatNumber(snap)}`);
      setAttr(strip.snapshot, "data-index", snap);
    }
    placeMarker(strip.commit, commitIndex, start, "commit");
    setAttr(strip.commit, "title", `commit index ${formatNumber(commitIndex)}`);
    setAttr(strip.commit, "data-index", commitIndex);
    // The leader's view of this follower: matchIndex (known to be replicated here) and
    // nextIndex (the next entry it will send).
    const progress = leader && !isLeader && leader.progress ? leader.progress[m.id] ?? leader.progress[String(m.id)] : null;
    strip.match.hidden = !progress;
    strip.next.hidden = !progress;
    if (progress) {
      placeMarker(strip.match, progress.match_index, start, "cell");
      placeMarker(strip.next, progress.next_index, start, "cell");
      setAttr(strip.match, "title", `the leader's matchIndex for ${memberLabel(m.id, state)}: ${formatNumber(progress.match_index)}`);
      setAttr(strip.next, "title", `the leader's nextIndex for ${memberLabel(m.id, state)}: ${formatNumber(progress.next_index)}`);
    }
    strip.el.classList.toggle("has-divergence", diverged > 0);
    setAttr(strip.el, "title", diverged > 0 ? `${diverged} entries differ from the leader's log` : null);
  }
}

// Markers are positioned in the track's grid: "commit" sits on the right edge of the
// committed entry, "cell" under an index.  Off the left edge: pinned there.
function placeMarker(el, index, start, how) {
  let col = index - start + 1;
  const off = col < 1;
  if (off) col = 1;
  if (col > WINDOW) col = WINDOW;
  el.style.gridColumn = String(col);
  el.classList.toggle("before-window", off || (how === "commit" && index < start));
  el.classList.toggle("at-start", how === "commit" && index < start);
}
