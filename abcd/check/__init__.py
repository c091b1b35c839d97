"""Linearizability checking for client histories of the key-value store."""
from abcd.check.history import KINDS, HistoryRecorder, Operation
from abcd.check.linearizability import DEFAULT_BUDGET, CheckResult, check

__all__ = ["DEFAULT_BUDGET", "KINDS", "CheckResult", "HistoryRecorder", "Operation", "check"]
