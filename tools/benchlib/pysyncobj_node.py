"""One PySyncObj node for `tools/bench.py --target pysyncobj`.

Run as a script by a Python interpreter that has pysyncobj installed (PySyncObj is not
a dependency of abcd); it imports only the standard library and pysyncobj:

    python pysyncobj_node.py --self 127.0.0.1:P1 --partner 127.0.0.1:P2 --partner 127.0.0.1:P3

The replicated object is a dict with one replicated method, set(key, value).  PySyncObj
keeps its Raft log in memory and never fsyncs, so nothing here is durable.  Appends are
not batched (appendEntriesUseBatch=False): each command is sent to the followers at once
instead of on the next 100 ms tick.

PySyncObj has no network client protocol, so the load generator is a closed loop inside
the leader's process: exactly C calls in flight, each completion callback recording its
latency and submitting the next call.

The driving process speaks to the node with one JSON object per line: commands on
stdin, answers on stdout (each answer echoes the command's "id").

    (on start)        -> {"event": "bound", "pid": N}     or {"event": "failed", "error": "..."}
    {"cmd": "status"}   -> {"state": "leader"|"candidate"|"follower", "leader": "H:P" or null,
                            "ready": bool, "quorum": bool, "connected": N}
    {"cmd": "run", "concurrency": C, "warmup": S, "duration": S, "keys": N, "key_size": K,
     "value_size": V, "seed": N}
                        -> {"start": T, "measure_from": T, "measure_until": T}
    {"cmd": "progress"} -> {"completed": N}       (all completions so far, warm-up included)
    {"cmd": "collect", "timeout": S}
                        -> {"latencies": base64 of float64 seconds, "errors": {kind: N},
                            "error_samples": [...], "in_flight": N}
    {"cmd": "stop"}     -> {"stopped": true}, then the process exits

Times are time.monotonic() (CLOCK_MONOTONIC, the same clock in every process on the
machine).  Only calls completing inside [measure_from, measure_until] are counted; the
loop stops submitting at measure_until and "collect" waits for the calls in flight.
End of stdin or SIGTERM: the node shuts down and exits.
"""
import argparse
import base64
import json
import os
import random
import signal
import string
import sys
import threading
import time
from array import array
from functools import partial

# This script lives next to the benchmark's own modules: keep them off the import path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated  # noqa: E402

VALUE_POOL = 256
ERROR_SAMPLES = 5
STOP_GRACE_S = 2.0
_ALPHABET = string.ascii_letters + string.digits
_STATES = {0: "follower", 1: "candidate", 2: "leader"}
_FAILURES = {getattr(FAIL_REASON, n): n for n in dir(FAIL_REASON) if n.isupper()}


class KeyValue(SyncObj):
    """A replicated dict: set() goes through the Raft log, reads are local."""

    def __init__(self, self_address, partners, conf):
        super(KeyValue, self).__init__(self_address, partners, conf)
        self._data = {}

    @replicated
    def set(self, key, value):
        self._data[key] = value


class ClosedLoop:
    """C calls in flight from the start until measure_until; completion callbacks run
    on PySyncObj's tick thread and submit the next call from there."""

    def __init__(self, kv, concurrency, keys, values, seed, warmup, duration):
        self.kv = kv
        self.concurrency = concurrency
        self.keys = keys
        self.values = values
        self.rng = random.Random(seed)
        self.warmup = warmup
        self.duration = duration
        self.latencies = array("d")
        self.errors = {}
        self.error_samples = []
        self.completed = 0
        self.in_flight = 0
        self.drained = threading.Event()
        self.lock = threading.Lock()
        self.start = self.measure_from = self.measure_until = 0.0

    def begin(self):
        self.start = time.monotonic()
        self.measure_from = self.start + self.warmup
        self.measure_until = self.measure_from + self.duration
        with self.lock:
            self.in_flight = self.concurrency
        for _ in range(self.concurrency):
            self._submit()

    def _submit(self):
        rng = self.rng
        key = self.keys[rng.randrange(len(self.keys))]
        value = self.values[rng.randrange(len(self.values))]
        self.kv.set(key, value, callback=partial(self._done, time.monotonic()))

    def _done(self, t0, result, error):
        t1 = time.monotonic()
        with self.lock:
            self.completed += 1
            if self.measure_from <= t1 <= self.measure_until:
                if error == FAIL_REASON.SUCCESS:
                    self.latencies.append(t1 - t0)
                else:
                    kind = _FAILURES.get(error, str(error))
                    self.errors[kind] = self.errors.get(kind, 0) + 1
                    if len(self.error_samples) < ERROR_SAMPLES:
                        self.error_samples.append("%s: PySyncObj failure code %s" % (kind, error))
            more = t1 < self.measure_until
            if not more:
                self.in_flight -= 1
                if self.in_flight == 0:
                    self.drained.set()
        if more:
            self._submit()

    def result(self, timeout):
        self.drained.wait(timeout)
        with self.lock:
            return {
                "latencies": base64.b64encode(self.latencies.tobytes()).decode("ascii"),
                "errors": dict(self.errors), "error_samples": list(self.error_samples),
                "in_flight": self.in_flight,
            }


