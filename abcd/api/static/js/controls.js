// Cluster controls of the live view: faults (isolate, split, one-way cut, latency and
// loss on a link, heal), leadership transfer, membership (add a learner, remove,
// promote) and, under `python -m abcd demo`, stop, kill -9 and restart.
//
// Faults use each node's POST /v1/admin/faults, which states the node's whole fault
// setting: every change here starts from the member's current setting (its status
// `faults`) and changes one thing, so that isolating one member keeps a delay set on
// another link. A node started without --enable-faults refuses them; the controls
// then say so instead of failing.

const FAULT_FIELDS = ["partition", "delay_ms", "jitter_ms", "drop_rate", "cut_to", "links"];
const NO_FAULTS = "start the node with --enable-faults";

/** The callbacks of the member cards' buttons (see the Dashboard's `actions`). */
export function memberActions(live) {
  // Each answer goes to #controls-result; a failure is also thrown, for the card to show.
  const report = (label, replies) => {
    const outcome = reportReplies(label, replies);
    if (!outcome.ok) throw new Error(outcome.problems.join("; "));
    return outcome;
  };
  const name = (id) => live.member(id)?.name ?? `member ${id}`;
  const actions = {
    isolate: async (id) => report(`isolate ${name(id)}`, await isolate(live, id)),
    heal: async (id) => report(`heal ${name(id)}`, await heal(live, id)),
    transfer: async (id) => report(`transfer leadership to ${name(id)}`,
      [await live.request("POST", "/v1/leader/transfer", { to: id }, { timeoutMs: 15000 })]),
    remove: async (id) => {
      const reply = await live.request("DELETE", `/v1/members/${id}`, undefined, { timeoutMs: 15000 });
      live.refresh();
      return report(`remove ${name(id)}`, [reply]);
    },
    promote: async (id) => {
      const reply = await live.request("POST", `/v1/members/${id}/promote`, undefined, { timeoutMs: 15000 });
      live.refresh();
      return report(`promote ${name(id)}`, [reply]);
    },
    disabledReason: (id, action) => disabledReason(live, id, action),
  };
  if (live.demo()) {
    for (const verb of ["stop", "kill", "restart"]) {
      actions[verb] = async (id) => {
        const member = live.member(id);
        const port = member?.supervised?.port ?? portOf(member?.address);
        const label = `${verb === "kill" ? "kill -9" : verb} ${name(id)}`;
        if (port === null) return report(label, [failure(`${name(id)} has no known port`)]);
        return report(label, [await live.demoRequest("POST", `/demo/members/${port}/${verb}`)]);
      };
    }
  }
  return actions;
}

/** Why a card's button is disabled, or null when it may be pressed. */
function disabledReason(live, id, action) {
  const state = live.state();
  const member = live.member(id);
  if (!state || !member) return "unknown member";
  switch (action) {
    case "isolate":
    case "heal": {
      const refusing = state.members.filter((m) => m.up && m.faults_enabled === false);
      if (refusing.length) return `${names(refusing)} refuse faults: ${NO_FAULTS}`;
      if (action === "isolate" && !member.up) return "not answering";
      return null;
    }
    case "transfer":
      if (!member.voter) return "a learner cannot lead";
      if (!member.up) return "not answering";
      if (state.leader === id) return "already the leader";
      if (state.leader === null) return "no leader to hand over from";
      return null;
    case "promote":
      return member.voter ? "already a voter" : null;
    case "remove":
      return state.members.length <= 1 ? "the last member cannot be removed" : null;
    case "stop":
    case "kill":
      if (!member.supervised) return "not started by the demo";
      return member.supervised.state === "running" ? null : "not running";
    case "restart":
      if (!member.supervised) return "not started by the demo";
      return member.supervised.state === "running" ? "already running" : null;
    default:
      return null;
  }
}

