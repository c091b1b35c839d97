"""The four roles a server can be in (§5.1, plus the pre-vote state of thesis §9.6)."""

FOLLOWER = "follower"
PRE_CANDIDATE = "pre_candidate"
CANDIDATE = "candidate"
LEADER = "leader"
