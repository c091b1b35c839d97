"""The four roles a server can be in (§5.1, plus the pre-vote state of thesis §9.6)."""
from enum import StrEnum


class Role(StrEnum):
    """A `str` enum: each role is its own lower-case name as a string, so traces, log
    lines, status fields and JSON keep the plain strings ("follower", "leader"...)."""

    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre_candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


FOLLOWER = Role.FOLLOWER
PRE_CANDIDATE = Role.PRE_CANDIDATE
CANDIDATE = Role.CANDIDATE
LEADER = Role.LEADER
