"""`abcdctl` (= `tools/kvclient.py`): the command line over abcd.client.

Exit codes: 0 ok; 1 key not found, compare failed or the cluster refused the request;
2 usage error (including a request the cluster calls malformed); 3 cluster unavailable
or timed out, with a message that says whether a write's outcome is unknown.  Output
piped to a reader that stops early (`abcdctl status | head -3`) ends quietly, with 0.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import sys

import orjson

from . import cli_auth
from .client import BadRequest, Client, ClientError, NotFound, NotSupported, Unavailable, parse_endpoint, tls_context
from .usage import UsageError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3


class Failed(Exception):
    """A request that was understood but did not succeed (not found, compare failed): exit 1."""


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description="Command line client for an abcd cluster.")
    p.add_argument("--endpoints", default="127.0.0.1:8080", metavar="H:P[,H:P...]",
                   help="cluster members to talk to (default 127.0.0.1:8080)")
    p.add_argument("--json", action="store_true", help="print the API's JSON answers")
    p.add_argument("--timeout", type=_positive_float, default=5.0, metavar="S",
                   help="give up after S seconds of retries (default 5)")
    cli_auth.add_user_flag(p)
    # TLS (docs/security.md): with any of these, bare H:P endpoints are https.
    p.add_argument("--cacert", dest="tls_cacert", metavar="FILE", default=os.environ.get("ABCD_CACERT"),
                   help="trust this CA (PEM) to verify the nodes; env ABCD_CACERT")
    p.add_argument("--cert", dest="tls_cert", metavar="FILE", default=os.environ.get("ABCD_CERT"),
                   help="client certificate, for a cluster run with --client-cert-auth; env ABCD_CERT")
    p.add_argument("--key", dest="tls_key", metavar="FILE", default=os.environ.get("ABCD_KEY"),
                   help="private key of --cert; env ABCD_KEY")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    c = sub.add_parser("put", help="set KEY to VALUE")
    c.add_argument("key"), c.add_argument("value")
    c.add_argument("--lease", type=int, metavar="ID", help="attach the key to lease ID")
    c = sub.add_parser("get", help="print the value of KEY")
    c.add_argument("key")
    c.add_argument("--serializable", action="store_true", help="read the contacted node's local state")
    c.add_argument("--rev", type=_non_negative_int, metavar="N", help="read at revision N")
    c = sub.add_parser("del", help="delete KEY")
    c.add_argument("key")
    c.add_argument("--prefix", action="store_true", help="delete every key starting with KEY")
    c = sub.add_parser("range", help="list the keys starting with PREFIX")
    c.add_argument("prefix")
    c.add_argument("--limit", type=_non_negative_int, metavar="N", help="at most N keys")
    c = sub.add_parser("cas", help="set KEY to NEW if its value is EXPECTED")
    c.add_argument("key"), c.add_argument("expected"), c.add_argument("new")
    sub.add_parser("txn", help="a transaction read as JSON from stdin, as POST /v1/txn")
    c = sub.add_parser("watch", help="print changes of KEY as they happen")
    c.add_argument("key")
    c.add_argument("--prefix", action="store_true", help="watch every key starting with KEY")
    c.add_argument("--rev", type=_non_negative_int, metavar="N", help="start at revision N")

    lease = sub.add_parser("lease", help="grant, keep alive or revoke a lease").add_subparsers(
        dest="lease_command", metavar="grant TTL | keepalive ID | revoke ID", required=True)
    lease.add_parser("grant").add_argument("ttl", type=_positive_int)
    lease.add_parser("keepalive").add_argument("id", type=int)
    lease.add_parser("revoke").add_argument("id", type=int)

    c = sub.add_parser("compact", help="forget the history below revision REV on every member")
    c.add_argument("rev", type=_positive_int)
    snap = sub.add_parser("snapshot", help="save a backup of a member's store, or check a backup file").add_subparsers(
        dest="snapshot_command", metavar="save FILE | status FILE", required=True)
    snap.add_parser("save", help="save a backup of one member's store to FILE").add_argument("file")
    snap.add_parser("status", help="check FILE and print its revision, keys, size and checksum").add_argument("file")
    sub.add_parser("status", help="the contacted node's status")
    members = sub.add_parser("members", help="list or change the members")
    msub = members.add_subparsers(
        dest="members_command", metavar="add ADDR [--learner | --voter] | remove ID | promote ID")
    c = msub.add_parser("add", help="add the node at ADDR (as a learner unless --voter)")
    c.add_argument("address", type=_address)
    role = c.add_mutually_exclusive_group()
    role.add_argument("--learner", dest="voter", action="store_false",
                      help="add as a learner, promoted to voter by the leader once caught up (the default)")
    role.add_argument("--voter", dest="voter", action="store_true",
                      help="add as a voter at once: the quorum grows before the node has the log")
    c.set_defaults(voter=False)
    c.add_argument("--cluster-token", metavar="TOKEN", default=os.environ.get("ABCD_CLUSTER_TOKEN"),
                   help="the cluster's --cluster-token, if it has one (default: $ABCD_CLUSTER_TOKEN)")
    msub.add_parser("remove").add_argument("id", type=int)
    msub.add_parser("promote").add_argument("id", type=int)
    leader = sub.add_parser("leader", help="leadership transfer").add_subparsers(
        dest="leader_command", metavar="transfer ID", required=True)
    leader.add_parser("transfer").add_argument("id", type=int)
    cli_auth.add_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: --help exits 0, a usage error 2
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    try:
        tls = tls_context(cacert=args.tls_cacert, cert=args.tls_cert, key=args.tls_key)
        scheme = "https" if tls is not None else "http"
        endpoints = [parse_endpoint(e, scheme) for e in args.endpoints.split(",") if e.strip()]
        if not endpoints:
            raise ValueError("--endpoints names no endpoint")
        stdin_body = _read_txn(sys.stdin) if args.command == "txn" else None
        args.credentials = cli_auth.credentials(args.user)
    except (ValueError, UsageError) as e:
        return _fail(parser.prog, str(e), EXIT_USAGE)
    except (OSError, ssl.SSLError) as e:  # a TLS file missing or not PEM
        return _fail(parser.prog, f"TLS files (--cacert, --cert, --key): {e}", EXIT_USAGE)
    try:
        return asyncio.run(_run(args, endpoints, stdin_body, tls))
    except BrokenPipeError:
        return _reader_gone()
    except KeyboardInterrupt:
        return EXIT_OK if args.command == "watch" else 130
    except (UsageError, cli_auth.CredentialsError) as e:
        return _fail(parser.prog, str(e), EXIT_USAGE)
    except Failed as e:
        return _fail(parser.prog, str(e), EXIT_FAILED)
    except NotSupported as e:
        return _fail(parser.prog, f"{args.command}: not supported yet by this cluster ({e.message})", EXIT_USAGE)
    except Unavailable as e:
        return _fail(parser.prog, e.message, EXIT_UNAVAILABLE)
    except BadRequest as e:
        return _fail(parser.prog, f"bad request: {e.message}", EXIT_USAGE)
    except NotFound as e:
        return _fail(parser.prog, e.message, EXIT_FAILED)
    except ClientError as e:
        hint = " (give a user with --user NAME)" if e.status == 401 and args.user is None else ""
        return _fail(parser.prog, f"the cluster refused: {e.message} ({e.status} {e.code}){hint}", EXIT_FAILED)


async def _run(args: argparse.Namespace, endpoints: list[str], txn_body: dict | None, tls=None) -> int:
    user, password = args.credentials or (None, None)
    async with Client(endpoints, timeout=args.timeout, ssl=tls, user=user, password=password) as c:
        handler = _COMMANDS[args.command]
        return await handler(c, args, _Printer(args.json), txn_body)


class _Printer:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def out(self, answer: dict, human: str | None) -> None:
        """Print the API's JSON with --json, else the human text (if any)."""
        if self.as_json:
            print(orjson.dumps(answer).decode(), flush=True)
        elif human is not None:
            print(human, flush=True)


