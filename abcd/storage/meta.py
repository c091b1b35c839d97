"""`<data-dir>/meta.json`: who this node is (node id, cluster id, ...).

Written atomically (temp file, fsync, rename, fsync the directory): after a crash
the file is either the old one or the new one, never a mix.
"""
from __future__ import annotations

import json
import os
from typing import Any

from .errors import StorageError
from .files import atomic_write, ensure_dir

META_FILENAME = "meta.json"


def write_meta(data_dir: str | os.PathLike, meta: dict[str, Any]) -> str:
    """Replace `<data_dir>/meta.json` with `meta`, durably.  Returns its path."""
    if not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict, not {type(meta).__name__}")
    try:
        text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
    except (TypeError, ValueError) as e:
        raise StorageError(f"meta is not JSON-serialisable: {e}") from None
    data_dir = os.fspath(data_dir)
    ensure_dir(data_dir)
    path = os.path.join(data_dir, META_FILENAME)
    atomic_write(path, (text.encode(),))
    return path


def read_meta(data_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The contents of `<data_dir>/meta.json`, or None if it does not exist."""
    path = os.path.join(os.fspath(data_dir), META_FILENAME)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise StorageError(f"{path}: cannot read: {e}") from None
    try:
        meta = json.loads(raw)
    except UnicodeDecodeError as e:
        raise StorageError(f"{path}: not UTF-8 text ({e}); fix or remove the file") from None
    except json.JSONDecodeError as e:
        raise StorageError(
            f"{path}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}; fix or remove the file"
        ) from None
    if not isinstance(meta, dict):
        raise StorageError(f"{path}: expected a JSON object, found {type(meta).__name__}")
    return meta
