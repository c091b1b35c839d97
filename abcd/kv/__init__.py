"""The key-value state machine of abcd: MVCC revisions, put/get/range/delete/txn,
leases, watch history and exactly-once client sessions.  Standard library only."""
from .errors import MAX_KEY_BYTES, MAX_VALUE_BYTES, KVError, SnapshotError
from .snapshot import encode as encode_snapshot
from .store import DEFAULT_HISTORY_LIMIT, KVStore
from .validate import is_write, parse_request_id, validate_command, validate_request

__all__ = [
    "KVStore",
    "KVError",
    "SnapshotError",
    "validate_request",
    "validate_command",
    "is_write",
    "parse_request_id",
    "encode_snapshot",
    "MAX_KEY_BYTES",
    "MAX_VALUE_BYTES",
    "DEFAULT_HISTORY_LIMIT",
]
