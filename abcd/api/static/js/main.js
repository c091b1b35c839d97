// The page's entry point: `?run=<url>` replays a recorded simulator run; otherwise the
// page watches the live cluster it was served by (live.js).  A run can also be opened
// from a file at any time.

import { Dashboard } from "./view/dashboard.js";
import { Player, loadRunFromFile, loadRunFromUrl } from "./replay.js";

let dashboard = null;
let player = null;
let live = null;

function setMode(mode) {
  document.body.dataset.mode = mode;
  const badge = document.getElementById("mode-badge");
  if (badge) badge.textContent = mode === "live" ? "live" : "replay";
}

// A fresh dashboard for a new source; the old one stops drawing.
function newDashboard(mode, actions) {
  if (player) player.stop();
  player = null;
  if (live && typeof live.stop === "function") live.stop();
  live = null;
  if (dashboard) dashboard.retire();
  setMode(mode);
  dashboard = new Dashboard(document, { mode, actions });
  return dashboard;
}

async function replay(load, what) {
  const dash = newDashboard("replay");
  dash.setConnection(`replay · loading ${what}…`);
  try {
    const run = await load();
    dash.setNotice(null);
    player = new Player(dash, run, document);
  } catch (err) {
    dash.setConnection("replay · no run loaded", null, false);
    dash.setNotice(`${err.message}. Record one with: python -m abcd.sim --nodes 5 --seed 42 --record run.json, then open it here.`, "error");
  }
}

async function startLiveMode() {
  const dash = newDashboard("live");
  dash.setConnection("connecting…");
  let module;
  try {
    module = await import("./live.js");
  } catch (err) {
    dash.setConnection("not connected", null, false);
    dash.setNotice(`The live view could not be loaded (${err.message}). You can still open a recorded simulator run.`, "error");
    return;
  }
  try {
    const started = await module.startLive(dash);
    // A run opened while the live view was still connecting took the page: the live
    // view, once connected, stops at once instead of drawing over the replay.
    if (dashboard !== dash) {
      if (started && typeof started.stop === "function") started.stop();
      return;
    }
    live = started;
  } catch (err) {
    dash.setConnection("not connected", null, false);
    dash.setNotice(`The live view stopped: ${err.message}`, "error");
  }
}

function main() {
  const params = new URLSearchParams(window.location.search);
  const run = params.get("run");
  if (run) replay(() => loadRunFromUrl(run), run);
  else startLiveMode();

  const picker = document.getElementById("replay-file");
  if (picker) {
    picker.addEventListener("change", () => {
      const file = picker.files && picker.files[0];
      if (!file) return;
      replay(() => loadRunFromFile(file), file.name);
      picker.value = "";
    });
  }
}

main();