/** Fill `section` (#controls) with the cluster-wide controls. */
export function mountControls(section, live) {
  const demo = live.demo();
  section.innerHTML = `
    <h2>Controls</h2>
    <p id="faults-reason" class="reason" hidden></p>
    <div class="control-row">
      <button id="split" type="button" title="the leader and fewer than half of the voters on one side, the majority on the other">split majority / minority</button>
      <button id="heal-all" type="button" title="every member drops all its faults">heal all</button>
    </div>
    <fieldset class="link-controls">
      <legend>one link</legend>
      <label>from <select id="link-from"></select></label>
      <label>to <select id="link-to"></select></label>
      <label><input id="link-cut-one-way" type="checkbox"> cut one way (from → to)</label>
      <label>delay <input id="link-delay-ms" type="number" min="0" step="10" value="0"> ms</label>
      <label>loss <input id="link-drop-rate" type="number" min="0" max="1" step="0.05" value="0"></label>
      <button id="link-apply" type="button">apply</button>
    </fieldset>
    <div class="control-row">
      <label>address <input id="member-add-address" type="text" placeholder="127.0.0.1:8083" autocomplete="off"></label>
      <button id="member-add" type="button" title="the node at that address joins as a learner and is promoted once caught up">add as learner</button>
      ${demo ? `<button id="member-start" type="button" title="the demo starts a node on the next free port; it joins as a learner and is promoted once caught up">start a new member</button>` : ""}
    </div>
    ${demo ? `<div class="control-row"><label><input id="slow-mode" type="checkbox"${demo.slow ? " checked" : ""}>
      slow mode (long heartbeats and election timeouts, to follow one election)</label></div>` : ""}
    <pre id="controls-result" class="controls-result" aria-live="polite"></pre>`;
  const $ = (id) => section.querySelector(`#${id}`);
  const run = (label, work) => async () => reportReplies(label, await work());

  $("split").onclick = run("split the cluster", () => split(live));
  $("heal-all").onclick = run("heal all", () => healAll(live));
  $("link-apply").onclick = run("set the link", () => setLink(live, {
    from: Number($("link-from").value),
    to: Number($("link-to").value),
    cut: $("link-cut-one-way").checked,
    delay_ms: Number($("link-delay-ms").value) || 0,
    drop_rate: Number($("link-drop-rate").value) || 0,
  }));
  $("member-add").onclick = run("add a learner", async () => {
    const address = $("member-add-address").value.trim();
    if (!address) return [failure("the address field is empty (host:port of a running node)")];
    const reply = await live.request("POST", "/v1/members", { address, learner: true }, { timeoutMs: 15000 });
    live.refresh();
    return [reply];
  });
  if (demo) {
    $("member-start").onclick = run("start a new member", async () => {
      const reply = await live.demoRequest("POST", "/demo/members");
      live.refresh();
      return [reply];
    });
    $("slow-mode").onchange = run("slow mode", async () => {
      const box = $("slow-mode");
      const reply = await live.demoRequest("POST", "/demo/slow", { slow: box.checked });
      if (reply.ok) return [reply];
      box.checked = !box.checked;
      if (reply.status === 404 || reply.status === 405) {
        return [failure("this demo sets slow mode when it starts: python -m abcd demo --slow")];
      }
      return [reply];
    });
  }
  live.onState((state) => update(section, state));
  return {
    stop() {
      section.replaceChildren();
      delete section.dataset.faultsEnabled;
    },
  };
}

function update(section, state) {
  const $ = (id) => section.querySelector(`#${id}`);
  for (const id of ["link-from", "link-to"]) fillMembers($(id), state.members);
  if ($("link-to").value === $("link-from").value && $("link-to").options.length > 1) {
    $("link-to").selectedIndex = ($("link-from").selectedIndex + 1) % $("link-to").options.length;
  }
  const refusing = state.members.filter((m) => m.up && m.faults_enabled === false);
  const enabled = refusing.length === 0;
  section.dataset.faultsEnabled = String(enabled);
  const reason = $("faults-reason");
  const text = enabled ? "" : `fault injection is off on ${names(refusing)}: ${NO_FAULTS}`;
  reason.hidden = enabled;
  reason.textContent = text;
  for (const id of ["split", "heal-all", "link-apply", "link-from", "link-to", "link-cut-one-way", "link-delay-ms", "link-drop-rate"]) {
    $(id).disabled = !enabled;
    if (!enabled) $(id).title = text;
  }
}

function fillMembers(select, members) {
  const wanted = members.map((m) => `${m.id}:${m.name}`).join(",");
  if (select.dataset.members === wanted) return;
  const chosen = select.value;
  select.replaceChildren(...members.map((m) => new Option(`${m.name} (id ${m.id})`, String(m.id))));
  select.dataset.members = wanted;
  if (members.some((m) => String(m.id) === chosen)) select.value = chosen;
}

// ------------------------------------------------------------------ faults

/** A member's current fault setting as a POST body (counters left out). */
function currentSetting(member) {
  const body = { partition: [] };
  for (const field of FAULT_FIELDS) {
    if (member?.faults && member.faults[field] !== undefined) body[field] = structuredClone(member.faults[field]);
  }
  return body;
}

