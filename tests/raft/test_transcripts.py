"""Every scenario transcript in testdata/ must replay exactly.

On a mismatch the failure shows a unified diff (expected -> actual) with the
commands around it.  `pytest tests/raft --rewrite` writes the actual outputs into
the files instead; review that diff as carefully as code, because the transcripts
are the specification.
"""
from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from .harness import NeverQuiet, SafetyViolation, ScenarioError, play

TESTDATA = Path(__file__).parent / "testdata"
TRANSCRIPTS = sorted(TESTDATA.glob("*.txt"))


def test_there_are_transcripts():
    assert len(TRANSCRIPTS) >= 11, [p.name for p in TRANSCRIPTS]


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.stem)
def test_transcript(path: Path, request):
    expected = path.read_text()
    try:
        actual = play(expected, path.name)
    except (ScenarioError, SafetyViolation, NeverQuiet) as e:
        pytest.fail(f"{type(e).__name__}: {e}", pytrace=False)
    if actual == expected:
        return
    if request.config.getoption("--rewrite", default=False):
        path.write_text(actual)
        return
    diff = "\n".join(
        difflib.unified_diff(
            expected.splitlines(), actual.splitlines(), f"{path.name} (expected)", f"{path.name} (actual)", lineterm="", n=4
        )
    )
    pytest.fail(f"transcript {path.name} differs (run `pytest tests/raft --rewrite` to accept):\n{diff}", pytrace=False)
