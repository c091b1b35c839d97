"""The settings of one node process (the command line of docs/operations.md)."""
from __future__ import annotations

from dataclasses import dataclass, field

from .auto_compaction import Retention


@dataclass(frozen=True, slots=True)
class NodeConfig:
    name: str
    data_dir: str
    host: str = "127.0.0.1"
    port: int = 8080
    # "host:port" where peers and clients reach this node.
    advertise: str = "127.0.0.1:8080"
    join: tuple[str, ...] = ()
    heartbeat_ms: int = 100
    election_timeout_ms: int = 1000
    cluster_token: str | None = None
    enable_faults: bool = False
    # Test only, a planted bug (docs/testing.md): serve every read from local state,
    # without ReadIndex, so that the chaos tests can show the checker catching it.
    unsafe_stale_reads: bool = False
    # How long a request may wait to be committed (or a read to be confirmed): then 504.
    request_timeout: float = 5.0
    # Take a snapshot once this many entries were applied since the last one (0: never).
    snapshot_count: int = 100_000
    # Entries kept in the log behind a snapshot, so that a follower a little behind
    # still gets AppendEntries rather than the whole snapshot.
    snapshot_catchup_entries: int = 5_000
    # Snapshot files kept (the newest), and WAL segments kept even once a snapshot covers
    # them (etcd's --max-snapshots and --max-wals); 0: keep them all (storage.md).
    max_snapshots: int = 2
    max_wals: int = 2
    # The WAL's segment size (storage.md); small only in tests, to roll segments often.
    wal_segment_bytes: int = 64 * 2**20
    # The leader's automatic compaction of the store's history (auto_compaction.py).
    auto_compaction: Retention = field(default_factory=lambda: Retention("periodic", 0))
    # How far ahead of its writes the WAL keeps the current segment zero-filled (0: off):
    # an fdatasync then has no file size or block allocation to commit (storage.md).
    wal_preallocate_bytes: int = 2**20
    # Origins ("http://host:port") whose pages may call this node, besides its members'
    # (--allow-origin; api/cors.py).
    allow_origins: tuple[str, ...] = ()
    # Seconds an auth token is valid (--auth-token-ttl; node/auth.py).
    auth_token_ttl: float = 300.0

    def __post_init__(self) -> None:
        if self.heartbeat_ms < 1:
            raise ValueError(f"--heartbeat-ms must be at least 1, got {self.heartbeat_ms}")
        if self.election_timeout_ms < 2 * self.heartbeat_ms:
            raise ValueError(
                f"--election-timeout-ms ({self.election_timeout_ms}) must be at least twice "
                f"--heartbeat-ms ({self.heartbeat_ms}), or followers would time out between heartbeats"
            )
        if self.request_timeout <= 0:
            raise ValueError(f"request_timeout must be positive, got {self.request_timeout}")
        if self.snapshot_count < 0:
            raise ValueError(f"--snapshot-count must be at least 0 (0 turns snapshots off), got {self.snapshot_count}")
        if self.wal_preallocate_bytes < 0:
            raise ValueError(f"wal_preallocate_bytes must be at least 0, got {self.wal_preallocate_bytes}")
        if self.max_snapshots < 0:
            raise ValueError(f"--max-snapshots must be at least 0 (0 keeps every snapshot), got {self.max_snapshots}")
        if self.max_wals < 0:
            raise ValueError(f"--max-wals must be at least 0 (0 keeps every WAL segment), got {self.max_wals}")
        if self.wal_segment_bytes < 4096:
            raise ValueError(f"the WAL segment size must be at least 4096 bytes, got {self.wal_segment_bytes}")
        if not self.auth_token_ttl > 0:
            raise ValueError(f"--auth-token-ttl must be a positive number of seconds, got {self.auth_token_ttl}")
        if self.snapshot_catchup_entries < 0:
            raise ValueError(f"--snapshot-catchup-entries must be at least 0, got {self.snapshot_catchup_entries}")

    @property
    def election_ticks(self) -> int:
        """The election timeout in ticks (one tick per heartbeat)."""
        return max(2, round(self.election_timeout_ms / self.heartbeat_ms))

    @property
    def tick_seconds(self) -> float:
        return self.heartbeat_ms / 1000.0