/** Change one member's setting with `edit(body)` and POST it. */
async function editFaults(live, id, edit) {
  const body = currentSetting(live.member(id));
  edit(body);
  return live.request("POST", "/v1/admin/faults", body, { member: id });
}

const withIds = (list, ids) => [...new Set([...(list ?? []), ...ids])].sort((a, b) => a - b);
const withoutIds = (list, ids) => (list ?? []).filter((x) => !ids.includes(x));

/** Isolate: the member drops every peer, and every peer drops it. */
async function isolate(live, id) {
  const others = live.state().members.filter((m) => m.id !== id).map((m) => m.id);
  return Promise.all([
    editFaults(live, id, (body) => { body.partition = withIds(body.partition, others); }),
    ...others.map((other) => editFaults(live, other, (body) => { body.partition = withIds(body.partition, [id]); })),
  ]);
}

/** Heal one member: it drops all its faults, and the others every fault toward it. */
async function heal(live, id) {
  const others = live.state().members.filter((m) => m.id !== id).map((m) => m.id);
  return Promise.all([
    live.request("DELETE", "/v1/admin/faults", undefined, { member: id }),
    ...others.map((other) => editFaults(live, other, (body) => {
      body.partition = withoutIds(body.partition, [id]);
      if (body.cut_to) body.cut_to = withoutIds(body.cut_to, [id]);
      if (body.links) delete body.links[String(id)];
    })),
  ]);
}

async function healAll(live) {
  const members = live.state().members;
  return Promise.all(members.map((m) => live.request("DELETE", "/v1/admin/faults", undefined, { member: m.id })));
}

/**
 * Split: the leader and fewer than half of the voters on one side, the rest on the
 * other, so that the majority elects a new leader while the old one cannot commit.
 */
async function split(live) {
  const state = live.state();
  const voters = state.members.filter((m) => m.voter);
  const minoritySize = Math.max(1, Math.floor((voters.length - 1) / 2));
  const ordered = [...voters].sort((a, b) => (b.id === state.leader) - (a.id === state.leader) || a.id - b.id);
  const minority = ordered.slice(0, minoritySize).map((m) => m.id);
  const majority = state.members.map((m) => m.id).filter((id) => !minority.includes(id));
  return Promise.all(state.members.map((m) => {
    const otherSide = minority.includes(m.id) ? majority : minority;
    return editFaults(live, m.id, (body) => { body.partition = withIds(body.partition, otherSide); });
  }));
}

/** One link: a one-way cut from → to, and delay or loss on it, set at `from`. */
async function setLink(live, { from, to, cut, delay_ms, drop_rate }) {
  if (from === to) return [failure("pick two different members for a link")];
  if (delay_ms < 0 || drop_rate < 0 || drop_rate > 1) {
    return [failure(`delay must be >= 0 ms and loss between 0 and 1, got ${delay_ms} ms and ${drop_rate}`)];
  }
  const reply = await editFaults(live, from, (body) => {
    body.cut_to = cut ? withIds(body.cut_to, [to]) : withoutIds(body.cut_to, [to]);
    const links = { ...(body.links ?? {}) };
    if (delay_ms > 0 || drop_rate > 0) links[String(to)] = { delay_ms, jitter_ms: 0, drop_rate };
    else delete links[String(to)];
    body.links = links;
  });
  return [reply];
}

// ------------------------------------------------------------------ reporting

function failure(error) {
  return { ok: false, status: 400, body: { error, code: "bad_request" }, member: null };
}

/** Show what each call answered in #controls-result; errors say what was wrong. */
function reportReplies(label, replies) {
  const out = document.getElementById("controls-result");
  const failed = replies.filter((r) => !r.ok);
  const lines = [failed.length ? `${label}: ${failed.length} of ${replies.length} call(s) failed` : `${label}: done`];
  for (const r of failed) {
    const who = r.member !== null ? `member ${r.member}` : "the page";
    lines.push(`  ${who}: ${r.body.error ?? "no explanation"} (${r.body.code ?? `HTTP ${r.status}`})`);
  }
  if (out) {
    out.textContent = lines.join("\n");
    out.classList.toggle("error", failed.length > 0);
    out.dataset.status = failed.length ? "error" : "ok";
  }
  return { ok: failed.length === 0, replies, problems: lines.slice(1).map((line) => line.trim()) };
}

function names(members) {
  return members.map((m) => m.name).join(", ");
}

function portOf(address) {
  const match = /:(\d+)$/.exec(address ?? "");
  return match ? Number(match[1]) : null;
}
