"""Output: the progress line, the results table, the JSON file (and merging several).

JSON layout (format "abcd-bench/1"):
    {"format", "started", "command", "machine": {...}, "config": {...},
     "series": [{"label", "target", "client", "workload": {op, keys, key_size, ...},
                 "members": [{"name", "address", "leader", "pid"}],
                 "rows": [{"concurrency", "median": {...}, "reps": [{...}, ...]}]}]}
A rep holds ops, ops_per_s, p50_ms, p90_ms (null for etcdbench), p99_ms, max_ms,
errors, error_kinds, leader, client_bound, and cpu = {"client": {name: %},
"servers": {name: %}, "machine_busy": %, "others_busy": %}; CPU % is of one core,
machine % of all cores, others_busy = machine % minus what the listed processes used.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from typing import Iterable

from .stats import median_over_reps

FORMAT = "abcd-bench/1"


class Progress:
    """One status line on stderr: redrawn in place on a terminal, else only milestones."""

    def __init__(self, stream=None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.quiet = quiet
        self._width = 0

    def update(self, text: str) -> None:
        if self.quiet or not self.tty:
            return
        pad = max(0, self._width - len(text))
        self.stream.write("\r" + text + " " * pad)
        self.stream.flush()
        self._width = len(text)

    def done(self, text: str) -> None:
        """A finished step: stays on screen (replaces the status line on a terminal)."""
        if self.quiet:
            return
        if self.tty:
            self.update(text)
            self.stream.write("\n")
            self._width = 0
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def clear(self) -> None:
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0


def machine_info() -> dict:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "python": platform.python_version(), "load_average": list(os.getloadavg())}


def document(config: dict, series: list[dict], argv: list[str]) -> dict:
    return {"format": FORMAT, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": argv,
            "machine": machine_info(), "config": config, "series": series}


def write_json(path: str, doc: dict) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def load_series(paths: Iterable[str]) -> list[dict]:
    """Series from result files, with repetitions of the same label and level pooled
    (so separate invocations interleaved by hand report one median)."""
    merged: dict[str, dict] = {}
    for path in paths:
        try:
            with open(path) as f:
                doc = json.load(f)
        except OSError as e:
            raise ValueError(f"cannot read {path}: {e.strerror}") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not JSON: {e}") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError(f"{path} is not a bench.py result file (format {FORMAT!r})")
        for s in doc["series"]:
            into = merged.get(s["label"])
            if into is None:
                into = merged[s["label"]] = {k: s.get(k) for k in ("label", "target", "client", "workload")}
                into["_reps"], into["_from"] = {}, path
            elif into["workload"] != s.get("workload"):
                raise ValueError(f"{into['_from']} and {path} both hold series {s['label']!r} but measured "
                                 f"different workloads ({into['workload']} vs {s.get('workload')}); "
                                 "give one of them another --label")
            for row in s["rows"]:
                into["_reps"].setdefault(row["concurrency"], []).extend(row["reps"])
    out = []
    for s in merged.values():
        reps = s.pop("_reps")
        s.pop("_from")
        s["rows"] = [{"concurrency": c, "median": median_over_reps(r), "reps": r} for c, r in sorted(reps.items())]
        out.append(s)
    return out


COLUMNS = ("system / client", "c", "ops/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors",
           "client CPU%", "server CPU% (leader / followers)", "machine% (others)")


def table(series: list[dict]) -> str:
    """Medians over repetitions, one row per system and concurrency, aligned."""
    lines = [list(COLUMNS)]
    notes = set()
    for s in series:
        if s.get("target") == "pysyncobj" and s["rows"]:
            notes.add(f"{s['label']}: PySyncObj keeps its log in memory and never fsyncs (not durable), and its "
                      "load generator runs inside the leader's process (its CPU is in the leader's): "
                      "a reference point, not a like-for-like comparison")
        for row in s["rows"]:
            m = row["median"]
            reps = row["reps"]
            client = _client_cpu(m["cpu"]["client"])
            if any(r.get("client_bound") for r in reps):
                client += " !"
                notes.add("! a client process used 90 % of a core or more: the load generator may be the "
                          "bottleneck (raise --procs)")
            lines.append([
                s["label"], str(row["concurrency"]), _num(m["ops_per_s"], 0), _num(m["p50_ms"], 2),
                _num(m["p90_ms"], 2), _num(m["p99_ms"], 2), _num(m["max_ms"], 1), _num(m["errors"], 0),
                client, _servers(m["cpu"]), _machine(m["cpu"]),
            ])
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    text = []
    for n, line in enumerate(lines):
        cells = [cell.ljust(widths[i]) if i in (0, 9) else cell.rjust(widths[i]) for i, cell in enumerate(line)]
        text.append("  ".join(cells).rstrip())
        if n == 0:
            text.append("  ".join("-" * w for w in widths))
    reps = sorted({len(row["reps"]) for s in series for row in s["rows"]})
    over = "one repetition" if reps == [1] else f"medians over {'/'.join(map(str, reps))} repetitions"
    text.append(f"{over}; CPU % of one core; machine % of all "
                f"{os.cpu_count()} cores, (others) = the part not used by the processes above")
    text.extend(sorted(notes))
    return "\n".join(text)


def _num(value, digits: int) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _machine(cpu: dict) -> str:
    busy, others = cpu.get("machine_busy"), cpu.get("others_busy")
    return _num(busy, 0) if others is None else f"{_num(busy, 0)} ({others:.0f})"


def _client_cpu(client: dict) -> str:
    known = [v for v in client.values() if v is not None]
    if not known:
        return "–"
    total = f"{sum(known):.0f}"
    return total if len(known) == 1 else f"{total} ({len(known)} procs)"


def _servers(cpu: dict) -> str:
    roles = cpu.get("by_role") or {}
    followers = " ".join(_num(v, 0) for v in roles.get("followers", []))
    if roles.get("leader") is None:
        return followers or "–"
    return f"{_num(roles['leader'], 0)} / {followers}".rstrip()
