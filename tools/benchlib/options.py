"""Command line of `tools/bench.py` → a validated, frozen BenchOptions.

Every check happens here, before anything is started, so a typo costs no cluster
start-up and the message names the option that was wrong.
"""
from __future__ import annotations

import argparse
import os
import subprocess
from dataclasses import dataclass

OPS = ("put", "get", "get-serializable", "mix")
TARGETS = ("abcd", "etcd", "pysyncobj")
MAX_KEY_BYTES = 1024  # docs/api.md: 413 above these
MAX_VALUE_BYTES = 1024 * 1024
PYSYNCOBJ_SETUP = ("set one up with: python3 -m venv venv-psync && venv-psync/bin/pip install pysyncobj, "
                   "then pass --pysyncobj-python venv-psync/bin/python")
PROBE_TIMEOUT_S = 30.0
# Run by the --pysyncobj-python interpreter: prints the pysyncobj version it imports.
_PROBE = ("import pysyncobj\n"
          "try:\n    from pysyncobj.version import VERSION\nexcept ImportError:\n    VERSION = 'unknown'\n"
          "print(VERSION)")


class OptionsError(ValueError):
    """Bad command line; the message says which option and why."""


@dataclass(frozen=True, slots=True)
class BenchOptions:
    target: str  # "abcd" | "etcd" | "pysyncobj"
    client: str  # "session" | "http" (abcd); "gateway" | "native" (etcd); "in-process" (pysyncobj)
    endpoints: tuple[str, ...]  # empty: start a local abcd cluster
    nodes: int
    concurrency: tuple[int, ...]
    duration: float
    warmup: float
    reps: int
    op: str
    read_ratio: float
    keys: int
    key_size: int
    value_size: int
    procs: int
    conns: int | None  # None: the client's default (see drivers/etcd_native)
    spread: bool
    etcdbench: str | None
    label: str
    json_path: str | None
    plot_path: str | None
    compare: tuple[str, ...]
    keep_data: bool
    pysyncobj_python: str | None = None  # an interpreter that has pysyncobj (--target pysyncobj)
    pysyncobj_version: str | None = None  # as that interpreter reported it
    token: str | None = None  # abcd with auth on: sent as Authorization: Bearer (--token)
    tls: bool = False  # the local cluster speaks TLS (certificates made for the run)
    cacert: str | None = None  # the CA the clients trust: the cluster speaks TLS (https, wss)

    @property
    def reads(self) -> bool:
        return self.op != "put"

    def workload_config(self) -> dict:
        """What must match for repetitions from separate runs to be pooled."""
        return {"op": self.op, "read_ratio": self.read_ratio if self.op == "mix" else None, "keys": self.keys,
                "key_size": self.key_size, "value_size": self.value_size,
                "nodes": None if self.endpoints else self.nodes}

    def config(self) -> dict:
        """What the results were measured with, for the JSON file."""
        config = {
            "target": self.target, "client": self.client, "endpoints": list(self.endpoints),
            "nodes": None if self.endpoints else self.nodes, "concurrency": list(self.concurrency),
            "duration_s": self.duration, "warmup_s": self.warmup, "reps": self.reps, "op": self.op,
            "read_ratio": self.read_ratio if self.op == "mix" else None, "keys": self.keys,
            "key_size": self.key_size, "value_size": self.value_size, "procs": self.procs,
            "conns": self.conns, "spread": self.spread,
        }
        if self.tls or self.cacert:
            config["tls"] = True
        if self.target == "pysyncobj":
            config["pysyncobj_version"] = self.pysyncobj_version
        return config


