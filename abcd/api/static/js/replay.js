// Replays a run recorded by the simulator (`python -m abcd.sim ... --record run.json`):
// the same cards, log strips, messages and captions as a live cluster, step by step in
// virtual time.  A step may record only the members that changed; the player carries
// the others forward from the steps before.

import { normalizeRole } from "./model.js";

export const RUN_FORMAT = "abcd-sim-run";
export const RUN_VERSION = 1;
const ELECTION_EVENTS = new Set(["BecomeCandidate"]);
const ELECTION_LEAD_UP = new Set(["Timeout", "BecomePreCandidate", "TimeoutNow"]);
const FAULT_KINDS = new Set(["fault", "partition", "heal", "crash", "restart"]);
const FAULT_EVENTS = new Set(["Partition", "Heal", "Crash", "Restart", "Faults"]);
// After a jump the timeline shows this many of the events before the new position.
const JUMP_HISTORY = 300;
// A pause longer than this (wall seconds) in a run is skipped while playing.
const MAX_GAP_S = 1.5;

/** Fetch a run from a URL (the `run` query parameter). */
export async function loadRunFromUrl(url) {
  let response;
  try {
    response = await fetch(url, { cache: "no-store" });
  } catch (err) {
    throw new Error(`could not fetch the run at ${url}: ${err.message}`);
  }
  if (!response.ok) throw new Error(`could not load the run at ${url}: HTTP ${response.status}`);
  const text = await response.text();
  return parseRun(text, url);
}

/** Read a run from a file the person picked. */
export async function loadRunFromFile(file) {
  return parseRun(await file.text(), file.name);
}

/**
 * Check a recorded run and index it for playing.
 * @param {string|object} source the file's text, or the parsed object
 * @param {string} [name] where it came from, for messages
 */
export function parseRun(source, name = "the run") {
  let run = source;
  if (typeof source === "string") {
    try {
      run = JSON.parse(source);
    } catch (err) {
      throw new Error(`${name} is not JSON: ${err.message}`);
    }
  }
  if (!run || typeof run !== "object" || run.format !== RUN_FORMAT) {
    throw new Error(`${name} is not an abcd simulator run (its "format" is ${JSON.stringify(run && run.format)}, expected "${RUN_FORMAT}")`);
  }
  if (run.version !== RUN_VERSION) {
    throw new Error(`${name} is version ${run.version} of the run format; this page reads version ${RUN_VERSION}`);
  }
  if (!Array.isArray(run.steps) || run.steps.length === 0) throw new Error(`${name} has no steps`);
  return new Run(run, name);
}

/** A run, with every step's full state and the events in order. */
export class Run {
  constructor(raw, name) {
    this.raw = raw;
    this.name = name;
    this.steps = raw.steps;
    this.violation = raw.violation || null;
    const members = new Map();
    for (const m of raw.members || []) members.set(m.id, initialMember(m));
    this.states = [];
    this.events = []; // every event in order
    this.eventEnd = []; // eventEnd[i]: events of steps 0..i are events[0 .. eventEnd[i]-1]
    let current = null;
    for (const step of this.steps) {
      let changed = current === null;
      for (const m of step.state || []) {
        const before = members.get(m.id);
        members.set(m.id, before ? { ...before, ...m } : { ...initialMember(m), ...m });
        changed = true;
      }
      if (changed) current = [...members.values()].sort((a, b) => a.id - b.id);
      this.states.push({ time: step.time, members: current, leader: leaderId(current), step: step.step });
      for (const e of step.events || []) this.events.push({ ...e, time: e.time ?? step.time, fields: e.fields || {} });
      this.eventEnd.push(this.events.length);
    }
    this.violationIndex = null;
    if (this.violation) {
      const at = this.steps.findIndex((s) => s.step === this.violation.step);
      this.violationIndex = at >= 0 ? at : this.steps.length - 1;
    }
  }

  get length() {
    return this.steps.length;
  }

  eventsOf(i) {
    return this.events.slice(i > 0 ? this.eventEnd[i - 1] : 0, this.eventEnd[i]);
  }

  /** The events up to step i, at most `limit` of the newest. */
  eventsUpTo(i, limit) {
    const end = this.eventEnd[i];
    return this.events.slice(Math.max(0, end - limit), end);
  }

  /** The next step after i where an election starts (its time-out, when recorded), or null. */
  nextElection(i) {
    for (let j = i + 1; j < this.steps.length; j++) {
      const names = (this.steps[j].events || []).map((e) => e.event);
      if (!names.some((n) => ELECTION_EVENTS.has(n))) continue;
      // Go back to the time-out that led to it, so the person sees the election begin.
      const node = (this.steps[j].events || []).find((e) => ELECTION_EVENTS.has(e.event)).node;
      for (let k = j; k > i && k > j - 200; k--) {
        const lead = (this.steps[k].events || []).find((e) => e.node === node && ELECTION_LEAD_UP.has(e.event));
        if (lead) return Math.max(i + 1, k - 1);
      }
      return Math.max(i + 1, j - 1);
    }
    return null;
  }