def make_workload(keys, key_size, value_size, seed):
    rng = random.Random(seed)
    names = ["%0*d" % (key_size, i) for i in range(keys)]
    values = ["".join(rng.choices(_ALPHABET, k=value_size)) for _ in range(VALUE_POOL)]
    return names, values


class Node:
    def __init__(self, kv):
        self.kv = kv
        self.loop = None
        self.workloads = {}

    def status(self, _cmd):
        for attempt in range(3):
            try:  # read while the tick thread runs: a dict may change size under it
                s = self.kv.getStatus()
                break
            except RuntimeError:
                if attempt == 2:
                    raise
        partners = [k for k in s if k.startswith("partner_node_status_server_")]
        return {
            "state": _STATES.get(s["state"], str(s["state"])),
            "leader": None if s["leader"] is None else str(s["leader"]),
            "ready": bool(self.kv.isReady()), "quorum": bool(s["has_quorum"]),
            "connected": sum(1 for k in partners if s[k] == 2),
        }

    def run(self, cmd):
        if self.loop is not None and not self.loop.drained.is_set():
            raise RuntimeError("a run is still in flight")
        spec = (cmd["keys"], cmd["key_size"], cmd["value_size"])
        if spec not in self.workloads:
            self.workloads = {spec: make_workload(*spec, seed=0)}
        keys, values = self.workloads[spec]
        self.loop = ClosedLoop(self.kv, cmd["concurrency"], keys, values, cmd["seed"], cmd["warmup"],
                               cmd["duration"])
        self.loop.begin()
        return {"start": self.loop.start, "measure_from": self.loop.measure_from,
                "measure_until": self.loop.measure_until}

    def progress(self, _cmd):
        return {"completed": self.loop.completed if self.loop else 0}

    def collect(self, cmd):
        if self.loop is None:
            raise RuntimeError("nothing was run")
        return self.loop.result(float(cmd.get("timeout", 10.0)))


def reply(message):
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def parse_args(argv):
    p = argparse.ArgumentParser(description="one PySyncObj node for tools/bench.py --target pysyncobj")
    p.add_argument("--self", dest="self_address", required=True, metavar="H:P")
    p.add_argument("--partner", action="append", default=[], metavar="H:P")
    return p.parse_args(argv)


def _stop_on_sigterm():
    def handler(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driving process decides when to stop


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    _stop_on_sigterm()
    conf = SyncObjConf(appendEntriesUseBatch=False, maxBindRetries=5, bindRetryTime=0.2)
    try:
        kv = KeyValue(args.self_address, args.partner, conf)
        kv.waitBinded()
    except Exception as e:
        reply({"event": "failed", "error": "%s: %s" % (type(e).__name__, e)})
        return 1
    node = Node(kv)
    handlers = {"status": node.status, "run": node.run, "progress": node.progress, "collect": node.collect}
    try:
        reply({"event": "bound", "pid": os.getpid()})
        for line in sys.stdin:
            cmd = json.loads(line)
            if cmd.get("cmd") == "stop":
                reply({"id": cmd.get("id"), "stopped": True})
                break
            handler = handlers.get(cmd.get("cmd"))
            try:
                if handler is None:
                    raise ValueError("unknown command %r" % cmd.get("cmd"))
                answer = handler(cmd)
            except Exception as e:
                answer = {"error": "%s: %s" % (type(e).__name__, e)}
            answer["id"] = cmd.get("id")
            reply(answer)
    except BrokenPipeError:
        pass  # the driving process is gone
    finally:
        kv.destroy()  # the tick thread closes the connections and ends
        deadline = time.monotonic() + STOP_GRACE_S
        for thread in threading.enumerate():
            if thread is not threading.current_thread() and not thread.daemon:
                thread.join(max(0.0, deadline - time.monotonic()))
    return 0


if __name__ == "__main__":
    try:
        code = main()
    except SystemExit as stop:  # SIGTERM
        code = stop.code if isinstance(stop.code, int) else 0
    try:
        sys.stdout.flush()
    except OSError:
        pass
    os._exit(code)  # a thread that outlived the grace period does not keep the process