def default_label(target: str, client: str, op: str) -> str:
    """e.g. "abcd session", "etcd native get-serializable": series of different ops never merge."""
    if target == "pysyncobj":
        return target  # one way to drive it, and puts only
    return f"{target} {client}" if op == "put" else f"{target} {client} {op}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench.py",
        description="Load-test abcd (a fresh local cluster, or running endpoints), etcd (running endpoints) "
        "or PySyncObj (a fresh local cluster, as a reference point), and report throughput, latency "
        "percentiles and CPU per process.",
        epilog="Example: bench.py --nodes 3 --concurrency 1,16,64,256 --duration 10 --reps 3 --json abcd.json; "
        "bench.py --target pysyncobj --pysyncobj-python venv-psync/bin/python --json pysyncobj.json; "
        "bench.py --compare abcd.json etcd.json pysyncobj.json --plot perf.png",
    )
    p.add_argument("--target", choices=TARGETS, default="abcd", help="system under test (default abcd)")
    p.add_argument("--endpoints", metavar="H:P[,H:P...]",
                   help="use running members instead of starting a local abcd cluster (required for etcd)")
    p.add_argument("--nodes", type=int, default=3,
                   help="members of the local abcd (or PySyncObj) cluster: 1, 3 or 5 (default 3)")
    p.add_argument("--tls", action="store_true",
                   help="start the local cluster with TLS (a CA and certificates made for the run; peers with mutual TLS)")
    p.add_argument("--cacert", metavar="FILE", help="--endpoints speak TLS: verify them with this CA")
    p.add_argument("--http", action="store_true",
                   help="abcd: one plain HTTP request per operation instead of the pipelined /v1/session channel")
    p.add_argument("--token", metavar="TOKEN",
                   help="abcd with auth on: a token from POST /v1/auth/authenticate, sent with every request")
    p.add_argument("--etcdbench", metavar="PATH",
                   help="etcd: run this etcdbench binary (native Go gRPC client) instead of the JSON gateway")
    p.add_argument("--pysyncobj-python", metavar="PATH",
                   help="pysyncobj: a Python interpreter that has pysyncobj installed (it is not a dependency of "
                   "abcd), e.g. venv-psync/bin/python")
    p.add_argument("--concurrency", default="1,16,64,256", metavar="C[,C...]",
                   help="requests in flight, one result row each (default 1,16,64,256)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured per row and repetition (default 10)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of load before measuring (default 2)")
    p.add_argument("--reps", type=int, default=3, help="repetitions; figures are medians over them (default 3)")
    p.add_argument("--op", choices=OPS, default="put",
                   help="put, linearizable get, serializable get, or a mix of puts and linearizable gets")
    p.add_argument("--read-ratio", type=float, default=0.5, help="--op mix: fraction of gets (default 0.5)")
    p.add_argument("--keys", type=int, default=10000, help="size of the keyspace (default 10000)")
    p.add_argument("--key-size", type=int, default=16, help="bytes per key (default 16)")
    p.add_argument("--value-size", type=int, default=100, help="bytes per value (default 100)")
    p.add_argument("--procs", type=int, default=1, help="client processes generating the load (default 1)")
    p.add_argument("--conns", type=int,
                   help="client connections in total (session: default one per process; etcdbench: default min(C, 16)); "
                   "plain HTTP and the gateway use one connection per request in flight")
    p.add_argument("--spread", action="store_true",
                   help="spread connections over all members (default: all to the leader)")
    p.add_argument("--label", help='name of this series in tables and plots (default e.g. "abcd session")')
    p.add_argument("--json", dest="json_path", metavar="FILE", help="write all results (every repetition) to FILE")
    p.add_argument("--plot", dest="plot_path", metavar="FILE.png", help="draw throughput and p99 against concurrency")
    p.add_argument("--compare", nargs="+", metavar="FILE.json",
                   help="run nothing: merge these result files into one table (and --plot)")
    p.add_argument("--keep-data", action="store_true",
                   help="keep the local cluster's data directories (PySyncObj: its nodes' logs)")
    return p


def parse_concurrency(text: str) -> tuple[int, ...]:
    levels = []
    for part in text.split(","):
        part = part.strip()
        try:
            level = int(part)
        except ValueError:
            raise OptionsError(f"--concurrency: {part!r} is not a whole number (expected e.g. 1,16,64)") from None
        if level < 1:
            raise OptionsError(f"--concurrency: {level} must be at least 1")
        levels.append(level)
    if len(set(levels)) != len(levels):
        raise OptionsError(f"--concurrency: {text!r} repeats a level")
    return tuple(levels)


def parse_endpoints(text: str | None) -> tuple[str, ...]:
    if text is None:
        return ()
    endpoints = tuple(e.strip() for e in text.split(",") if e.strip())
    if not endpoints:
        raise OptionsError("--endpoints: no endpoint given")
    for e in endpoints:
        host, sep, port = e.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise OptionsError(f"--endpoints: {e!r} is not HOST:PORT")
    return endpoints


