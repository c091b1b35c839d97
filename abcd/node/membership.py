"""Members: names and addresses, carried in configuration entries, and changes to them.

The Raft core knows members as ids (voters, learners).  Everything else the node
needs about them (a name, the "host:port" where it serves peers and clients,
whether the leader should promote it once caught up) travels in the configuration
entry's `context` string, as JSON::

    {"members": {"1": {"name": "node-8080", "address": "127.0.0.1:8080", "promote": false}, ...},
     "next_id": 4}

Every config entry carries the whole table, so the latest one is enough.  `next_id`
only grows, so a removed member's id is never reused.

Which configuration?  The core uses the latest configuration in its log, committed
or not (thesis §4.1), and so does the address book: a restarted follower has applied
nothing yet but must answer its leader, and a leader must reach a learner it has
just added before that entry commits.  A node whose log holds no configuration yet
(just joined) uses the members the leader named when it answered the join.

The peers a node keeps links to are the members of that latest configuration *and*
of the one committed: a member being removed stays reachable until its removal
commits.  That matters when the leader itself is removed: it replicates and commits
the entry that removes it (thesis §4.2.2), so the followers that already hold that
entry must still be able to answer it.

Peers the table does not name yet.  A node whose table lags behind the cluster's can
hear from a member it does not know: a new member installs the leader's snapshot, whose
table (as of the snapshot's index) predates the leader itself when the leader joined
after that index; a follower long cut off hears from a leader added meanwhile.  Its
answers would go nowhere, and the leader would resend forever (or until a leader the
table knows takes over).  So a peer that dialed in is answered at the address its hello
advertised (`heard`), as long as the table does not name its id and no committed
configuration removed it; the table's address wins as soon as it names the id, and
the advertised one is forgotten when the peer's last connection closes.  This grants
nothing new: the hello is accepted only with the cluster's token (and, with TLS, a
peer certificate), and a peer holding those may send any message under any id anyway;
what it gains is the answers to its own messages.  The leader's newer table could
instead travel with its snapshot, but that would mend only that one case, and a table
that is not the snapshot's own would then live beside the log's configurations.

Removed members.  Ids are never reused, so a node id below a committed
configuration's `next_id` that this configuration does not name was removed, for
good (`is_removed`): its peer connections are refused, and a node that finds itself
removed stops (node.py).

Snapshots: once the log is compacted past the last configuration entry, or replaced
by a snapshot from the leader, no entry is left to read the table from.  A snapshot
therefore carries the context of the configuration in force at its index (its meta
on disk, its data header on the wire), and the table falls back to that `base`
before it falls back to the join's members: config entries in the log, then the
base, then the seed.  The node sets the base before it compacts the core's log
(`context_at` of the compaction point, while the entry is still there), when it
installs a snapshot, and when it starts from one.

The table is recomputed from the configuration part of the core's step records
(`sync(record.config)`, raft/record.py): the config entries with their contexts and
which of them is committed.  Planning a change reads the node's CoreView (the soft
state of the last record, core_view.py), never the core.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..raft.messages import ProposeConfig
from ..raft.record import ConfigState


@dataclass(frozen=True, slots=True)
class MemberInfo:
    name: str
    address: str
    # Promote to voter once caught up (members that joined as learners).
    promote: bool = False
    # Drawn by the node that joined (or bootstrapped) as this member, once per data dir's
    # first start: a join at this address with another join_id comes from a node that
    # lost its data and must not take this member's place (see cluster_ops.add_member).
    # None for a member added by `members add` whose node has not joined yet.
    join_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        table = {"name": self.name, "address": self.address, "promote": self.promote}
        if self.join_id is not None:
            table["join_id"] = self.join_id
        return table


def encode_context(members: dict[int, MemberInfo], next_id: int) -> str:
    table = {str(node_id): info.to_json() for node_id, info in sorted(members.items())}
    return json.dumps({"members": table, "next_id": next_id}, separators=(",", ":"), sort_keys=True)


def decode_context(text: str) -> tuple[dict[int, MemberInfo], int]:
    """(members, next_id) from a context string; ValueError if it is not one of ours."""
    if not text:
        return {}, 1
    obj = json.loads(text)
    if not isinstance(obj, dict) or not isinstance(obj.get("members"), dict):
        raise ValueError(f"configuration context has no member table: {text[:200]!r}")
    members = {}
    for key, info in obj["members"].items():
        join_id = info.get("join_id")
        members[int(key)] = MemberInfo(
            str(info["name"]), str(info["address"]), bool(info.get("promote", False)),
            str(join_id) if join_id is not None else None,
        )
    next_id = int(obj.get("next_id", max(members, default=0) + 1))
    return members, next_id


def check_context(text: str) -> None:
    """Raise ValueError, saying why, unless `text` is a member table decode_context reads."""
    try:
        decode_context(text)
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"not a member table ({type(error).__name__}: {error}): {text[:200]!r}") from None


def members_from_json(items: list[dict]) -> dict[int, MemberInfo]:
    """The member list of a join answer (or meta.json) -> {id: MemberInfo}."""
    return {int(m["id"]): MemberInfo(str(m["name"]), str(m["address"]), bool(m.get("promote", False))) for m in items}


def caught_up_target(view, caught_up_index: int | None = None) -> int:
    """The index a learner's match index must reach to count as caught up.

    The leader's commit index, or `caught_up_index` if lower: the node passes the commit
    index of the leader's previous tick, so that a learner trailing by less than one
    heartbeat of writes counts as caught up even under a load that never pauses.  At
    least 1: a learner that never acknowledged anything has not caught up with anything.
    """
    target = view.commit_index
    if caught_up_index is not None and caught_up_index > 0:
        target = min(caught_up_index, target)
    return max(target, 1)


class ChangeError(ValueError):
    """A membership change that cannot be made; `status` and `code` for the API."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class Membership:
    """The address book of one node, recomputed when its log's configuration changes."""

    def __init__(self, self_id: int, seed_members: dict[int, MemberInfo] | None = None) -> None:
        self.self_id = self_id
        self._seed = dict(seed_members or {})
        self.members: dict[int, MemberInfo] = dict(self._seed)
        self.next_id = max(self.members, default=0) + 1
        # The context of the configuration a snapshot covers (None: no snapshot has one).
        self.base_context: str | None = None
        # Where the table comes from: ("entry", index, term), ("base", context) or
        # ("seed",).  The term tells a config entry from one that replaced it at the
        # same index (a follower overwriting a conflicting suffix, §5.3).
        self._source: tuple | None = None
        # The same for the configuration in force at the commit index.
        self.committed: dict[int, MemberInfo] = self.members
        self.committed_next_id = self.next_id
        self._committed_source: tuple | None = None
        # The address each peer connected to this node advertised in its hello.
        self.advertised: dict[int, str] = {}
        # The configuration part of the last step record synced from.
        self.config_state: ConfigState | None = None

    def set_base(self, context: str | None) -> None:
        """The configuration context as of the start of the log (see the module doc).
        None leaves the base as it was: the snapshot knew no member table."""
        if context is not None:
            check_context(context)  # refuse a context that is not ours before relying on it
            self.base_context = context

    def context_at(self, index: int) -> str | None:
        """The context of the configuration in force at `index` (at or after the start
        of the log last synced from): the latest config entry at or before it, else
        the base."""
        entry = self.config_state.at(index) if self.config_state is not None else None
        return entry.context if entry is not None else self.base_context

    def sync(self, state: ConfigState) -> bool:
        """Recompute the latest and the committed tables from a record's configuration
        part (its config entries, or the base) if either changed; True if one did."""
        self.config_state = state
        entries = state.entries
        latest = self._source_of(entries[-1] if entries else None)
        changed = latest != self._source
        if changed:
            self._source = latest
            self.members, self.next_id = self._table(latest)
        # Usually the latest configuration is the committed one; only while a change is
        # pending is the one before it looked for.
        committed = self._source_of(state.at(state.committed_index) if state.committed_index else None)
        if committed != self._committed_source:
            self._committed_source = committed
            if committed == latest:
                self.committed, self.committed_next_id = self.members, self.next_id
            else:
                self.committed, self.committed_next_id = self._table(committed)
            changed = True
        return changed

    def _source_of(self, entry) -> tuple:
        if entry is not None:
            return ("entry", entry.index, entry.term, entry.context)
        if self.base_context is not None:
            return ("base", self.base_context)
        return ("seed",)

    def _table(self, source: tuple) -> tuple[dict[int, MemberInfo], int]:
        if source[0] == "entry":
            return decode_context(source[3])
        if source[0] == "base":
            return decode_context(source[1])
        return dict(self._seed), max(self._seed, default=0) + 1

    def heard(self, node_id: int, address: str) -> bool:
        """A peer dialed in advertising `address`: True if that adds or moves a peer
        (one the tables do not name; see the module doc)."""
        if node_id == self.self_id or self.advertised.get(node_id) == address:
            return False
        # Kept even for a member the table names: a snapshot installed later may
        # replace the table with one that does not.
        self.advertised[node_id] = address
        return not self._named(node_id)

    def forget(self, node_id: int) -> bool:
        """The peer's last connection to this node closed: True if that drops a peer
        known only by its advertised address."""
        return self.advertised.pop(node_id, None) is not None and not self._named(node_id)

    def _named(self, node_id: int) -> bool:
        return node_id in self.members or node_id in self.committed or self.is_removed(node_id)

    def is_removed(self, node_id: int) -> bool:
        """Whether `node_id` was a member and a committed configuration removed it."""
        return node_id < self.committed_next_id and node_id not in self.committed

    def address_of(self, node_id: int | None) -> str | None:
        info = self.members.get(node_id) if node_id is not None else None
        if info is not None:
            return info.address
        return self.advertised.get(node_id) if node_id is not None and not self.is_removed(node_id) else None

    def peers(self) -> dict[int, str]:
        """Members of the latest or the committed configuration, but this node, and the
        peers known only by the address they advertised (`heard`)."""
        peers = {node_id: info.address for node_id, info in self.committed.items() if node_id != self.self_id}
        peers.update((node_id, info.address) for node_id, info in self.members.items() if node_id != self.self_id)
        for node_id, address in self.advertised.items():
            if not self._named(node_id):
                peers[node_id] = address
        return peers

    def describe(self, view) -> list[dict[str, Any]]:
        """The API's member list: {"id", "name", "address", "voter", "leader"}."""
        config = view.config
        ids = set(self.members) | set(config.members)
        out = []
        for node_id in sorted(ids):
            info = self.members.get(node_id)
            out.append(
                {
                    "id": node_id,
                    "name": info.name if info else f"node-{node_id}",
                    "address": info.address if info else None,
                    "voter": node_id in config.voters,
                    "leader": node_id == view.leader_id,
                }
            )
        return out

    # ------------------------------------------------------------------ planning changes (leader)

    def info(self, node_id: int) -> MemberInfo | None:
        return self.members.get(node_id)

    def find_by_address(self, address: str) -> int | None:
        for node_id, info in self.members.items():
            if info.address == address:
                return node_id
        return None

    def plan_add(
        self, view, address: str, name: str | None, learner: bool, join_id: str | None = None
    ) -> tuple[int, ProposeConfig]:
        """(new id, the change to propose) to add a member at `address`."""
        node_id = self.next_id
        members = dict(self.members)
        members[node_id] = MemberInfo(name or f"node-{node_id}", address, promote=learner, join_id=join_id)
        voters, learners = set(view.config.voters), set(view.config.learners)
        (learners if learner else voters).add(node_id)
        return node_id, self._change(voters, learners, members, node_id + 1)

    def plan_remove(self, view, node_id: int) -> ProposeConfig:
        config = view.config
        if node_id not in config.members:
            raise ChangeError(404, "member_not_found", f"node {node_id} is not a member")
        if config.voters == {node_id}:
            raise ChangeError(400, "bad_request", f"node {node_id} is the last voter; a cluster needs one")
        members = {i: m for i, m in self.members.items() if i != node_id}
        return self._change(set(config.voters) - {node_id}, set(config.learners) - {node_id}, members, self.next_id)

    def plan_promote(self, view, node_id: int, caught_up_index: int | None = None) -> ProposeConfig | None:
        """The change making learner `node_id` a voter; None if it already is one.

        A learner that has not caught up (see `caught_up_target`) is refused with 409
        `learner_not_ready`: as a voter it would count in the quorum before it could
        acknowledge anything new, and a learner that never started would cost the
        cluster a voter for good (etcd refuses the same)."""
        config = view.config
        if node_id in config.voters:
            return None
        if node_id not in config.learners:
            raise ChangeError(404, "member_not_found", f"node {node_id} is not a member")
        match_index = view.match_index(node_id) or 0
        target = caught_up_target(view, caught_up_index)
        if match_index < target:
            short = target - match_index
            never = " and has never answered the leader (is it running?)" if match_index == 0 else ""
            raise ChangeError(
                409, "learner_not_ready",
                f"node {node_id} is a learner that has not caught up with the leader{never}: its log matches "
                f"the leader's up to index {match_index}, {short} entr{'y' if short == 1 else 'ies'} short of index {target}; "
                "the leader promotes it on its own once it has caught up",
            )
        members = dict(self.members)
        info = members.get(node_id)
        if info is not None:
            members[node_id] = MemberInfo(info.name, info.address, promote=False, join_id=info.join_id)
        return self._change(set(config.voters) | {node_id}, set(config.learners) - {node_id}, members, self.next_id)

    def learner_to_promote(self, view, caught_up_index: int | None = None) -> int | None:
        """A learner marked for promotion whose log has caught up.

        Caught up means its match index has reached `caught_up_index` (by default the
        commit index).  The leader checks this on its ticks and passes the commit index
        of its previous tick, so that a learner counts as caught up once it trails by
        less than one heartbeat of writes, even under a load that never pauses.
        Promoting only caught-up learners keeps a new voter from stalling commits while
        it downloads the log.
        """
        if not view.is_leader() or view.pending_config_index > view.commit_index:
            return None
        target = caught_up_target(view, caught_up_index)
        for node_id in sorted(view.config.learners):
            info = self.members.get(node_id)
            match_index = view.match_index(node_id)
            if info and info.promote and match_index is not None and match_index >= target:
                return node_id
        return None

    @staticmethod
    def _change(voters, learners, members, next_id) -> ProposeConfig:
        context = encode_context(members, next_id)
        # The tag is filled in when the call reaches the core.
        return ProposeConfig(0, frozenset(voters), frozenset(learners), context)
