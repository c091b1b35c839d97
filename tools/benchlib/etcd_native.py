"""etcd through its native Go gRPC client: runs an external `etcdbench` binary.

etcdbench prints one line `RESULT tool=go op=put clients=16 conns=16 ops=… secs=…
ops_s=… p50_ms=… p99_ms=… max_ms=… errors=…`; it has no warm-up and no p90, so a
warm-up is a separate short run whose figures are dropped, and p90 stays unknown.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time

from .procstat import CpuMeter

DEFAULT_MAX_CONNS = 16
EXTRA_TIMEOUT_S = 60.0


class EtcdbenchError(RuntimeError):
    pass


def parse_result_line(output: str) -> dict:
    """The RESULT line of etcdbench's output as numbers (raises if it is missing)."""
    for line in output.splitlines():
        if line.startswith("RESULT "):
            fields = dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)
            try:
                return {
                    "ops": int(fields["ops"]), "secs": float(fields["secs"]), "ops_per_s": float(fields["ops_s"]),
                    "p50_ms": float(fields["p50_ms"]), "p90_ms": None, "p99_ms": float(fields["p99_ms"]),
                    "max_ms": float(fields["max_ms"]), "errors": int(fields["errors"]),
                }
            except (KeyError, ValueError) as e:
                raise EtcdbenchError(f"etcdbench RESULT line lacks a number ({e}): {line}") from None
    raise EtcdbenchError(f"etcdbench printed no RESULT line; its output was: {output.strip()[-500:]!r}")


def command(binary: str, endpoint: str, concurrency: int, conns: int | None, duration: float, op: str,
            key_size: int, value_size: int, keys: int) -> list[str]:
    cmd = [binary, "-endpoints", endpoint, "-clients", str(concurrency),
           "-conns", str(conns or min(concurrency, DEFAULT_MAX_CONNS)), "-duration", f"{duration}s",
           "-op", "put" if op == "put" else "range", "-key-size", str(key_size), "-val-size", str(value_size),
           "-key-space", str(keys)]
    if op == "get-serializable":
        cmd.append("-serializable")
    return cmd


def run(cmd: list[str], duration: float, meter: CpuMeter | None = None) -> tuple[dict, dict | None]:
    """Run etcdbench once; with a meter, also CPU % over (roughly) its measured interval.

    etcdbench connects before it starts its clock, so the CPU window starts a little
    after launch and stops a little before the end.
    """
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    cpu = None
    try:
        if meter is not None:
            meter.pids["etcdbench"] = proc.pid
            margin = min(0.3, duration / 5)
            time.sleep(margin)
            before = meter.snapshot()
            time.sleep(max(0.05, duration - 2 * margin))
            cpu = CpuMeter.percent(before, meter.snapshot())
        output, _ = proc.communicate(timeout=duration + EXTRA_TIMEOUT_S)
    except BaseException:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    finally:
        if meter is not None:
            meter.pids.pop("etcdbench", None)
    if proc.returncode != 0:
        raise EtcdbenchError(f"etcdbench exited with code {proc.returncode}: {output.strip()[-500:]!r}")
    return parse_result_line(output), cpu
