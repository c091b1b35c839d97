// The keys panel: put, get, delete, range by prefix, compare-and-swap, and a live
// watch of a prefix, all on the live cluster.
//
// Requests travel over the /v1/session websocket of the member the page reads from
// (websockets need no CORS, so this works on any member); the answer says which
// member answered, with the revision and the key's version. A watch follows
// /v1/watch?prefix= and, when its member goes away, resumes on another one from the
// revision after the last it showed, so no change is missed or shown twice.
//
// On a cluster with auth on, the login row gets a token (POST /v1/auth/authenticate)
// that every request then carries (a session request's "auth", a watch's ?token=);
// with auth off (the default) the row is not needed and nothing carries a token.

import { WS_SCHEME, introduce } from "./scheme.js";

const REQUEST_TIMEOUT_MS = 10000;
const OPEN_TIMEOUT_MS = 2000;
const MAX_WATCH_ROWS = 200;

/** Fill `section` (#keys) with the panel; `live` is the live source's context. */
export function mountKeys(section, live) {
  section.innerHTML = `
    <h2>Keys</h2>
    <div class="kv-form">
      <label>key <input id="kv-key" type="text" placeholder="greeting" autocomplete="off"></label>
      <label>value <input id="kv-value" type="text" placeholder="hello" autocomplete="off"></label>
      <label>expected <input id="kv-expected" type="text" placeholder="for compare-and-swap" autocomplete="off"></label>
      <label>read <select id="kv-consistency">
        <option value="linearizable">linearizable</option>
        <option value="serializable">serializable</option>
      </select></label>
    </div>
    <div class="kv-buttons">
      <button id="kv-put" type="button">put</button>
      <button id="kv-get" type="button">get</button>
      <button id="kv-delete" type="button">delete</button>
      <button id="kv-range" type="button" title="every key that starts with the key field">range (prefix)</button>
      <button id="kv-cas" type="button" title="txn: if value == expected then put value">compare-and-swap</button>
    </div>
    <div class="kv-login">
      <label>user <input id="kv-user" type="text" placeholder="only with auth on" autocomplete="username"></label>
      <label>password <input id="kv-password" type="password" autocomplete="current-password"></label>
      <button id="kv-login" type="button">log in</button>
      <span id="kv-login-state" class="watch-state"></span>
    </div>
    <pre id="kv-result" class="kv-result" aria-live="polite"></pre>
    <h3>Watch</h3>
    <div class="watch-form">
      <label>prefix <input id="watch-prefix" type="text" placeholder="(empty: every key)" autocomplete="off"></label>
      <button id="watch-start" type="button">watch</button>
      <button id="watch-stop" type="button" disabled>stop</button>
      <span id="watch-state" class="watch-state"></span>
    </div>
    <ol id="watch-events" class="watch-events"></ol>`;
  const $ = (id) => section.querySelector(`#${id}`);
  const auth = { token: null };
  const session = new Session(live, auth);
  const result = $("kv-result");
  $("kv-login").onclick = async () => {
    const state = $("kv-login-state");
    const user = $("kv-user").value;
    const answer = await authenticate(live, user, $("kv-password").value);
    $("kv-password").value = "";
    auth.token = answer.token ?? null;
    state.textContent = answer.token ? `logged in as ${user}` : `not logged in: ${answer.error ?? "no answer"}`;
  };

  const key = () => $("kv-key").value;
  const serializable = () => $("kv-consistency").value === "serializable";
  const run = async (label, request) => {
    if (request.key === "" && request.op !== "range") {
      show(result, { op: label, status: 400, body: { error: "the key field is empty", code: "bad_request" }, member: null }, live);
      return;
    }
    result.dataset.pending = "true";
    const answer = await session.send(request);
    delete result.dataset.pending;
    show(result, { op: label, ...answer }, live);
  };

  $("kv-put").onclick = () => run("put", { op: "put", key: key(), value: $("kv-value").value });
  $("kv-get").onclick = () => run("get", { op: "get", key: key(), serializable: serializable() });
  $("kv-delete").onclick = () => run("delete", { op: "delete", key: key() });
  $("kv-range").onclick = () => run("range", { op: "range", prefix: key(), limit: 100, serializable: serializable() });
  $("kv-cas").onclick = () => run("compare-and-swap", {
    op: "txn",
    compare: [{ key: key(), target: "value", op: "==", value: $("kv-expected").value }],
    success: [{ put: { key: key(), value: $("kv-value").value } }],
    failure: [{ get: { key: key() } }],
  });

  const watch = new Watch(live, $("watch-events"), $("watch-state"), auth);
  $("watch-start").onclick = () => {
    watch.start($("watch-prefix").value);
    $("watch-start").disabled = true;
    $("watch-stop").disabled = false;
  };
  $("watch-stop").onclick = () => {
    watch.stop();
    $("watch-start").disabled = false;
    $("watch-stop").disabled = true;
  };
  return {
    stop() {
      watch.stop();
      session.close();
      section.replaceChildren();
    },
  };
}

