"""`tools/chaos.py`: `run` (the default), `soak` or `failover`."""
from __future__ import annotations

import asyncio
import sys

from . import options


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv and argv[0] in options.COMMANDS else "run"
    try:
        if command == "failover":
            from .failover import kill_leader

            return asyncio.run(kill_leader(options.failover_parser().parse_args(argv)))
        from .runner import run

        opts = options.parse_run(argv, soak=command == "soak")
        result = asyncio.run(run(opts, out=lambda line: print(line, flush=True)))
        return 0 if result.passed else 1
    except KeyboardInterrupt:
        print("chaos.py: interrupted; every node was killed", file=sys.stderr)
        return 130
