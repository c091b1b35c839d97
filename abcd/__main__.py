"""`python -m abcd`: run one node (or `python -m abcd demo`: a local cluster).

    python -m abcd [PORT] [--host 127.0.0.1] [--advertise HOST:PORT] [--join HOST:PORT[,HOST:PORT...]]
                   [--data-dir DIR] [--name NAME] [--heartbeat-ms 100] [--election-timeout-ms 1000]
                   [--cluster-token TOKEN] [--snapshot-count 100000] [--snapshot-catchup-entries 5000]
                   [--max-snapshots 2] [--max-wals 2] [--auto-compaction-mode periodic|revision]
                   [--auto-compaction-retention 0] [--force-new-cluster]
                   [--enable-faults] [--allow-origin URL ...] [--log-level INFO] [--log-json]
                   [--cert-file F --key-file F [--trusted-ca-file F] [--client-cert-auth]]
                   [--peer-cert-file F --peer-key-file F --peer-trusted-ca-file F [--peer-client-cert-auth]]
    python -m abcd demo [--nodes 3] [--base-port 8080]
    python -m abcd restore FILE --data-dir DIR --name NAME --advertise HOST:PORT

With a PORT, an empty data dir and no --join: bootstrap a new cluster of one.  With no
PORT: listen on a free port and join through 127.0.0.1:8080 (or --join).  A data dir
that already holds a node resumes it, ignoring --join.  SIGINT/SIGTERM: stop accepting,
flush, fsync, close, exit 0.  SIGHUP: read the TLS files again.  See
docs/operations.md and docs/security.md.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import sys

from .usage import UsageError

DEFAULT_JOIN = "127.0.0.1:8080"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="abcd",
        description="Run an abcd node (a Raft-replicated key-value store). `abcd demo` starts a local cluster.",
    )
    p.add_argument("port", nargs="?", type=int, help="port for peers, clients and metrics (default: a free port, joining 127.0.0.1:8080)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--advertise", metavar="HOST:PORT", help="address peers and clients use to reach this node (default HOST:PORT)")
    p.add_argument("--join", metavar="HOST:PORT[,HOST:PORT...]", help="join the cluster through any of these members")
    p.add_argument("--data-dir", help="data directory (default ./abcd-data/NAME)")
    p.add_argument("--name", help="node name (default node-PORT)")
    p.add_argument("--heartbeat-ms", type=int, default=100, help="heartbeat interval = one Raft tick (default 100)")
    p.add_argument("--election-timeout-ms", type=int, default=1000, help="election timeout, randomized up to twice this (default 1000)")
    p.add_argument("--request-timeout", type=float, default=5.0, help="seconds a request may wait to commit before 504 (default 5)")
    p.add_argument("--cluster-token", help="shared secret peers and joining nodes must present")
    p.add_argument(
        "--snapshot-count", type=int, default=100_000,
        help="take a snapshot once this many entries were applied since the last one; 0: never (default 100000)",
    )
    p.add_argument(
        "--snapshot-catchup-entries", type=int, default=5_000,
        help="entries kept in the log behind a snapshot for followers a little behind (default 5000)",
    )
    p.add_argument(
        "--max-snapshots", type=int, default=2,
        help="snapshot files to keep, the newest; 0: keep all (default 2)",
    )
    p.add_argument(
        "--max-wals", type=int, default=2,
        help="WAL segments to keep even once a snapshot covers them; 0: keep all (default 2)",
    )
    p.add_argument(
        "--auto-compaction-mode", default="periodic", choices=("periodic", "revision"),
        help="what --auto-compaction-retention counts: time (periodic) or revisions (default periodic)",
    )
    p.add_argument(
        "--auto-compaction-retention", default="0", metavar="N|DURATION",
        help="the leader compacts the history older than this: a duration like 1h or 30m (a bare number "
        "is hours) in periodic mode, a number of revisions in revision mode; 0: off (default 0)",
    )
    p.add_argument(
        "--force-new-cluster", action="store_true",
        help="restart this member alone as a one-member cluster with its data (when a quorum is lost for good)",
    )
    # Small segments roll often: for tests of WAL retention only.
    p.add_argument("--wal-segment-bytes", type=int, default=64 * 2**20, help=argparse.SUPPRESS)
    add_tls_arguments(p)
    p.add_argument(
        "--auth-token-ttl", type=float, default=300.0, metavar="SECONDS",
        help="seconds an auth token from POST /v1/auth/authenticate stays valid (default 300)",
    )
    p.add_argument("--enable-faults", action="store_true", help="allow POST /v1/admin/faults (network fault injection)")
    p.add_argument(
        "--allow-origin", action="append", default=[], metavar="URL",
        help="also answer browser pages from this origin (e.g. http://127.0.0.1:8079), besides the members' own "
        "http://HOST:PORT; repeatable",
    )
    # A planted bug for the chaos tests (docs/testing.md), hidden from --help: linearizable
    # reads are served from the answering node's local state, without ReadIndex.
    p.add_argument("--unsafe-stale-reads", action="store_true", help=argparse.SUPPRESS)
    # Disk faults for the storage tests (docs/storage.md, "Disk faults"), hidden from --help:
    # this process's WAL, snapshot and meta.json writes or fsyncs fail, or are slow.
    p.add_argument("--disk-fault", metavar="SPEC", help=argparse.SUPPRESS)
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING... (default INFO)")
    p.add_argument("--log-json", action="store_true", help="JSON lines on stderr too")
    return p


def add_tls_arguments(p: argparse.ArgumentParser) -> None:
    """etcd's TLS flags (docs/security.md): one port, client and peer sides."""
    g = p.add_argument_group("TLS (docs/security.md; SIGHUP or a changed file reloads them)")
    g.add_argument("--cert-file", metavar="FILE", help="certificate (PEM) the node's port presents; turns TLS on")
    g.add_argument("--key-file", metavar="FILE", help="private key of --cert-file")
    g.add_argument("--trusted-ca-file", metavar="FILE", help="CA that signs client certificates")
    g.add_argument("--client-cert-auth", action="store_true", help="refuse clients without a certificate from --trusted-ca-file")
    g.add_argument("--peer-cert-file", metavar="FILE", help="certificate this node presents to peers (default --cert-file)")
    g.add_argument("--peer-key-file", metavar="FILE", help="private key of --peer-cert-file")
    g.add_argument("--peer-trusted-ca-file", metavar="FILE", help="CA that signs peer certificates")
    g.add_argument(
        "--peer-client-cert-auth", action="store_true",
        help="/v1/raft and joins need a certificate from --peer-trusted-ca-file",
    )
    g.add_argument(
        "--peer-cert-allowed-cn", action="append", default=[], metavar="NAME",
        help="a peer certificate's common name must be one of these; repeatable",
    )
    g.add_argument("--auto-tls", action="store_true", help="without --cert-file: a self-signed certificate made in the data dir")
    g.add_argument(
        "--peer-auto-tls", action="store_true",
        help="without --peer-cert-file: a self-signed peer certificate (peers encrypted, not authenticated)",
    )