# --------------------------------------------------------------------------- commands


async def _put(c: Client, a, pr: _Printer, _b) -> int:
    answer = await c.put(a.key, a.value, lease=a.lease)
    pr.out(answer, f"OK (revision {answer.get('revision')})")
    return EXIT_OK


async def _get(c: Client, a, pr: _Printer, _b) -> int:
    answer = await c.get(a.key, serializable=a.serializable, revision=a.rev)
    if answer is None:
        raise Failed(f"key {a.key!r} not found")
    pr.out(answer, answer["kv"]["value"])
    return EXIT_OK


async def _del(c: Client, a, pr: _Printer, _b) -> int:
    answer = await c.delete(a.key, prefix=a.prefix)
    deleted = answer.get("deleted", 0)
    pr.out(answer, f"deleted {deleted}")
    if not deleted:
        raise Failed(f"no key starts with {a.key!r}" if a.prefix else f"key {a.key!r} not found")
    return EXIT_OK


async def _range(c: Client, a, pr: _Printer, _b) -> int:
    answer = await c.range(a.prefix, limit=a.limit)
    kvs = answer.get("kvs", [])
    width = max((len(kv["key"]) for kv in kvs), default=0)
    pr.out(answer, "\n".join(f"{kv['key']:<{width}}  {kv['value']}" for kv in kvs) if kvs else None)
    if answer.get("more") and not pr.as_json:
        print(f"(more keys follow; showing {len(kvs)}, raise --limit)", file=sys.stderr)
    return EXIT_OK


