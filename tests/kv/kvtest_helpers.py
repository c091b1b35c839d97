"""Shared helpers for the key-value state machine tests."""
from __future__ import annotations

import pytest

from abcd.kv import KVError, KVStore

KV_FIELDS = {"key", "value", "create_revision", "mod_revision", "version", "lease"}


class Log:
    """A KVStore fed like the node feeds it: one committed command per log index."""

    def __init__(self, store: KVStore | None = None, **config) -> None:
        self.store = store if store is not None else KVStore(**config)
        self.index = self.store.applied_index

    def apply(self, **cmd) -> dict:
        return self.apply_cmd(cmd)

    def apply_cmd(self, cmd: dict) -> dict:
        self.index += 1
        return self.store.apply(cmd, index=self.index)

    def outcome(self, cmd: dict) -> tuple[str, object]:
        """("ok", body) or ("error", (status, code, message)), for comparing runs."""
        try:
            return "ok", self.apply_cmd(cmd)
        except KVError as error:
            return "error", (error.status, error.code, error.message)

    def put(self, key: str, value: str, **extra) -> dict:
        return self.apply(op="put", key=key, value=value, **extra)

    def delete(self, key: str, **extra) -> dict:
        return self.apply(op="delete", key=key, **extra)


def kv(key, value, create_revision, mod_revision, version, lease=0) -> dict:
    return {
        "key": key,
        "value": value,
        "create_revision": create_revision,
        "mod_revision": mod_revision,
        "version": version,
        "lease": lease,
    }


def raises_kv(status: int, code: str, message: str | None = None):
    """pytest.raises for a KVError, checking status and code (and message, if given)."""

    class _Check:
        def __enter__(self):
            self._ctx = pytest.raises(KVError)
            self.info = self._ctx.__enter__()
            return self.info

        def __exit__(self, *exc):
            suppressed = self._ctx.__exit__(*exc)
            error = self.info.value
            assert (error.status, error.code) == (status, code), error
            if message is not None:
                assert error.message == message, error.message
            assert error.body() == {"error": error.message, "code": code}
            return suppressed

    return _Check()