def tls_settings(args: argparse.Namespace):
    from .tls import TlsSettings

    try:
        return TlsSettings(
            cert_file=args.cert_file,
            key_file=args.key_file,
            trusted_ca_file=args.trusted_ca_file,
            client_cert_auth=args.client_cert_auth,
            peer_cert_file=args.peer_cert_file,
            peer_key_file=args.peer_key_file,
            peer_trusted_ca_file=args.peer_trusted_ca_file,
            peer_client_cert_auth=args.peer_client_cert_auth,
            peer_allowed_cn=tuple(args.peer_cert_allowed_cn),
            auto_tls=args.auto_tls,
            peer_auto_tls=args.peer_auto_tls,
        )
    except ValueError as e:
        raise UsageError(str(e)) from None


def parse_join(text: str | None) -> tuple[str, ...]:
    from .net import parse_address

    if not text:
        return ()
    targets = tuple(t.strip() for t in text.split(",") if t.strip())
    for target in targets:
        try:
            parse_address(target)
        except ValueError as e:
            raise UsageError(f"--join: {e}") from None
    return targets


def plan(args: argparse.Namespace) -> dict:
    """Decide port, name, data dir and join targets from the arguments (no side effects but reading meta)."""
    from .storage import read_meta

    tls = tls_settings(args)
    if args.port is not None and not 0 < args.port < 65536:
        raise UsageError(f"PORT must be between 1 and 65535, got {args.port}")
    port = args.port
    data_dir = args.data_dir
    if data_dir is None and args.name:
        data_dir = os.path.join("abcd-data", args.name)
    if port is None and data_dir is not None:
        meta = read_meta(data_dir)
        if meta and meta.get("port"):
            port = int(meta["port"])  # a restart: the data dir remembers its port
    join = parse_join(args.join)
    if args.disk_fault is not None:
        from .storage import diskfaults

        try:
            diskfaults.parse(args.disk_fault)
        except ValueError as e:
            raise UsageError(f"--disk-fault: {e}") from None
    if args.port is None and not join:
        join = (DEFAULT_JOIN,)
    return {
        "port": port or 0, "data_dir": data_dir, "join": join, "allow_origins": parse_origins(args.allow_origin),
        "tls": tls,
    }


