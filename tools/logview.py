#!/usr/bin/env python3
"""Merge the JSON-lines logs of several abcd nodes into one timeline.

    python tools/logview.py                        # every abcd-data/*/node.log
    python tools/logview.py abcd-data/node-8081 abcd-data/node-8082/node.log --term 3
    python tools/logview.py --event BecomeLeader,AdvanceCommitIndex --since 5m
    python tools/logview.py --follow               # keep printing as the nodes write
    python tools/logview.py --summary              # elections and commit progress per node

Each node writes `<data-dir>/node.log` with loguru's `serialize=True`: one JSON object a
line, `{"text", "record": {"time": {"timestamp", "repr"}, "level": {"name"}, "message",
"extra": {"node", "term", "role", "event", ...}}}`.  A data dir argument also reads its
rotated logs (`node.*.log`).  Lines that are not such records are skipped and counted
on stderr at the end.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

try:
    import orjson

    _loads = orjson.loads
    _JSONError: tuple = (orjson.JSONDecodeError, UnicodeDecodeError)
except ImportError:  # logview needs nothing outside the standard library
    _loads = json.loads
    _JSONError = (json.JSONDecodeError, UnicodeDecodeError)

DEFAULT_GLOB = "abcd-data/*/node.log"
# Fields shown in their own columns, so not repeated among the extras.
_COLUMNS = ("node", "term", "role", "event")
_QUIET_LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS")


@dataclass(frozen=True, slots=True)
class Record:
    timestamp: float
    node: str
    term: int | None
    role: str
    event: str
    level: str
    message: str
    extra: dict = field(default_factory=dict)
    order: tuple = ()  # (source number, line number): keeps equal timestamps in file order


def parse_line(line: str | bytes, default_node: str, order: tuple = ()) -> Record | None:
    """The record of one log line, or None if the line is not a loguru JSON record."""
    try:
        record = _loads(line)["record"]
        timestamp = float(record["time"]["timestamp"])
        extra = record.get("extra") or {}
        if not isinstance(extra, dict):
            return None
        level = record.get("level") or {}
        message = str(record.get("message", ""))
        exception = record.get("exception")
    except (*_JSONError, KeyError, TypeError, ValueError):
        return None
    if isinstance(exception, dict) and exception.get("type"):
        message += f"  [{exception.get('type')}: {exception.get('value')}]"
    term = extra.get("term")
    return Record(
        timestamp=timestamp,
        node=str(extra.get("node") or default_node),
        term=term if isinstance(term, int) and not isinstance(term, bool) else None,
        role=str(extra.get("role") or ""),
        event=str(extra.get("event") or ""),
        level=str(level.get("name", "")) if isinstance(level, dict) else "",
        message=message,
        extra={k: v for k, v in extra.items() if k not in _COLUMNS},
        order=order,
    )


def node_label(path: Path) -> str:
    """The node a log belongs to when its records do not say: its data dir's name."""
    return path.resolve().parent.name or path.name


# --------------------------------------------------------------------------- sources


def resolve_sources(args: list[str], follow: bool) -> tuple[list[Path], list[Path]]:
    """(live logs, rotated logs) for the arguments; ValueError says what is missing."""
    live: list[Path] = []
    rotated: list[Path] = []
    if not args:
        live = [Path(p) for p in sorted(glob.glob(DEFAULT_GLOB))]
        rotated = [Path(p) for p in sorted(glob.glob("abcd-data/*/node.*.log"))]
        if not live and not rotated and not follow:
            raise ValueError(f"no logs found: nothing matches {DEFAULT_GLOB} here; name files or data dirs")
        return live, rotated
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            live.append(path / "node.log")
            rotated += sorted(path.glob("node.*.log"))
            if not follow and not (path / "node.log").exists() and not list(path.glob("node.*.log")):
                raise ValueError(f"{arg}: no node.log in this directory")
        elif path.exists() or follow:
            live.append(path)
        else:
            raise ValueError(f"{arg}: no such file or directory")
    return live, rotated


