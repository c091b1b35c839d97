"""Result math: latency percentiles of one run, medians over repetitions.

Percentiles use the nearest-rank definition (the smallest sample with at least q % of
the samples at or below it), so every reported latency is one that was observed.
"""
from __future__ import annotations

import math
import statistics
from typing import Iterable, Mapping, Sequence

LATENCY_PERCENTILES = (50, 90, 99)


def percentile(sorted_samples: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0 < q <= 100) of samples sorted ascending; None when empty."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be between 0 and 100, got {q}")
    n = len(sorted_samples)
    if n == 0:
        return None
    rank = max(1, math.ceil(q / 100 * n))
    return sorted_samples[rank - 1]


def summarize_latencies(latencies_s: Iterable[float], duration_s: float) -> dict:
    """Throughput and latency figures (ms) of one run from its per-operation latencies (s).

    `duration_s` is the measurement window: every latency given completed inside it.
    """
    if duration_s <= 0:
        raise ValueError(f"duration must be positive, got {duration_s}")
    ordered = sorted(latencies_s)
    summary: dict = {"ops": len(ordered), "ops_per_s": len(ordered) / duration_s}
    for q in LATENCY_PERCENTILES:
        summary[f"p{q}_ms"] = _ms(percentile(ordered, q))
    summary["max_ms"] = _ms(ordered[-1] if ordered else None)
    return summary


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0


def median_or_none(values: Iterable[float | None]) -> float | None:
    """Median of the values that are known; None when none is."""
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


NUMERIC_FIELDS = ("ops_per_s", "p50_ms", "p90_ms", "p99_ms", "max_ms", "errors")


def median_over_reps(reps: Sequence[Mapping]) -> dict:
    """The median of each figure over repetitions, CPU figures per process included.

    Each figure's median is taken on its own (the median run for throughput need not
    be the median run for p99), as benchmark reports usually do.
    """
    if not reps:
        raise ValueError("no repetitions to summarize")
    out: dict = {f: median_or_none(r.get(f) for r in reps) for f in NUMERIC_FIELDS}
    out["cpu"] = {
        group: _median_by_key([r.get("cpu", {}).get(group, {}) for r in reps])
        for group in ("client", "servers")
    }
    for figure in ("machine_busy", "others_busy"):
        out["cpu"][figure] = median_or_none(r.get("cpu", {}).get(figure) for r in reps)
    leaders = [r.get("leader") for r in reps if r.get("leader")]
    out["leader"] = max(set(leaders), key=leaders.count) if leaders else None
    out["cpu"]["by_role"] = _median_by_role(reps)
    return out


def _median_by_role(reps: Sequence[Mapping]) -> dict:
    """Server CPU by role: {"leader": %, "followers": [% of the busiest, ...]}.

    Per-name medians mislead when the leader differs between repetitions (a restarted
    cluster elects whoever it likes), so each rep's leader is compared with the other
    reps' leaders, and followers by rank.
    """
    leader_cpu, ranked = [], []
    for r in reps:
        servers = r.get("cpu", {}).get("servers", {})
        leader = r.get("leader")
        leader_cpu.append(servers.get(leader) if leader in servers else None)
        ranked.append(sorted((v for k, v in servers.items() if k != leader and v is not None), reverse=True))
    width = max((len(f) for f in ranked), default=0)
    return {"leader": median_or_none(leader_cpu),
            "followers": [median_or_none(f[i] if i < len(f) else None for f in ranked) for i in range(width)]}


def _median_by_key(dicts: Sequence[Mapping[str, float]]) -> dict:
    keys: list[str] = []
    for d in dicts:
        keys.extend(k for k in d if k not in keys)
    return {k: median_or_none(d.get(k) for d in dicts) for k in keys}


def split_evenly(total: int, parts: int) -> list[int]:
    """`total` items over `parts` holders, sizes differing by at most one, largest first."""
    if parts <= 0:
        raise ValueError(f"cannot split over {parts} parts")
    if total < 0:
        raise ValueError(f"cannot split a negative total {total}")
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]
