"""SortedKeys against a plain sorted list, with tiny chunks so that splits happen."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abcd.kv import sorted_keys
from abcd.kv.sorted_keys import SortedKeys

keys = st.text(alphabet="ab/é", max_size=4)


@pytest.fixture(autouse=True)
def tiny_chunks(monkeypatch):
    monkeypatch.setattr(sorted_keys, "CHUNK", 2)


@settings(max_examples=200, deadline=None)
@given(initial=st.lists(keys, max_size=10), ops=st.lists(st.tuples(st.booleans(), keys), max_size=60), prefix=keys)
def test_behaves_like_a_sorted_set(initial, ops, prefix):
    index = SortedKeys(initial)
    model = set(initial)
    for add, key in ops:
        if add and key not in model:
            index.add(key)
            model.add(key)
        elif not add and key in model:
            index.remove(key)
            model.discard(key)
        assert len(index) == len(model)
    assert list(index) == sorted(model)
    assert list(index.starting_with(prefix)) == sorted(k for k in model if k.startswith(prefix))
    for key in ("", "a", "b/", "é"):
        assert (key in index) == (key in model)
    # Chunks stay within bounds and non-empty (white box).
    assert all(1 <= len(chunk) <= 4 for chunk in index._chunks)
    assert index._maxes == [chunk[-1] for chunk in index._chunks]


def test_removing_an_absent_key_raises_keyerror():
    index = SortedKeys(["a", "c"])
    with pytest.raises(KeyError):
        index.remove("b")
    with pytest.raises(KeyError):
        index.remove("d")