async def _cas(c: Client, a, pr: _Printer, _b) -> int:
    answer = await c.cas(a.key, a.expected, a.new)
    if not answer.get("succeeded"):
        pr.out(answer, None)
        raise Failed(f"compare failed: the value of {a.key!r} is not {a.expected!r}; nothing changed")
    pr.out(answer, f"OK (revision {answer.get('revision')})")
    return EXIT_OK


async def _txn(c: Client, a, pr: _Printer, body: dict) -> int:
    answer = await c.txn(body.get("compare", []), body.get("success", []), body.get("failure", []))
    succeeded = bool(answer.get("succeeded"))
    lines = ["SUCCEEDED" if succeeded else "FAILED (compare false: the failure branch ran)"]
    lines += [orjson.dumps(r).decode() for r in answer.get("responses", [])]
    pr.out(answer, "\n".join(lines))
    return EXIT_OK if succeeded else EXIT_FAILED


async def _watch(c: Client, a, pr: _Printer, _b) -> int:
    async for frame in c.watch(a.key, prefix=a.prefix, start_revision=a.rev):
        if pr.as_json:
            pr.out(frame, None)
            continue
        for event in frame.get("events", []):
            kv = event.get("kv") or {}
            if event.get("type") == "delete":
                print(f"DELETE {kv.get('key')}  (revision {kv.get('mod_revision')})", flush=True)
            else:
                print(f"PUT    {kv.get('key')} = {kv.get('value')}  (revision {kv.get('mod_revision')})", flush=True)
    return EXIT_OK


async def _lease(c: Client, a, pr: _Printer, _b) -> int:
    if a.lease_command == "grant":
        answer = await c.lease_grant(a.ttl)
        pr.out(answer, f"lease {answer.get('id')} granted with TTL {answer.get('ttl')}s")
    elif a.lease_command == "keepalive":
        answer = await c.lease_keepalive(a.id)
        pr.out(answer, f"lease {a.id} kept alive, TTL {answer.get('ttl', '?')}s")
    else:
        answer = await c.lease_revoke(a.id)
        pr.out(answer, f"lease {a.id} revoked")
    return EXIT_OK


async def _compact(c: Client, a, pr: _Printer, _b) -> int:
    answer = await c.compact(a.rev)
    pr.out(answer, f"compacted at revision {answer.get('compact_revision')} (store revision {answer.get('revision')})")
    return EXIT_OK


async def _snapshot(c: Client, a, pr: _Printer, _b) -> int:
    from .storage.backup import BackupError, read_backup

    try:
        if a.snapshot_command == "save":
            answer = await c.save_snapshot(a.file)
            verb = f"saved {a.file} from {answer['endpoint']}:"
        else:
            info, _document = await asyncio.to_thread(read_backup, a.file)
            answer = info.as_dict()
            verb = f"{a.file}: intact;"
    except (BackupError, OSError) as e:
        raise Failed(str(e)) from None
    pr.out(
        answer,
        f"{verb} revision {answer['revision']}, index {answer['index']}, {answer['keys']} keys, "
        f"{answer['bytes']} bytes, sha256 {answer['sha256']}",
    )
    return EXIT_OK


