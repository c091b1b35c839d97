"""Two systems' `tools/scale.py` figures side by side, with the ratio of the first to the second.

Members are paired by role (the leader with the leader, then the followers in name
order), since the two systems name their members differently.  A figure one system
lacks (a run that stopped early) shows as "-".
"""
from __future__ import annotations

from .scale import MemberFigures, ScaleResult

MB = 2**20


def _mb(value: int | None) -> float | None:
    return None if value is None else value / MB


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or not b else f"{a / b:.2f}"


def by_role(members: list[MemberFigures]) -> list[MemberFigures]:
    """The leader first, then the others by name."""
    return sorted(members, key=lambda m: (m.role != "leader", m.name))


def _per_key(r: ScaleResult | None, m: MemberFigures | None) -> float | None:
    return None if r is None or m is None else (m.rss_after - m.rss_before) / r.keys


def side_by_side(series: dict[str, list[ScaleResult]], first: str, second: str) -> str:
    """Two tables: one row per N and member (memory, data dir), one row per N (times)."""
    a_by_n = {r.keys: r for r in series.get(first, [])}
    b_by_n = {r.keys: r for r in series.get(second, [])}
    sizes = sorted(set(a_by_n) | set(b_by_n))
    pair = f"{first[:4]}/{second[:4]}"
    heads = [("peak MB", True), ("after MB", True), ("B/key", True), ("data MB", True), ("restarted MB", False)]
    top = f"{'':>9} {'':<9}" + "".join(f" | {h:^{27 if with_ratio else 17}}" for h, with_ratio in heads)
    sub = f"{'keys':>9} {'role':<9}" + "".join(
        f" | {first:>8} {second:>8}" + (f" {pair:>9}" if with_ratio else "") for _, with_ratio in heads)
    lines = [top, sub]
    for n in sizes:
        a, b = a_by_n.get(n), b_by_n.get(n)
        a_members = by_role(a.members) if a else []
        b_members = by_role(b.members) if b else []
        for i in range(max(len(a_members), len(b_members))):
            am = a_members[i] if i < len(a_members) else None
            bm = b_members[i] if i < len(b_members) else None
            role = (am or bm).role
            cells = []
            for get in (lambda m: _mb(m.rss_peak), lambda m: _mb(m.rss_after), None, lambda m: _mb(m.data_dir)):
                if get is None:
                    x, y = _per_key(a, am), _per_key(b, bm)
                else:
                    x, y = (get(am) if am else None), (get(bm) if bm else None)
                cells.append(f" | {_num(x):>8} {_num(y):>8} {ratio(x, y):>9}")
            cells.append(f" | {_num(_mb(am.rss_after_restart) if am else None):>8} "
                         f"{_num(_mb(bm.rss_after_restart) if bm else None):>8}")
            lines.append(f"{(f'{n:,}' if i == 0 else ''):>9} {role:<9}" + "".join(cells))
    lines.append("")
    times = [("load s", "load_s", 1), ("restart s", "restart_s", 2), ("catch-up s", "catchup_s", 2)]
    lines.append(f"{'':>9}" + "".join(f" | {h:^27}" for h, _, _ in times) + f" | {'catch-up MB':^17}")
    lines.append(f"{'keys':>9}" + "".join(f" | {first:>8} {second:>8} {pair:>9}" for _ in times)
                 + f" | {first:>8} {second:>8}")
    for n in sizes:
        a, b = a_by_n.get(n), b_by_n.get(n)
        cells = []
        for _, name, digits in times:
            x, y = (getattr(a, name) if a else None), (getattr(b, name) if b else None)
            cells.append(f" | {_num(x, digits):>8} {_num(y, digits):>8} {ratio(x, y):>9}")
        cells.append(f" | {_num(_mb(a.catchup_rss) if a else None):>8} {_num(_mb(b.catchup_rss) if b else None):>8}")
        lines.append(f"{n:>9,}" + "".join(cells))
    return "\n".join(lines)