def parse_origins(texts: list[str]) -> tuple[str, ...]:
    from .api.cors import parse_origin

    origins = []
    for text in texts:
        try:
            origins.append(parse_origin(text))
        except ValueError as e:
            raise UsageError(f"--allow-origin: {e}") from None
    return tuple(origins)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "demo":
        from .demo import main as demo_main

        return demo_main(argv[1:])
    if argv and argv[0] == "restore":
        from .node.new_cluster import restore_main

        return restore_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = plan(args)
    except (UsageError, ValueError) as e:
        parser.print_usage(sys.stderr)
        print(f"abcd: error: {e}", file=sys.stderr)
        return 2
    return _run(run_node(args, settings))


def _run(coro) -> int:
    try:
        import uvloop
    except ImportError:  # plain asyncio is the fallback (performance.md rule 7)
        return asyncio.run(coro)
    return uvloop.run(coro)


GC_THRESHOLDS = (50_000, 20, 100)


def _freeze_survivors(phase: str, info: dict) -> None:
    """After a full collection, everything left is alive: freeze it.

    The log and the store grow into hundreds of thousands of long-lived objects, and
    every full collection scanned them all again (pauses of 50-150 ms, growing with
    the heap).  Frozen objects are skipped by later collections; they are still freed
    by reference counting, and freezing only survivors of a full collection leaks no
    garbage that existed then.
    """
    if phase == "stop" and info.get("generation") == 2:
        gc.freeze()