async def _status(c: Client, a, pr: _Printer, _b) -> int:
    answer = await c.status()
    rows = []
    for name in ("id", "name", "role", "term", "leader", "commit_index", "applied_index",
                 "last_log_index", "snapshot_index", "version"):
        if name in answer:
            rows.append((name, _show(answer[name])))
    members = answer.get("members")
    if isinstance(members, list):
        rows.append(("members", ", ".join(_member_label(m) for m in members)))
    rows += [(k, _show(v)) for k, v in answer.items() if k not in {r[0] for r in rows} and k != "members"]
    width = max(len(k) for k, _v in rows) if rows else 0
    pr.out(answer, "\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    return EXIT_OK


async def _members(c: Client, a, pr: _Printer, _b) -> int:
    command = a.members_command
    if command is None:
        answer = await c.members()
        pr.out(answer, members_table(answer.get("members", [])))
    elif command == "add":
        answer = await c.member_add(a.address, learner=not a.voter, cluster_token=a.cluster_token)
        m = answer.get("member", {})
        # What the cluster did, as its answer says, rather than what was asked.
        voter = m.get("voter", a.voter)
        role = "a voter" if voter else "a learner (the leader promotes it to voter once its log has caught up)"
        pr.out(answer, f"member {m.get('id', '?')} added: {m.get('address', a.address)} as {role}")
    elif command == "remove":
        answer = await c.member_remove(a.id)
        pr.out(answer, f"member {a.id} removed")
    else:
        answer = await c.member_promote(a.id)
        pr.out(answer, f"member {a.id} promoted to voter")
    return EXIT_OK


async def _leader(c: Client, a, pr: _Printer, _b) -> int:
    answer = await c.leader_transfer(a.id)
    pr.out(answer, f"leader is now {answer.get('leader', a.id)}")
    return EXIT_OK


_COMMANDS = {
    "put": _put, "get": _get, "del": _del, "range": _range, "cas": _cas, "txn": _txn,
    "watch": _watch, "lease": _lease, "compact": _compact, "snapshot": _snapshot, "status": _status, "members": _members, "leader": _leader,
    **cli_auth.COMMANDS,
}


# --------------------------------------------------------------------------- helpers


def members_table(members: list[dict]) -> str:
    """An aligned table: ID NAME ADDRESS ROLE, the leader marked with '*'."""
    rows = [("ID", "NAME", "ADDRESS", "ROLE")]
    for m in members:
        role = "leader" if m.get("leader") else ("voter" if m.get("voter", True) else "learner")
        rows.append((_show(m.get("id")), _show(m.get("name")), _show(m.get("address")), role))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)


def _member_label(m: object) -> str:
    if not isinstance(m, dict):
        return _show(m)
    label = f"{m.get('id')}@{m.get('address')}"
    if m.get("leader"):
        label += "*"
    elif m.get("voter") is False:
        label += " (learner)"
    return label


def _show(value: object) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _read_txn(stream) -> dict:
    text = stream.read()
    if not text.strip():
        raise UsageError('txn reads a JSON body on stdin, like {"compare": [...], "success": [...], "failure": [...]}')
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise UsageError(f"txn: stdin is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise UsageError(f"txn: stdin must hold a JSON object, not {type(body).__name__}")
    unknown = set(body) - {"compare", "success", "failure"}
    if unknown:
        raise UsageError(f"txn: unknown field(s) {', '.join(sorted(unknown))}; expected compare, success, failure")
    for name in ("compare", "success", "failure"):
        if not isinstance(body.get(name, []), list):
            raise UsageError(f"txn: {name} must be a list")
    return body


def _reader_gone() -> int:
    """stdout's reader closed the pipe (`| head`): it has what it wanted, so no traceback.

    stdout is pointed at /dev/null, or the interpreter would fail again flushing it at exit.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_OK


def _fail(prog: str, message: str, code: int) -> int:
    print(f"{prog}: {message}", file=sys.stderr)
    return code


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def _address(text: str) -> str:
    try:
        parse_endpoint(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


if __name__ == "__main__":
    sys.exit(main())