/** {token} from the first member that answers, or {error}. */
async function authenticate(live, name, password) {
  for (const target of live.candidates()) {
    try {
      const reply = await fetch(`http://${target.address}/v1/auth/authenticate`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name, password }),
      });
      const body = await reply.json();
      return reply.ok ? { token: body.token } : { error: body.error };
    } catch (e) {
      continue; // that member is down: ask another
    }
  }
  return { error: "no member answered" };
}

/** Put an answer in #kv-result: what was asked, what came back, and from whom. */
function show(result, answer, live) {
  const { op, status, body, member } = answer;
  const who = member !== null ? live.member(member) : null;
  result.dataset.member = member !== null ? String(member) : "";
  result.dataset.status = String(status);
  result.classList.toggle("error", !(status >= 200 && status < 300));
  delete result.dataset.revision;
  delete result.dataset.version;
  delete result.dataset.code;
  delete result.dataset.succeeded;
  const lines = [];
  const from = who ? `${who.name} (id ${who.id})` : member !== null ? `member ${member}` : "no member";
  if (!(status >= 200 && status < 300)) {
    result.dataset.code = body.code ?? "";
    lines.push(`${op} failed: ${body.error ?? "no explanation"}`);
    lines.push(`code ${body.code ?? "?"}, HTTP ${status || "none"}, from ${from}`);
    result.textContent = lines.join("\n");
    return;
  }
  if (body.revision !== undefined) result.dataset.revision = String(body.revision);
  if (op === "get") {
    if (body.kv) {
      result.dataset.version = String(body.kv.version);
      lines.push(`${body.kv.key} = ${JSON.stringify(body.kv.value)}`);
      lines.push(describeKv(body.kv));
    } else {
      lines.push("no such key");
    }
  } else if (op === "put") {
    lines.push(`written at revision ${body.revision}`);
    if (body.prev_kv) lines.push(`it replaced ${JSON.stringify(body.prev_kv.value)} (version ${body.prev_kv.version})`);
    else lines.push("a new key (version 1)");
    result.dataset.version = String(body.prev_kv ? body.prev_kv.version + 1 : 1);
  } else if (op === "delete") {
    lines.push(body.deleted ? `deleted ${body.deleted} key(s)` : "nothing to delete");
  } else if (op === "range") {
    const kvs = body.kvs ?? [];
    lines.push(`${kvs.length} key(s)${body.more ? " (more not shown)" : ""}`);
    for (const kv of kvs) lines.push(`  ${kv.key} = ${JSON.stringify(kv.value)}  (version ${kv.version}, mod ${kv.mod_revision})`);
  } else if (op === "compare-and-swap") {
    const first = (body.responses ?? [])[0] ?? {};
    if (body.succeeded) {
      lines.push("the value was as expected: swapped");
    } else {
      const kv = first.get ? first.get.kv : null;
      lines.push(`not swapped: the value is ${kv ? JSON.stringify(kv.value) : "absent (no such key)"}`);
      if (kv) result.dataset.version = String(kv.version);
    }
    result.dataset.succeeded = String(Boolean(body.succeeded));
  }
  lines.push(`revision ${body.revision}, answered by ${from}`);
  result.textContent = lines.join("\n");
}

function describeKv(kv) {
  return `version ${kv.version}, created at revision ${kv.create_revision}, modified at ${kv.mod_revision}` +
    (kv.lease ? `, lease ${kv.lease}` : "");
}

/** The /v1/session websocket to one live member, opened when first needed. */
class Session {
  constructor(live, auth = null) {
    this.live = live;
    this.auth = auth; // {token}: the login row's, null with auth off
    this.socket = null;
    this.member = null;
    this.nextId = 1;
    this.waiting = new Map(); // id -> resolve
  }

  /** Send one request; resolves to {status, body, member}, never rejects. */
  async send(request) {
    const tried = new Set();
    for (;;) {
      const socket = await this.connect(tried);
      if (!socket) {
        return { status: 0, body: { error: "no member accepted a session connection", code: "unreachable" }, member: null };
      }
      const member = this.member;
      const answer = await this.exchange(socket, request);
      if (answer) return { ...answer, member };
      // The socket closed before answering. A read can go to another member; a
      // write's fate is unknown, so it is reported rather than sent twice.
      if (request.op !== "get" && request.op !== "range") {
        return {
          status: 0, member,
          body: { error: "the connection closed before an answer: the write may or may not have been applied", code: "unknown" },
        };
      }
      tried.add(member);
    }
  }