# --------------------------------------------------------------------------- filters


@dataclass(frozen=True, slots=True)
class Filters:
    nodes: frozenset = frozenset()
    terms: frozenset = frozenset()
    events: frozenset = frozenset()  # lower case
    keys: tuple = ()
    since: float | None = None

    def match(self, r: Record) -> bool:
        if self.since is not None and r.timestamp < self.since:
            return False
        if self.nodes and not any(r.node == n or r.node.endswith("-" + n) for n in self.nodes):
            return False
        if self.terms and r.term not in self.terms:
            return False
        if self.events and r.event.lower() not in self.events:
            return False
        if self.keys:
            haystack = r.message + " " + " ".join(f"{k}={_show(v)}" for k, v in r.extra.items())
            if not any(k in haystack for k in self.keys):
                return False
        return True


def parse_since(text: str, now: float | None = None, day: float | None = None) -> float:
    """90s, 5m, 2h, 1d (ago), HH:MM[:SS[.fff]], an ISO date-time or a Unix timestamp.

    A time of day is on the (local) date of `day`, a timestamp: the newest record's when
    reading logs once, so that old logs can be looked at; today when following.
    """
    now = time.time() if now is None else now
    s = text.strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", s)
    if m:
        unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
        return now - float(m.group(1)) * unit
    if re.fullmatch(r"\d{9,}(\.\d+)?", s):
        return float(s)
    if re.fullmatch(r"\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?", s):
        today = datetime.fromtimestamp(now if day is None else day).date().isoformat()
        return datetime.fromisoformat(f"{today}T{s if s.count(':') == 2 else s + ':00'}").timestamp()
    try:
        return datetime.fromisoformat(s).timestamp()
    except ValueError:
        raise ValueError(
            f"--since: cannot read {text!r}; use a duration ago (90s, 5m, 2h), a time today "
            f"(13:02:11), a date-time (2024-05-01T13:02:11) or a Unix timestamp"
        ) from None


# --------------------------------------------------------------------------- output


class Formatter:
    """One aligned line per record; columns grow to the widest value seen so far."""

    def __init__(self, with_date: bool = False) -> None:
        self.with_date = with_date
        self.widths = {"node": 9, "term": 3, "role": 9, "event": 18}
        self.fitted = False

    def fit(self, records: list[Record]) -> "Formatter":
        """Widen the columns for all of `records` at once, so that they line up."""
        for r in records:
            self._cells(r)
        self.fitted = True
        return self

    def _cells(self, r: Record) -> dict[str, str]:
        term = f"t{r.term}" if r.term is not None else "-"
        cells = {"node": r.node, "term": term, "role": r.role or "-", "event": r.event or "-"}
        for name, value in cells.items():
            self.widths[name] = max(self.widths[name], len(value))
        return cells

    def line(self, r: Record) -> str:
        cells = self._cells(r)
        text = r.message
        if r.level and r.level not in _QUIET_LEVELS:
            text = f"{r.level} {text}"
        if r.extra:
            text += "  " + " ".join(f"{k}={_show(v)}" for k, v in r.extra.items())
        columns = "  ".join(cells[n].ljust(self.widths[n]) for n in ("node", "term", "role", "event"))
        return f"{stamp(r.timestamp, self.with_date)}  {columns}  {text}".rstrip()


