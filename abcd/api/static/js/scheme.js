// Members are called with the page's own scheme: a page served over https (a cluster
// run with TLS, docs/security.md) reaches the members with https and wss.
export const HTTP_SCHEME = location.protocol === "https:" ? "https" : "http";
export const WS_SCHEME = location.protocol === "https:" ? "wss" : "ws";

// On an https page, the first websocket to a member is preceded by a plain request to
// it.  A node that asks for client certificates (it does when peer mutual TLS shares its
// port, docs/security.md) makes a browser cancel a websocket to a host for which it has
// not yet decided which certificate to present; an ordinary request lets it decide
// (none, or the user's choice), and the websockets that follow open.
const introduced = new Map();

export function introduce(address) {
  if (location.protocol !== "https:") return Promise.resolve();
  if (!introduced.has(address)) {
    const request = fetch(`https://${address}/healthz`, { mode: "no-cors", cache: "no-store" }).then(
      () => {},
      () => { introduced.delete(address); }, // unreachable for now: asked again next time
    );
    introduced.set(address, request);
  }
  return introduced.get(address);
}