  exchange(socket, request) {
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve({ status: 0, body: { error: `no answer within ${REQUEST_TIMEOUT_MS / 1000} s`, code: "timeout" } });
      }, REQUEST_TIMEOUT_MS);
      this.waiting.set(id, (answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
      const token = this.auth ? this.auth.token : null;
      socket.send(JSON.stringify([token ? { id, ...request, auth: token } : { id, ...request }]));
    });
  }

  /** The open socket, or a new one to the page's member, or to another that answers. */
  async connect(tried) {
    const primary = this.live.primary();
    if (this.socket && this.socket.readyState === WebSocket.OPEN && !tried.has(this.member)
        && (!primary || !primary.up || primary.id === this.member || this.waiting.size)) {
      return this.socket;
    }
    this.close();
    for (const target of this.live.candidates()) {
      if (tried.has(target.id)) continue;
      const socket = await open(`${WS_SCHEME}://${target.address}/v1/session`);
      if (!socket) {
        tried.add(target.id);
        continue;
      }
      this.socket = socket;
      this.member = target.id;
      socket.onmessage = (message) => this.receive(message);
      socket.onclose = () => {
        if (this.socket === socket) this.socket = null;
        for (const resolve of this.waiting.values()) resolve(null);
        this.waiting.clear();
      };
      return socket;
    }
    return null;
  }

  receive(message) {
    let answers;
    try {
      answers = JSON.parse(message.data);
    } catch (e) {
      return;
    }
    for (const answer of Array.isArray(answers) ? answers : []) {
      const resolve = this.waiting.get(answer.id);
      if (!resolve) continue;
      this.waiting.delete(answer.id);
      resolve({ status: answer.status, body: answer.body ?? {} });
    }
  }

  close() {
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.close();
    }
  }
}

/** A websocket once open, or null if it could not open in time. */
async function open(url) {
  await introduce(new URL(url).host);
  return new Promise((resolve) => {
    let socket;
    try {
      socket = new WebSocket(url);
    } catch (e) {
      resolve(null);
      return;
    }
    const timer = setTimeout(() => {
      socket.close();
      resolve(null);
    }, OPEN_TIMEOUT_MS);
    socket.onopen = () => {
      clearTimeout(timer);
      resolve(socket);
    };
    socket.onerror = () => {
      clearTimeout(timer);
      resolve(null);
    };
  });
}

/** A live watch of a prefix, resumed on another member when its member goes away. */
class Watch {
  constructor(live, list, label, auth = null) {
    this.live = live;
    this.auth = auth;
    this.list = list;
    this.label = label;
    this.socket = null;
    this.prefix = null;
    this.lastRevision = null;
    this.retryTimer = null;
  }

  start(prefix) {
    this.stop();
    this.prefix = prefix;
    this.lastRevision = null;
    this.list.replaceChildren();
    this.connect(new Set());
  }

  async connect(tried) {
    if (this.prefix === null) return;
    const target = this.live.candidates().find((m) => !tried.has(m.id));
    if (!target) {
      this.setLabel("no member answers; retrying", "");
      this.retryTimer = setTimeout(() => this.connect(new Set()), 1000);
      return;
    }
    let query = `prefix=${encodeURIComponent(this.prefix)}`;
    if (this.lastRevision !== null) query += `&start_revision=${this.lastRevision + 1}`;
    if (this.auth && this.auth.token) query += `&token=${encodeURIComponent(this.auth.token)}`;
    const prefix = this.prefix;
    const socket = await open(`${WS_SCHEME}://${target.address}/v1/watch?${query}`);
    if (this.prefix !== prefix) {
      if (socket) socket.close();
      return;
    }
    if (!socket) {
      tried.add(target.id);
      this.connect(tried);
      return;
    }
    this.socket = socket;
    this.setLabel(`watching "${prefix}" on ${target.name}`, String(target.id));
    socket.onmessage = (message) => this.receive(message);
    socket.onclose = (close) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.setLabel(`${target.name} closed the watch${close.reason ? ` (${close.reason})` : ""}; resuming`, "");
      this.retryTimer = setTimeout(() => this.connect(new Set([target.id])), 250);
    };
  }

  receive(message) {
    let frame;
    try {
      frame = JSON.parse(message.data);
    } catch (e) {
      return;
    }
    if (this.lastRevision !== null && frame.revision <= this.lastRevision) return;
    this.lastRevision = frame.revision;
    for (const change of frame.events ?? []) {
      const row = document.createElement("li");
      row.className = `watch-event watch-${change.type}`;
      row.dataset.key = change.kv.key;
      row.dataset.type = change.type;
      row.dataset.revision = String(frame.revision);
      row.textContent = change.type === "put"
        ? `rev ${frame.revision}: put ${change.kv.key} = ${JSON.stringify(change.kv.value)} (version ${change.kv.version})`
        : `rev ${frame.revision}: delete ${change.kv.key}`;
      this.list.prepend(row);
    }
    while (this.list.children.length > MAX_WATCH_ROWS) this.list.lastElementChild.remove();
  }

  setLabel(text, member) {
    if (!this.label) return;
    this.label.textContent = text;
    this.label.dataset.member = member;
  }

  stop() {
    this.prefix = null;
    clearTimeout(this.retryTimer);
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.close();
    }
    this.setLabel("", "");
  }
}
