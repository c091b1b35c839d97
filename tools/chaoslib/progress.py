"""Live progress while a run goes: operations done, faults so far, time left.

On a terminal, with `tqdm` installed (`pip install 'abcd[chaos]'`), a progress bar
over the run's seconds; otherwise one plain line every `every` seconds, which reads
well in a log or a CI job.  tqdm is optional: nothing else needs it.
"""
from __future__ import annotations

import sys
import time

try:
    from tqdm import tqdm
except ImportError:  # optional
    tqdm = None


class Progress:
    def __init__(self, duration: float, *, every: float = 5.0, stream=None, bar: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.duration = duration
        self.every = every
        self.started = time.monotonic()
        self._last_line = self.started
        if bar is None:
            bar = tqdm is not None and self.stream.isatty()
        self._bar = tqdm(total=round(duration), unit="s", file=self.stream, leave=False) if bar and tqdm else None
        self._shown = 0

    def update(self, ops: int, faults: int, fault_now: str | None) -> None:
        now = time.monotonic()
        elapsed = now - self.started
        left = max(0.0, self.duration - elapsed)
        if self._bar is not None:
            step = min(round(self.duration), int(elapsed)) - self._shown
            if step > 0:
                self._bar.update(step)
                self._shown += step
            self._bar.set_postfix_str(f"{ops} ops, {faults} faults" + (f", now: {fault_now}" if fault_now else ""))
            return
        if now - self._last_line >= self.every:
            self._last_line = now
            print(f"[{elapsed:6.1f}s] {ops} operations, {faults} faults, {left:.0f}s left"
                  + (f"; now: {fault_now}" if fault_now else ""), file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