  /** The next step after i that injects or heals a fault, or null. */
  nextFault(i) {
    for (let j = i + 1; j < this.steps.length; j++) {
      const s = this.steps[j];
      if (FAULT_KINDS.has(s.kind) || (s.events || []).some((e) => FAULT_EVENTS.has(e.event))) return j;
    }
    return null;
  }
}

function initialMember(m) {
  return {
    id: m.id,
    name: m.name || `n${m.id}`,
    address: m.address ?? null,
    voter: m.voter ?? true,
    up: true,
    last_heard: null,
    role: "follower",
    term: 0,
    voted_for: null,
    leader: null,
    commit_index: 0,
    applied_index: 0,
    last_log_index: 0,
    snapshot_index: 0,
    log_terms: [],
    election_elapsed_ms: null,
    election_timeout_ms: null,
    heartbeat_ms: null,
    lease_remaining_ms: null,
    health: "ok",
    progress: null,
    faults: null,
    supervised: null,
  };
}

function leaderId(members) {
  let best = null;
  for (const m of members) {
    if (m.up !== false && normalizeRole(m) === "leader" && (!best || m.term > best.term)) best = m;
  }
  return best ? best.id : null;
}

/**
 * Plays a run into a Dashboard, driven by the #source controls.
 */
export class Player {
  /**
   * @param {import("./view/dashboard.js").Dashboard} dashboard
   * @param {Run} run
   * @param {Document|HTMLElement} root holds the replay controls
   */
  constructor(dashboard, run, root = document) {
    this.dash = dashboard;
    this.run = run;
    this.root = root;
    this.position = -1;
    this.playing = false;
    this.speed = 0.02;
    this.raf = null;
    this._frame = this._frame.bind(this);
    this._listeners = [];
    const $ = (sel) => root.querySelector(sel);
    this.el = {
      play: $("#replay-play"),
      pause: $("#replay-pause"),
      forward: $("#replay-step-forward"),
      back: $("#replay-step-back"),
      election: $("#replay-next-election"),
      fault: $("#replay-next-fault"),
      violation: $("#replay-next-violation"),
      speed: $("#replay-speed"),
      position: $("#replay-position"),
      scrub: $("#replay-scrub"),
    };
    this._wire();
    const raw = run.raw;
    const bits = [`${run.name}`];
    if (raw.seed !== undefined) bits.push(`seed ${raw.seed}`);
    bits.push(`${run.states[0].members.length} members`);
    if (raw.broken) bits.push(`broken rule: ${raw.broken}`);
    dashboard.setConnection(`replay · ${bits.join(" · ")}`, null, true);
    this.goTo(0);
  }

  _on(el, type, fn) {
    if (!el) return;
    el.addEventListener(type, fn);
    this._listeners.push([el, type, fn]);
  }

  _wire() {
    const e = this.el;
    this._on(e.play, "click", () => this.play());
    this._on(e.pause, "click", () => this.pause());
    this._on(e.forward, "click", () => { this.pause(); this.step(1); });
    this._on(e.back, "click", () => { this.pause(); this.step(-1); });
    this._on(e.election, "click", () => this._jump(this.run.nextElection(this.position)));
    this._on(e.fault, "click", () => this._jump(this.run.nextFault(this.position)));
    this._on(e.violation, "click", () => this._jump(this.run.violationIndex));
    if (e.speed) {
      this.speed = Number(e.speed.value) || this.speed;
      this._on(e.speed, "change", () => this.setSpeed(Number(e.speed.value)));
    }
    if (e.scrub) {
      e.scrub.max = String(this.run.length - 1);
      this._on(e.scrub, "input", () => { this.pause(); this.goTo(Number(e.scrub.value)); });
    }
    this._on(document, "keydown", (ev) => {
      if (ev.target && /^(INPUT|SELECT|TEXTAREA)$/.test(ev.target.tagName) && ev.target.type !== "range") return;
      if (ev.target && ev.target.tagName === "BUTTON" && (ev.key === " " || ev.key === "Enter")) return; // the button's own click
      if (ev.key === " ") { ev.preventDefault(); this.playing ? this.pause() : this.play(); }
      else if (ev.key === "ArrowRight") { ev.preventDefault(); this.pause(); this.step(1); }
      else if (ev.key === "ArrowLeft") { ev.preventDefault(); this.pause(); this.step(-1); }
    });
    this.setSpeed(this.speed);
  }

