"""Repetitions × concurrency levels → results, rep-major (rep 1 runs every level, then
rep 2…), so a slow minute on a noisy machine smears over all levels instead of one.

Each run: hand the client processes their tasks, let them load for --warmup seconds,
then measure for --duration seconds while sampling the CPU of every process involved
(client processes, server processes, the machine), then let in-flight requests drain.
"""
from __future__ import annotations

import asyncio
import os
import time
from typing import Callable

from . import etcd_native
from .cluster import Target, describe_abcd, describe_etcd
from .drivers import preload
from .options import BenchOptions
from .procstat import CpuMeter
from .stats import median_over_reps, split_evenly, summarize_latencies
from .workers import WorkerPool, WorkerTask
from .workload import Workload, WorkloadSpec

CLIENT_BOUND_PERCENT = 90.0
RESULTS_TIMEOUT_S = 30.0


def workload_spec(opts: BenchOptions) -> WorkloadSpec:
    return WorkloadSpec(opts.op, opts.read_ratio, opts.keys, opts.key_size, opts.value_size)


def plan_tasks(opts: BenchOptions, concurrency: int, endpoint_for: Callable[[int], str]) -> list[WorkerTask | None]:
    """Split `concurrency` clients over the client processes (and, for the session
    channel, over connections); `endpoint_for(i)` gives the i-th connection's member."""
    procs = opts.procs
    used = min(procs, concurrency)
    spec = workload_spec(opts)
    tasks: list[WorkerTask | None] = [None] * procs
    if opts.client == "session":
        conns = min(opts.conns or used, concurrency)
        conns_per_proc = split_evenly(conns, used)
        clients_per_conn = split_evenly(concurrency, conns)
        index = 0
        for p in range(used):
            if not conns_per_proc[p]:
                continue
            connections = []
            for _ in range(conns_per_proc[p]):
                connections.append((endpoint_for(index), clients_per_conn[index]))
                index += 1
            tasks[p] = WorkerTask(
                opts.client, tuple(connections), spec, opts.warmup, opts.duration, seed=p + 1, cacert=opts.cacert,
                token=opts.token,
            )
        return tasks
    index = 0
    for p, clients in enumerate(split_evenly(concurrency, used)):
        connections = []
        for _ in range(clients):
            connections.append((endpoint_for(index), 1))
            index += 1
        tasks[p] = WorkerTask(
            opts.client, tuple(connections), spec, opts.warmup, opts.duration, seed=p + 1, cacert=opts.cacert,
            token=opts.token,
        )
    return tasks