async def run_node(args: argparse.Namespace, settings: dict) -> int:
    from loguru import logger

    from . import logs
    from .api.app import Server, bind_socket
    from .node import gcwatch
    from .node.auto_compaction import parse_retention
    from .node.cluster_ops import hand_off_leadership
    from .node.config import NodeConfig
    from .node.identity import IdentityError, bootstrap, join, load_meta
    from .node.new_cluster import NewClusterError, force_new_cluster
    from .node.node import Node
    from .storage import StorageError

    if args.disk_fault is not None:
        from .storage import diskfaults

        diskfaults.arm(args.disk_fault)  # before anything is opened: start-up writes count too
    try:
        sock = bind_socket(args.host, settings["port"])
    except OSError as e:
        print(f"abcd: cannot listen on {args.host}:{settings['port']}: {e}", file=sys.stderr)
        return 1
    port = sock.getsockname()[1]
    name = args.name or f"node-{port}"
    data_dir = settings["data_dir"] or os.path.join("abcd-data", name)
    advertise_host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
    advertise = args.advertise or f"{advertise_host}:{port}"
    try:
        logs.configure_logging(node_name=name, data_dir=data_dir, level=args.log_level, json_stderr=args.log_json)
    except ValueError as e:
        print(f"abcd: error: --log-level {args.log_level}: {e}", file=sys.stderr)
        return 2
    if args.disk_fault is not None:
        logger.warning("disk fault armed: {} (a test-only flag: storage writes or fsyncs will fail)", args.disk_fault)
    try:
        auto_compaction = parse_retention(args.auto_compaction_mode, args.auto_compaction_retention)
        config = NodeConfig(
            name=name,
            data_dir=data_dir,
            host=args.host,
            port=port,
            advertise=advertise,
            join=settings["join"],
            heartbeat_ms=args.heartbeat_ms,
            election_timeout_ms=args.election_timeout_ms,
            cluster_token=args.cluster_token,
            enable_faults=args.enable_faults,
            unsafe_stale_reads=args.unsafe_stale_reads,
            request_timeout=args.request_timeout,
            snapshot_count=args.snapshot_count,
            snapshot_catchup_entries=args.snapshot_catchup_entries,
            max_snapshots=args.max_snapshots,
            max_wals=args.max_wals,
            wal_segment_bytes=args.wal_segment_bytes,
            auto_compaction=auto_compaction,
            allow_origins=settings["allow_origins"],
            auth_token_ttl=args.auth_token_ttl,
        )
    except ValueError as e:
        print(f"abcd: error: {e}", file=sys.stderr)
        return 2
    tls = None
    if settings["tls"].enabled:
        from .tls import TlsContexts
        from .tls.auto import with_auto_certificates

        try:
            files = with_auto_certificates(settings["tls"], data_dir, name, (advertise.rsplit(":", 1)[0], "localhost"))
            tls = TlsContexts(files)
        except (ImportError, OSError, ValueError) as e:
            logger.error("cannot set up TLS: {}", e)
            sock.close()
            return 2
        # Rotation without a restart: SIGHUP reloads at once (a changed file within a second, below).
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, tls.reload, "SIGHUP")
    try:
        meta = load_meta(data_dir)
        if args.force_new_cluster:
            if meta is None:
                raise IdentityError(f"--force-new-cluster: {data_dir} holds no member to start a new cluster from")
            meta = force_new_cluster(data_dir, meta, name=name, address=advertise, port=port, logger=logger)
        if meta is not None:
            if args.join:
                logger.info("{} already holds node {}; resuming it and ignoring --join", data_dir, meta["node_id"])
        elif config.join:
            logger.info("joining the cluster through {}", ", ".join(config.join))
            meta = await join(
                list(config.join), data_dir=data_dir, name=name, address=advertise, port=port, token=config.cluster_token,
                tls=tls,
            )
        else:
            meta = bootstrap(data_dir, name, advertise, port)
            logger.info("bootstrapped a new cluster {} in {}", meta["cluster_id"], data_dir)
    except (IdentityError, NewClusterError, StorageError) as e:
        logger.error("{}", e)
        sock.close()
        return 1

    node = Node(config, meta, tls)
    def state() -> tuple[int, str]:
        view = getattr(node, "view", None)  # None while the node is still recovering its log
        return (view.soft.term, view.soft.role) if view is not None else (0, "recovering")

    logs.set_state_provider(state)
    try:
        await node.start()
    except StorageError as e:
        # Damaged or missing files: the message names them; nothing was changed on disk.
        logger.bind(event="Fatal").critical("cannot start: {}", e)
        sock.close()
        return 1
    server = Server(node, sock, tls)
    await server.start()
    logger.bind(event="Serving").info(
        "serving on {}://{} (node {}, cluster {}, data dir {})",
        "https" if tls else "http", advertise, node.node_id, node.cluster_id, data_dir,
    )
    gc.collect()
    gc.freeze()  # start-up objects never need scanning again (performance.md rule 4)
    gc.callbacks.append(_freeze_survivors)
    # Young collections every 50,000 allocations instead of 700: a write allocates
    # dozens of short-lived objects, and with the default the collector ran many times
    # per batch (c=256 writes 8,550 -> 10,445/s, c=64 6,554 -> 7,245/s in tools/bench.py,
    # medians of 3).  Survivors still move on and get frozen (see _freeze_survivors).
    gc.set_threshold(*GC_THRESHOLDS)
    gcwatch.install(
        lambda generation, seconds, collected: logger.bind(event="SlowGC").warning(
            "a garbage collection (generation {}) stopped the node for {:.0f} ms ({} objects freed)",
            generation, 1000 * seconds, collected,
        )
    )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    tls_watch = None
    if tls is not None:
        tls_watch = asyncio.ensure_future(tls.watch())
    stopped = asyncio.ensure_future(node.stopped.wait())
    await asyncio.wait({asyncio.ensure_future(stop.wait()), stopped}, return_when=asyncio.FIRST_COMPLETED)
    if tls_watch is not None:
        tls_watch.cancel()
    if node.failed is None:
        await hand_off_leadership(node)
    await node.stop()
    await server.stop()
    if node.failed is not None:
        logger.error("stopped after a fatal error: {}", node.failed)
        return 1
    if node.removed is not None:
        logger.bind(event="Stopped").warning("stopped: {}", node.removed)
        await logger.complete()
        return 0
    logger.bind(event="Stopped").info("stopped cleanly")
    await logger.complete()
    return 0


if __name__ == "__main__":
    sys.exit(main())
