"""Throughput and p99 latency against concurrency, one line per series (matplotlib).

matplotlib is optional (`pip install matplotlib`): without it the benchmark still runs
and writes its table and JSON, and says why there is no plot.
"""
from __future__ import annotations

MISSING = "--plot needs matplotlib, which is not installed here (pip install matplotlib); no plot drawn"


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def draw(series: list[dict], path: str, title: str | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, (ops_ax, p99_ax) = plt.subplots(1, 2, figsize=(8, 3.1), dpi=90)
    levels: set[int] = set()
    for s in series:
        rows = [r for r in s["rows"] if r["median"]["ops_per_s"] is not None]
        if not rows:
            continue
        cs = [r["concurrency"] for r in rows]
        levels.update(cs)
        _line(ops_ax, cs, rows, "ops_per_s", s["label"])
        if any(r["median"]["p99_ms"] is not None for r in rows):
            _line(p99_ax, cs, rows, "p99_ms", s["label"])
    for ax, ylabel in ((ops_ax, "operations/s"), (p99_ax, "p99 latency (ms)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(levels))
        ax.set_xticklabels([str(c) for c in sorted(levels)])
        ax.set_xlabel("concurrency (requests in flight)")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
    p99_ax.set_yscale("log")
    # Plain numbers (20, not 2×10¹), and only 2 and 5 between the decades so they stay legible.
    p99_ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    p99_ax.yaxis.set_minor_formatter(FuncFormatter(lambda value, _: f"{value:g}" if f"{value:g}"[0] in "25" else ""))
    ops_ax.set_ylim(bottom=0)
    ops_ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _line(ax, cs, rows, field: str, label: str) -> None:
    """Median with a bar from the smallest to the largest repetition."""
    med = [r["median"][field] for r in rows]
    lows = [min(v for v in (rep.get(field) for rep in r["reps"]) if v is not None) for r in rows]
    highs = [max(v for v in (rep.get(field) for rep in r["reps"]) if v is not None) for r in rows]
    ax.errorbar(cs, med, yerr=[[m - lo for m, lo in zip(med, lows)], [hi - m for m, hi in zip(med, highs)]],
                marker="o", markersize=4, capsize=3, label=label)