  setSpeed(speed) {
    if (!(speed > 0)) return;
    this.speed = speed;
    // A message crosses in its simulated delay (a few virtual ms) scaled to the speed,
    // but never so fast that the eye misses it.
    this.dash.setMessageDuration(Math.min(1200, Math.max(350, 4 / speed)));
  }

  play() {
    if (this.playing) return;
    if (this.position >= this.run.length - 1) this.goTo(0);
    this.playing = true;
    // Playing stops at the broken invariant, unless it is already behind us.
    this.violationAhead = this.run.violationIndex !== null && this.position < this.run.violationIndex;
    this.clock = this.run.states[this.position].time;
    this.last = performance.now();
    this._showPlaying();
    this.raf = requestAnimationFrame(this._frame);
  }

  pause() {
    this.playing = false;
    this._showPlaying();
    if (this.raf) cancelAnimationFrame(this.raf);
    this.raf = null;
    this.dash.setMessageDuration(700);
    this.setSpeed(this.speed);
  }

  _showPlaying() {
    document.body.classList.toggle("playing", this.playing);
    if (this.el.play) this.el.play.setAttribute("aria-pressed", String(this.playing));
    if (this.el.pause) this.el.pause.setAttribute("aria-pressed", String(!this.playing));
  }

  step(delta) {
    const target = Math.min(this.run.length - 1, Math.max(0, this.position + delta));
    if (delta === 1 && target === this.position + 1) {
      this.dash.setMessageDuration(900);
      this._advance(target, target);
    } else {
      this.goTo(target);
    }
  }

  /** Show the state after step i, with the timeline up to it. */
  goTo(i) {
    const run = this.run;
    i = Math.min(run.length - 1, Math.max(0, i));
    this.dash.clearMessages();
    this.dash.clearEvents();
    this.dash.render(run.states[i]);
    this.dash.addEvents(run.eventsUpTo(i, JUMP_HISTORY));
    this.position = i;
    this._after(run.eventsOf(i));
  }

  stop() {
    this.pause();
    for (const [el, type, fn] of this._listeners) el.removeEventListener(type, fn);
    this._listeners = [];
  }

  _jump(i) {
    if (i === null || i === undefined) return;
    this.pause();
    this.goTo(i);
  }

  // Apply steps from+1 .. to one after another (the normal way forward): their
  // messages fly and their events join the timeline; the state drawn is the last one.
  _advance(from, to) {
    const run = this.run;
    const messages = [];
    const events = [];
    for (let j = Math.max(0, from); j <= to; j++) {
      const step = run.steps[j];
      if (step.messages) messages.push(...step.messages);
      events.push(...run.eventsOf(j));
    }
    this.dash.render(run.states[to]);
    this.dash.showMessages(messages);
    this.dash.addEvents(events);
    this.position = to;
    this._after(run.eventsOf(to).length ? run.eventsOf(to) : events);
  }

  _after(currentEvents) {
    const run = this.run;
    const i = this.position;
    this.dash.markCurrentEvents(currentEvents);
    const v = run.violation && run.violationIndex !== null && i >= run.violationIndex ? run.violation : null;
    this.dash.showViolation(v);
    const e = this.el;
    if (e.position) {
      e.position.dataset.step = String(i);
      e.position.dataset.steps = String(run.length);
      const s = run.steps[i];
      e.position.textContent = `step ${i + 1} / ${run.length} · t = ${s.time.toFixed(3)} s` + (s.kind ? ` · ${s.kind}` : "");
    }
    if (e.scrub) e.scrub.value = String(i);
    if (e.back) e.back.disabled = i <= 0;
    if (e.forward) e.forward.disabled = i >= run.length - 1;
    if (e.violation) e.violation.disabled = run.violationIndex === null;
    if (e.election) e.election.disabled = run.nextElection(i) === null;
    if (e.fault) e.fault.disabled = run.nextFault(i) === null;
  }

  _frame(now) {
    this.raf = null;
    if (!this.playing) return;
    const run = this.run;
    const dt = Math.min(0.25, (now - this.last) / 1000);
    this.last = now;
    this.clock += dt * this.speed;
    let to = this.position;
    const next = run.states[to + 1];
    // Skip quiet stretches: no step for more than MAX_GAP_S of wall time.
    if (next && (next.time - this.clock) / this.speed > MAX_GAP_S) this.clock = next.time - 0.2 * this.speed;
    while (to + 1 < run.length && run.states[to + 1].time <= this.clock) {
      to++;
      if (this.violationAhead && to >= run.violationIndex) break;
    }
    if (to > this.position) this._advance(this.position + 1, to);
    const atViolation = this.violationAhead && this.position >= run.violationIndex;
    if (this.position >= run.length - 1 || atViolation) {
      this.pause();
      return;
    }
    this.raf = requestAnimationFrame(this._frame);
  }
}
