"""Logging: one loguru configuration for a node process.

Two sinks:

* stderr: readable lines, `12:00:01.234 INFO  node-8080 leader t3 BecomeLeader ...`
  (or JSON lines with --log-json);
* `<data-dir>/node.log`: JSON lines (loguru's serialize), rotated by size, for
  `tools/logview.py` and for reading after the fact.

Every record carries `node` (the node's name), `term`, `role` and `event` in its
`extra`: records made from the Raft core's Trace effects bind the event name of the
core's vocabulary (BecomeLeader, AdvanceCommitIndex...) and the term and role the
core reported; any other record gets the node's current term and role from the
state provider the node registers, and the event "log".

Cost (performance.md rule 8): a serialized record costs ~30 µs, a filtered one
~0.2 µs, so nothing logs per client request at INFO; per batch, or at DEBUG.
"""
from __future__ import annotations

import os
import sys
from typing import Callable

import loguru
from loguru import logger

STDERR_FORMAT = (
    "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> <cyan>{extra[node]}</cyan> "
    "{extra[role]} t{extra[term]} <bold>{extra[event]}</bold> {message}"
)
LOG_FILENAME = "node.log"
ROTATION = "20 MB"
RETENTION = 5

_state_provider: Callable[[], tuple[int, str]] | None = None


def set_state_provider(provider: Callable[[], tuple[int, str]] | None) -> None:
    """Register `provider() -> (term, role)` for records that do not bind their own."""
    global _state_provider
    _state_provider = provider


def _patch(record: "loguru.Record") -> None:
    extra = record["extra"]
    if "term" not in extra or "role" not in extra:
        term, role = _state_provider() if _state_provider is not None else (0, "-")
        extra.setdefault("term", term)
        extra.setdefault("role", role)
    extra.setdefault("event", "log")
    extra.setdefault("node", "-")


def configure_logging(
    *,
    node_name: str,
    data_dir: str | None,
    level: str = "INFO",
    json_stderr: bool = False,
) -> None:
    """Replace loguru's handlers with the node's (stderr, and node.log in `data_dir`).

    `level` is the terminal's; node.log always keeps INFO and up (DEBUG too when asked),
    so a node run quietly still leaves its story on disk.
    """
    level = level.upper()
    logger.level(level)  # ValueError for an unknown level name, before anything changes
    file_level = "DEBUG" if level in ("TRACE", "DEBUG") else "INFO"
    logger.remove()
    logger.configure(extra={"node": node_name}, patcher=_patch)
    if json_stderr:
        logger.add(sys.stderr, level=level, serialize=True, backtrace=False, diagnose=False)
    else:
        logger.add(sys.stderr, level=level, format=STDERR_FORMAT, backtrace=False, diagnose=False)
    if data_dir is not None:
        os.makedirs(data_dir, exist_ok=True)
        logger.add(
            os.path.join(data_dir, LOG_FILENAME),
            level=file_level,
            serialize=True,
            rotation=ROTATION,
            retention=RETENTION,
            # A thread writes the file, so a slow disk never stalls the event loop.
            enqueue=True,
            backtrace=False,
            diagnose=False,
        )


def level_enabled(level: str) -> bool:
    """Whether a record at `level` would reach at least one handler."""
    try:
        number = logger.level(level).no
    except ValueError:
        return False
    return number >= _min_level()


def _min_level() -> int:
    core = logger._core  # loguru keeps the minimum over its handlers here
    return getattr(core, "min_level", 0)
