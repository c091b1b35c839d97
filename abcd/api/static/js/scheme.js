// Members are called with the page's own scheme: a page served over https (a cluster
// run with TLS, docs/security.md) reaches the members with https and wss.
export const HTTP_SCHEME = location.protocol === "https:" ? "https" : "http";
export const WS_SCHEME = location.protocol === "https:" ? "wss" : "ws";