def parse_options(argv: list[str]) -> BenchOptions:
    """Parse and validate; raises OptionsError (argparse's own errors exit with 2)."""
    a = build_parser().parse_args(argv)
    _check_ranges(a)
    endpoints = parse_endpoints(a.endpoints)
    if a.target == "etcd":
        if not endpoints and not a.compare:
            raise OptionsError("--target etcd needs --endpoints (only abcd clusters are started by this tool)")
        if a.http:
            raise OptionsError("--http is for abcd; etcd is reached through its JSON gateway or --etcdbench")
        if a.etcdbench and a.op == "mix":
            raise OptionsError("--etcdbench supports --op put, get and get-serializable, not mix")
        if a.etcdbench and not os.access(a.etcdbench, os.X_OK):
            raise OptionsError(f"--etcdbench: {a.etcdbench} is not an executable file")
        client = "native" if a.etcdbench else "gateway"
    elif a.target == "pysyncobj":
        client = "in-process"
        if not a.compare:
            _check_pysyncobj(a, endpoints)
    else:
        if a.etcdbench:
            raise OptionsError("--etcdbench is for --target etcd")
        client = "http" if a.http else "session"
    if a.token and a.target != "abcd":
        raise OptionsError("--token is for abcd")
    if a.tls and (endpoints or a.target != "abcd"):
        raise OptionsError("--tls is for the local abcd cluster this tool starts; with --endpoints, give --cacert")
    if a.cacert and not os.path.isfile(a.cacert):
        raise OptionsError(f"--cacert: {a.cacert}: no such file")
    if a.pysyncobj_python and a.target != "pysyncobj":
        raise OptionsError("--pysyncobj-python is for --target pysyncobj")
    digits = len(str(a.keys - 1))
    if a.key_size < digits:
        raise OptionsError(f"--key-size {a.key_size} is too short for --keys {a.keys} (keys need {digits} digits)")
    plot = a.plot_path
    if plot and not plot.lower().endswith(".png"):
        raise OptionsError(f"--plot: {plot} should end in .png")
    concurrency = parse_concurrency(a.concurrency)
    pysyncobj_version = None
    if a.target == "pysyncobj" and not a.compare:  # last: it runs the interpreter
        pysyncobj_version = probe_pysyncobj(a.pysyncobj_python)
    return BenchOptions(
        target=a.target, client=client, endpoints=endpoints, nodes=a.nodes,
        concurrency=concurrency, duration=a.duration, warmup=a.warmup, reps=a.reps,
        op=a.op, read_ratio=a.read_ratio, keys=a.keys, key_size=a.key_size, value_size=a.value_size,
        procs=a.procs, conns=a.conns, spread=a.spread, etcdbench=a.etcdbench,
        label=a.label or default_label(a.target, client, a.op) + (" tls" if a.tls or a.cacert else ""), json_path=a.json_path, plot_path=plot,
        compare=tuple(a.compare or ()), keep_data=a.keep_data, pysyncobj_python=a.pysyncobj_python,
        pysyncobj_version=pysyncobj_version, token=a.token, tls=a.tls, cacert=a.cacert,
    )


def _check_pysyncobj(a: argparse.Namespace, endpoints: tuple[str, ...]) -> None:
    if not a.pysyncobj_python:
        raise OptionsError("--target pysyncobj needs --pysyncobj-python PATH, a Python interpreter that has "
                           f"pysyncobj (it is not a dependency of abcd); {PYSYNCOBJ_SETUP}")
    if a.op != "put":
        raise OptionsError(f"--target pysyncobj supports only --op put (its replicated dict has set() only), "
                           f"not {a.op}")
    refused = [("--endpoints", endpoints), ("--http", a.http), ("--etcdbench", a.etcdbench),
               ("--spread", a.spread), ("--conns", a.conns is not None), ("--procs", a.procs != 1)]
    for option, given in refused:
        if given:
            raise OptionsError(f"{option} does not apply to --target pysyncobj: it starts its own local cluster "
                               "and generates the load inside the leader's process")


def probe_pysyncobj(python: str) -> str:
    """The pysyncobj version `python` imports; OptionsError (with the setup hint) if none."""
    try:
        done = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except (FileNotFoundError, PermissionError, NotADirectoryError, IsADirectoryError):
        raise OptionsError(f"--pysyncobj-python: {python} is not an executable file; {PYSYNCOBJ_SETUP}") from None
    except subprocess.TimeoutExpired:
        raise OptionsError(f"--pysyncobj-python: {python} did not answer within {PROBE_TIMEOUT_S:g}s") from None
    except OSError as e:
        raise OptionsError(f"--pysyncobj-python: cannot run {python}: {e.strerror}; {PYSYNCOBJ_SETUP}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["exit code %d" % done.returncode])[-1]
        raise OptionsError(f"--pysyncobj-python: {python} cannot import pysyncobj ({last}); {PYSYNCOBJ_SETUP}")
    return done.stdout.strip() or "unknown"


def _check_ranges(a: argparse.Namespace) -> None:
    checks = [
        (a.nodes in (1, 3, 5), f"--nodes must be 1, 3 or 5, got {a.nodes}"),
        (a.duration > 0, f"--duration must be positive, got {a.duration}"),
        (a.warmup >= 0, f"--warmup must not be negative, got {a.warmup}"),
        (a.reps >= 1, f"--reps must be at least 1, got {a.reps}"),
        (0 <= a.read_ratio <= 1, f"--read-ratio must be between 0 and 1, got {a.read_ratio}"),
        (a.keys >= 1, f"--keys must be at least 1, got {a.keys}"),
        (1 <= a.key_size <= MAX_KEY_BYTES, f"--key-size must be between 1 and {MAX_KEY_BYTES}, got {a.key_size}"),
        (0 <= a.value_size <= MAX_VALUE_BYTES,
         f"--value-size must be between 0 and {MAX_VALUE_BYTES}, got {a.value_size}"),
        (a.procs >= 1, f"--procs must be at least 1, got {a.procs}"),
        (a.conns is None or a.conns >= 1, f"--conns must be at least 1, got {a.conns}"),
    ]
    for ok, message in checks:
        if not ok:
            raise OptionsError(message)
