"""Property: any sequence of Persist effects (overwrites of suffixes included), with
syncs, reopens, compactions and log resets in between, reads back as an in-memory
model of the Raft log says it should."""
from __future__ import annotations

import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from abcd.raft.effects import Persist
from abcd.raft.messages import Entry, HardState
from abcd.storage import WAL

append_op = st.tuples(
    st.just("append"),
    st.integers(0, 6),  # how far back from the end the batch starts (overwriting a suffix)
    st.integers(1, 5),  # batch size
    st.integers(0, 40),  # data size of each entry
    st.booleans(),  # with a hard state
    st.one_of(st.none(), st.integers(0, 4)),  # voted_for
)
operations = st.lists(
    st.one_of(
        append_op,
        append_op,
        append_op,
        st.tuples(st.just("hard_state"), st.integers(0, 2), st.one_of(st.none(), st.integers(0, 4))),
        st.tuples(st.just("sync")),
        st.tuples(st.just("reopen")),
        st.tuples(st.just("compact"), st.floats(0, 1)),
        st.tuples(st.just("reset"), st.integers(-3, 5)),
    ),
    max_size=40,
)


class Model:
    """The log as Raft sees it: log[i - 1] is entry i, None where a snapshot covers it."""

    def __init__(self) -> None:
        self.log: list[Entry | None] = []
        self.hard_state = HardState()
        self.floor = 0  # entries at or below are committed: never overwritten again

    @property
    def last_index(self) -> int:
        return len(self.log)

    def check(self, recovered) -> None:
        assert recovered.hard_state == self.hard_state
        assert recovered.last_index == self.last_index
        # Nothing above the committed floor may be missing.
        assert recovered.first_index <= self.floor + 1
        assert recovered.entries == self.log[recovered.first_index - 1 :]


@settings(max_examples=120, deadline=None)
@given(ops=operations, segment_bytes=st.sampled_from([60, 150, 400, 1 << 20]), preallocate=st.sampled_from([0, 512]))
def test_wal_matches_an_in_memory_model(ops, segment_bytes, preallocate):
    model = Model()
    seq = 0
    with tempfile.TemporaryDirectory() as data_dir:
        wal, recovered = WAL.open(data_dir, segment_bytes=segment_bytes, preallocate_bytes=preallocate)
        model.check(recovered)
        try:
            for op in ops:
                kind = op[0]
                seq += 1
                if kind == "append":
                    _, back, count, size, with_hs, voted_for = op
                    start = max(model.floor + 1, model.last_index + 1 - back)
                    term = model.hard_state.current_term
                    batch = tuple(Entry(term, i, bytes([i % 251]) * size, i % 2) for i in range(start, start + count))
                    hard_state = HardState(term + 1, voted_for) if with_hs else None
                    wal.write(Persist(seq, hard_state, batch))
                    del model.log[start - 1 :]
                    model.log.extend(batch)
                    if hard_state:
                        model.hard_state = hard_state
                elif kind == "hard_state":
                    _, bump, voted_for = op
                    model.hard_state = HardState(model.hard_state.current_term + bump, voted_for)
                    wal.write(Persist(seq, model.hard_state, ()))
                elif kind == "sync":
                    wal.sync()
                elif kind == "reopen":
                    wal.close()
                    wal, recovered = WAL.open(data_dir, segment_bytes=segment_bytes, preallocate_bytes=preallocate)
                    model.check(recovered)
                elif kind == "compact":
                    # A snapshot at some committed index; Raft commits only what exists.
                    upto = model.floor + int(op[1] * (model.last_index - model.floor))
                    model.floor = upto
                    wal.compact(upto)
                elif kind == "reset":
                    # A snapshot from the leader, ahead of or behind our (uncommitted) end.
                    index = max(model.floor, model.last_index + op[1])
                    wal.reset_log(index, model.hard_state.current_term)
                    model.log = [None] * index
                    model.floor = index
            wal.close()
            wal, recovered = WAL.open(data_dir, segment_bytes=segment_bytes, preallocate_bytes=preallocate)
            model.check(recovered)
        finally:
            wal.close()