def stamp(timestamp: float, with_date: bool = False) -> str:
    """Local time to the millisecond: 13:02:11.123 (or 05-01 13:02:11.123)."""
    moment = datetime.fromtimestamp(timestamp)
    return moment.strftime("%m-%d %H:%M:%S." if with_date else "%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def summary(records: list[Record]) -> str:
    """Elections (BecomeLeader) in time order, then per node: records, terms, last role
    and commit progress (the commit_index values its records carry, e.g. the
    AdvanceCommitIndex records a node writes at DEBUG)."""
    lines = ["Elections (BecomeLeader):"]
    elections = [r for r in records if r.event == "BecomeLeader"]
    for r in elections:
        lines.append(f"  {stamp(r.timestamp)}  t{r.term if r.term is not None else '?'}  {r.node}")
    if not elections:
        lines.append("  none")
    rows = [("NODE", "RECORDS", "TERMS", "LAST ROLE", "COMMIT", "ADVANCES", "LAST SEEN")]
    for node in sorted({r.node for r in records}):
        mine = [r for r in records if r.node == node]
        terms = [r.term for r in mine if r.term is not None]
        commits = [c for c in map(_commit_index, mine) if c is not None]
        roles = [r.role for r in mine if r.role]
        rows.append((
            node,
            str(len(mine)),
            (f"{min(terms)}-{max(terms)}" if min(terms) != max(terms) else str(terms[0])) if terms else "-",
            roles[-1] if roles else "-",
            (f"{commits[0]} -> {commits[-1]}" if len(commits) > 1 else str(commits[0])) if commits else "-",
            str(sum(1 for r in mine if r.event == "AdvanceCommitIndex")),
            datetime.fromtimestamp(mine[-1].timestamp).strftime("%H:%M:%S"),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines += ["", "Nodes:"]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


_COMMIT_IN_TEXT = re.compile(r"\bcommit_index=(\d+)")


def _commit_index(r: Record) -> int | None:
    """The commit index a record reports: a `commit_index` field, or `commit_index=N`
    in its message (the node writes a trace's fields into the message)."""
    value = r.extra.get("commit_index")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = _COMMIT_IN_TEXT.search(r.message)
    return int(m.group(1)) if m else None


def _show(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)


# --------------------------------------------------------------------------- reading


class Reader:
    """Parses lines into records, counting the malformed ones per source."""

    def __init__(self) -> None:
        self.malformed: dict[str, int] = {}
        self._sources: dict[str, int] = {}
        self._lines: dict[str, int] = {}

    def records(self, path: Path, lines) -> list[Record]:
        key = str(path)
        number = self._sources.setdefault(key, len(self._sources))
        label = node_label(path)
        out = []
        for line in lines:
            self._lines[key] = self._lines.get(key, 0) + 1
            if not line.strip():
                continue
            r = parse_line(line, label, (number, self._lines[key]))
            if r is None:
                self.malformed[key] = self.malformed.get(key, 0) + 1
            else:
                out.append(r)
        return out

    def report(self) -> str | None:
        total = sum(self.malformed.values())
        if not total:
            return None
        per_file = ", ".join(f"{path}: {n}" for path, n in self.malformed.items())
        return f"logview: skipped {total} malformed line{'s' if total != 1 else ''} ({per_file})"


class Tailer:
    """New complete lines of a growing log, surviving rotation and truncation.

    Rotation (the path now names a new file): the rest of the old file is read, then
    the new one from its start.  Truncation (the file got shorter than what was read):
    reading starts again from the top.  A last line without its newline waits for it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = None
        self._inode: int | None = None
        self._offset = 0
        self._partial = b""

    def poll(self) -> list[bytes]:
        lines: list[bytes] = []
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        if self._file is not None and (st is None or st.st_ino != self._inode):
            lines += self._read()  # rotated away: finish the old file first
            if self._partial:
                lines.append(self._partial)
            self.close()
        if self._file is None and st is not None:
            try:
                self._file = open(self.path, "rb")
            except FileNotFoundError:
                return lines
            self._inode = os.fstat(self._file.fileno()).st_ino
            self._offset = 0
            self._partial = b""
        if self._file is not None:
            if os.fstat(self._file.fileno()).st_size < self._offset:  # truncated
                self._file.seek(0)
                self._offset = 0
                self._partial = b""
            lines += self._read()
        return lines

    def _read(self) -> list[bytes]:
        data = self._file.read()
        if not data:
            return []
        self._offset += len(data)
        *complete, self._partial = (self._partial + data).split(b"\n")
        return complete

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = None
        self._inode = None


def read_all(paths: list[Path], reader: Reader) -> list[Record]:
    records: list[Record] = []
    for path in paths:
        try:
            with open(path, "rb") as f:
                records += reader.records(path, f)
        except FileNotFoundError:
            continue
    return records


def _sorted(records: list[Record]) -> list[Record]:
    return sorted(records, key=lambda r: (r.timestamp, r.order))


# --------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Merge abcd node logs into one timeline.")
    p.add_argument("sources", nargs="*", metavar="FILE|DATA_DIR",
                   help=f"node.log files or data dirs (default: {DEFAULT_GLOB})")
    p.add_argument("--node", action="append", default=[], metavar="NAME",
                   help="only these nodes (repeat or comma-separate; a port matches node-PORT)")
    p.add_argument("--term", action="append", default=[], metavar="N", help="only these terms")
    p.add_argument("--event", action="append", default=[], metavar="NAME",
                   help="only these events, e.g. BecomeLeader (case-insensitive)")
    p.add_argument("--key", action="append", default=[], metavar="TEXT",
                   help="only records whose message or fields contain TEXT")
    p.add_argument("--since", metavar="WHEN",
                   help="only records from WHEN on: 5m (ago), 13:02:11 (on the day of the newest record), "
                        "an ISO date-time or a Unix timestamp")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new records as they are written")
    p.add_argument("--interval", type=float, default=0.25, metavar="S", help="--follow polling interval")
    p.add_argument("--summary", action="store_true", help="print elections and commit progress instead")
    return p


def _split(values: list[str]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def make_filters(args: argparse.Namespace) -> Filters:
    terms = set()
    for t in _split(args.term):
        if not t.isdigit():
            raise ValueError(f"--term: {t!r} is not a term number")
        terms.add(int(t))
    return Filters(
        nodes=frozenset(_split(args.node)),
        terms=frozenset(terms),
        events=frozenset(e.lower() for e in _split(args.event)),
        keys=tuple(args.key),
        since=parse_since(args.since) if args.since else None,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 2
    try:
        filters = make_filters(args)
        if not args.interval > 0:
            raise ValueError("--interval must be more than 0")
        if args.follow and args.summary:
            raise ValueError("--summary reads the logs once; it cannot be combined with --follow")
        live, rotated = resolve_sources(args.sources, args.follow)
    except ValueError as e:
        print(f"logview: {e}", file=sys.stderr)
        return 2
    reader = Reader()
    try:
        if args.follow:
            follow(args, live, rotated, filters, reader)
        else:
            everything = read_all(rotated + live, reader)
            if args.since and everything:
                newest = max(r.timestamp for r in everything)
                filters = replace(filters, since=parse_since(args.since, day=newest))
            records = _sorted([r for r in everything if filters.match(r)])
            if args.summary:
                print(summary(records))
            else:
                days = {datetime.fromtimestamp(r.timestamp).date() for r in (records[:1] + records[-1:])}
                fmt = Formatter(with_date=len(days) > 1).fit(records)
                for r in records:
                    print(fmt.line(r))
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:  # piped into head: stop quietly
        sys.stderr.close()
        return 0
    finally:
        message = reader.report()
        if message and not sys.stderr.closed:
            print(message, file=sys.stderr)
    return 0


def follow(args, live: list[Path], rotated: list[Path], filters: Filters, reader: Reader) -> None:
    """Print what is there, then poll every `args.interval` seconds for more."""
    tailers = {path: Tailer(path) for path in live}
    first = read_all(rotated, reader)
    fmt = Formatter()
    while True:
        batch = first
        first = []
        if not args.sources:  # the default glob: pick up nodes that start later
            for p in glob.glob(DEFAULT_GLOB):
                tailers.setdefault(Path(p), Tailer(Path(p)))
        for path, tailer in tailers.items():
            batch += reader.records(path, tailer.poll())
        records = _sorted([r for r in batch if filters.match(r)])
        if not fmt.fitted:  # align the history; later, columns grow only if they must
            fmt.fit(records)
        for r in records:
            print(fmt.line(r), flush=True)
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