class Benchmark:
    """One series (one system, one client kind) over all levels and repetitions."""

    def __init__(self, opts: BenchOptions, target_fn: Callable[[], Target], progress) -> None:
        self.opts = opts
        self.describe = target_fn  # re-read before each run: the leader may have moved
        self.progress = progress
        self.rows: dict[int, list[dict]] = {c: [] for c in opts.concurrency}
        self.pool: WorkerPool | None = None
        self.target: Target | None = None  # as last seen

    def series(self) -> dict:
        rows = []
        for c, reps in self.rows.items():
            if reps:
                rows.append({"concurrency": c, "median": median_over_reps(reps), "reps": reps})
        return {"label": self.opts.label, "target": self.opts.target, "client": self.opts.client,
                "workload": self.opts.workload_config(), "rows": rows,
                "members": [{"name": m.name, "address": m.address, "leader": m.leader, "pid": m.pid}
                            for m in (self.target.members if self.target else ())]}

    def run(self) -> None:
        opts = self.opts
        try:
            if opts.client != "native":
                self.pool = WorkerPool(opts.procs)
            target = self.target = self.describe()
            if opts.reads:
                self._preload(target)
            for rep in range(1, opts.reps + 1):
                for c in opts.concurrency:
                    target = self.target = self.describe()
                    self.rows[c].append(self._run_once(target, c, rep))
        finally:
            if self.pool is not None:
                self.pool.close()

    def _preload(self, target: Target) -> None:
        opts = self.opts
        self.progress.update(f"{opts.label}: writing {opts.keys} keys for the reads")
        workload = Workload(workload_spec(opts), seed=0)
        api = "abcd" if target.system == "abcd" else "etcd"
        asyncio.run(preload(api, target.leader.address, workload.all_keys(), workload.values[0]))

    def _endpoint_for(self, target: Target) -> Callable[[int], str]:
        if not self.opts.spread:
            leader = target.leader.address
            return lambda i: leader
        members = [m.address for m in target.members]
        return lambda i: members[i % len(members)]

    def _run_once(self, target: Target, c: int, rep: int) -> dict:
        opts = self.opts
        what = f"{opts.label} c={c} rep {rep}/{opts.reps}"
        if opts.client == "native":
            return self._run_etcdbench(target, c, what)
        tasks = plan_tasks(opts, c, self._endpoint_for(target))
        clients = {f"client{i + 1}": pid for i, (pid, t) in enumerate(zip(self.pool.pids, tasks)) if t is not None}
        meter = CpuMeter({**{f"server:{n}": p for n, p in target.server_pids().items()}, **clients})
        start_at = self.pool.start(tasks)
        measure_from = start_at + opts.warmup
        measure_until = measure_from + opts.duration
        self._wait_until(measure_from, what, "warm-up", start_at)
        before = meter.snapshot()
        self._wait_until(measure_until, what, "measuring", measure_from)
        cpu = CpuMeter.percent(before, meter.snapshot())
        results = self._collect(what)
        latencies = []
        errors: dict[str, int] = {}
        samples: list[str] = []
        for r in results:
            latencies.extend(r.latencies)
            for kind, n in r.errors.items():
                errors[kind] = errors.get(kind, 0) + n
            samples.extend(r.error_samples)
        rep_result = summarize_latencies(latencies, opts.duration)
        rep_result.update(self._shape(target, cpu, sum(errors.values()), errors, samples))
        self.progress.done(f"{what}: {rep_result['ops_per_s']:,.0f} ops/s, p99 {_fmt(rep_result['p99_ms'])} ms"
                           + (f", {rep_result['errors']} errors" if rep_result["errors"] else ""))
        return rep_result

    def _run_etcdbench(self, target: Target, c: int, what: str) -> dict:
        opts = self.opts
        endpoint = target.leader.address
        if opts.warmup > 0:
            self.progress.update(f"{what}: warm-up ({opts.warmup:g}s)")
            etcd_native.run(etcd_native.command(opts.etcdbench, endpoint, c, opts.conns, opts.warmup, opts.op,
                                                opts.key_size, opts.value_size, opts.keys), opts.warmup)
        self.progress.update(f"{what}: measuring ({opts.duration:g}s, etcdbench)")
        meter = CpuMeter({f"server:{n}": p for n, p in target.server_pids().items()})
        cmd = etcd_native.command(opts.etcdbench, endpoint, c, opts.conns, opts.duration, opts.op,
                                  opts.key_size, opts.value_size, opts.keys)
        figures, cpu = etcd_native.run(cmd, opts.duration, meter)
        cpu["processes"]["client1"] = cpu["processes"].pop("etcdbench", None)
        secs = figures.pop("secs")
        figures["ops_per_s"] = figures["ops"] / secs if secs > 0 else 0.0
        errors = figures.pop("errors")
        figures.update(self._shape(target, cpu, errors, {"etcdbench": errors} if errors else {}, []))
        self.progress.done(f"{what}: {figures['ops_per_s']:,.0f} ops/s, p99 {_fmt(figures['p99_ms'])} ms")
        return figures

    def _shape(self, target: Target, cpu: dict, n_errors: int, kinds: dict, samples: list) -> dict:
        processes = cpu["processes"]
        client = {k: v for k, v in processes.items() if not k.startswith("server:")}
        servers = {k[len("server:"):]: v for k, v in processes.items() if k.startswith("server:")}
        ours = sum(v for v in processes.values() if v is not None) / (os.cpu_count() or 1)
        busy = cpu["machine_busy"]
        # What the rest of the machine was doing meanwhile: a noisy neighbour shows here.
        others = None if busy is None else round(max(0.0, busy - ours), 1)
        return {
            "errors": n_errors, "error_kinds": kinds, "error_samples": samples[:5],
            "leader": target.leader.name,
            "client_bound": any(v is not None and v >= CLIENT_BOUND_PERCENT for v in client.values()),
            "cpu": {"client": client, "servers": servers, "machine_busy": busy,
                    "others_busy": others},
        }

    def _wait_until(self, when: float, what: str, phase: str, since: float) -> None:
        last_count, last_time = self.pool.completed(), time.monotonic()
        total = when - since
        while True:
            now = time.monotonic()
            if now >= when:
                return
            time.sleep(min(0.25, when - now))
            count, now = self.pool.completed(), time.monotonic()
            rate = (count - last_count) / (now - last_time) if now > last_time else 0.0
            last_count, last_time = count, now
            self.progress.update(f"{what}: {phase} {min(now - since, total):4.1f}/{total:g}s  {rate:,.0f} ops/s")

    def _collect(self, what: str):
        deadline = time.monotonic() + RESULTS_TIMEOUT_S
        while not self.pool.poll(0.25) and time.monotonic() < deadline:
            self.progress.update(f"{what}: draining requests in flight")
        return self.pool.results(max(0.1, deadline - time.monotonic()))


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def target_describer(opts: BenchOptions, cluster=None) -> Callable[[], Target]:
    if cluster is not None:
        return cluster.target
    if opts.target == "etcd":
        return lambda: describe_etcd(list(opts.endpoints))
    return lambda: describe_abcd(list(opts.endpoints), cacert=opts.cacert)
