"""The demo's nodes as child processes, which it starts, stops, kills and restarts.

Theory of operation: each member is one port and one data dir, `./abcd-data/node-<port>`,
for the whole run; what changes is the process on it.  A watcher task per process waits
for its exit and records what it was: `stopped` (SIGTERM from the supervisor), `killed`
(SIGKILL from the supervisor) or `exited` (nobody here asked: it crashed, or someone
else signalled it).  A member that is not running stays in the table and can be started
again on the same port and data dir, where it resumes as the same node.  Only the
supervisor's own calls end a node; nothing a node answers does.
"""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field

import aiohttp

DATA_ROOT = "abcd-data"
# Slow mode: a heartbeat every half second and elections after 5-10 s, so that a person
# can follow one election on the dashboard (the defaults are 100 ms and 1-2 s).
SLOW_HEARTBEAT_MS = 500
SLOW_ELECTION_TIMEOUT_MS = 5000
STOP_GRACE_SECONDS = 10.0  # SIGTERM lets a node flush and fsync; after this, SIGKILL

RUNNING, STOPPED, KILLED, EXITED = "running", "stopped", "killed", "exited"


class DemoError(Exception):
    """A control request that cannot be done: the API answers `status` with `code`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _signal(process: asyncio.subprocess.Process, signum: int) -> None:
    try:
        process.send_signal(signum)
    except ProcessLookupError:
        pass  # it has just exited; its watcher records how


@dataclass
class Member:
    port: int
    command: list[str]  # without the timers of slow mode, which are added at each start
    data_dir: str
    slow: bool = False  # whether the running process (or the last one) has slow mode's timers
    process: asyncio.subprocess.Process | None = None
    state: str = STOPPED  # a member not started yet counts as stopped
    since: float = field(default_factory=time.time)  # wall-clock seconds of the last change of state
    exit_code: int | None = None
    # What the supervisor is doing to the running process, so that its exit is named
    # for the request that caused it (None: an exit nobody here asked for).
    ending: str | None = None
    watcher: asyncio.Task | None = None
    starting: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def running(self) -> bool:
        return self.state == RUNNING

    def describe(self) -> dict:
        return {
            "port": self.port,
            "address": f"127.0.0.1:{self.port}",
            "name": f"node-{self.port}",
            "data_dir": os.path.abspath(self.data_dir),
            "pid": self.process.pid if self.running and self.process else None,
            "state": self.state,
            "since": self.since,
            "exit_code": self.exit_code,
            "slow": self.slow,
        }


class Supervisor:
    def __init__(
        self, ports: list[int], *, log_level: str, slow: bool, allow_origin: str | None, report=None, tls=None
    ) -> None:
        self.ports = ports
        # demo.tls.DemoTls with --tls: the nodes get its files, health checks use https.
        self.tls = tls
        self.slow = slow
        self.report = report or (lambda line: print(line, file=sys.stderr, flush=True))
        self.shutting_down = False
        self.switching = asyncio.Lock()  # one change of slow mode at a time
        self.extra = ["--enable-faults", "--log-level", log_level]
        if allow_origin:
            self.extra += ["--allow-origin", allow_origin]  # lets the dashboard's page call the nodes
        self.adding = asyncio.Lock()  # one new member at a time
        if tls is not None:
            self.extra += tls.node_args()
        first = f"127.0.0.1:{ports[0]}"
        self.members: dict[int, Member] = {}
        for i, port in enumerate(ports):
            # --join is ignored by a node that resumes from its data dir.
            self.members[port] = self._member(port, join=first if i else None)
        # Members added from the dashboard in an earlier run: they resume too, once the
        # others are up (a member removed since then finds out and exits on its own).
        self.added_before = [port for port in _data_dir_ports() if port not in self.members]
        for port in self.added_before:
            self.members[port] = self._member(port, join=None)

    def _member(self, port: int, *, join: str | None) -> Member:
        data_dir = os.path.join(DATA_ROOT, f"node-{port}")
        command = [sys.executable, "-m", "abcd", str(port), "--data-dir", data_dir, *self.extra]
        if join:
            command += ["--join", join]
        return Member(port, command, data_dir)

    @property
    def resuming(self) -> bool:
        """A demo ran here before: the first node's data dir holds a node."""
        return os.path.exists(os.path.join(self.members[self.ports[0]].data_dir, "meta.json"))

    def describe(self) -> dict:
        return {"members": [m.describe() for m in self.members.values()], "slow": self.slow}

    def member(self, port: int) -> Member:
        try:
            return self.members[port]
        except KeyError:
            known = ", ".join(str(p) for p in self.ports)
            raise DemoError(404, "member_not_found", f"no demo member on port {port}; the members are on {known}") from None

    # -- one member ----------------------------------------------------------------

    async def start(self, port: int) -> dict:
        member = self.member(port)
        # Shielded: a caller cancelled mid-way (Ctrl-C during start-up) still leaves a
        # started process recorded, so that stop_all ends it.
        await asyncio.shield(self._start(member))
        return member.describe()

    async def _start(self, member: Member) -> None:
        port = member.port
        async with member.starting:  # two restarts at once start one process
            if member.running:
                raise DemoError(409, "already_running", f"the node on port {port} is running (pid {member.process.pid}); stop or kill it first")
            if self.shutting_down:
                raise DemoError(409, "shutting_down", "the demo is stopping its nodes")
            # The node gets its own session: a terminal's Ctrl-C reaches the demo alone,
            # which then stops every node itself (stop_all).
            slow = ["--heartbeat-ms", str(SLOW_HEARTBEAT_MS), "--election-timeout-ms", str(SLOW_ELECTION_TIMEOUT_MS)]
            member.slow = self.slow
            member.process = await asyncio.create_subprocess_exec(
                *member.command, *(slow if self.slow else ()), stdin=asyncio.subprocess.DEVNULL, start_new_session=True
            )
            member.state, member.since, member.exit_code, member.ending = RUNNING, time.time(), None, None
            member.watcher = asyncio.ensure_future(self._watch(member, member.process))

    async def add(self) -> dict:
        """A new member: a node on the next free port joins through a running member.

        It joins as a learner, and the leader promotes it to voter once its log has
        caught up (what `--join` asks for): the page shows both steps.
        """
        async with self.adding:
            if self.shutting_down:
                raise DemoError(409, "shutting_down", "the demo is stopping its nodes")
            through = next((m for m in self.members.values() if m.running), None)
            if through is None:
                raise DemoError(409, "no_member_running", "no member is running to join through; restart one first")
            port = _free_port_after(max(self.members))
            if port is None:
                raise DemoError(503, "no_free_port", f"no free port above {max(self.members)} for a new member")
            member = self._member(port, join=f"127.0.0.1:{through.port}")
            self.members[port] = member
            await asyncio.shield(self._start(member))
            return member.describe()

    async def stop(self, port: int) -> dict:
        """SIGTERM: the node flushes, fsyncs and exits; SIGKILL if it has not after the grace period."""
        member = self._running(port, "stop")
        await self._end(member, STOPPED, signal.SIGTERM, STOP_GRACE_SECONDS)
        return member.describe()

    async def kill(self, port: int) -> dict:
        """SIGKILL: the node dies at once, as in a crash or a power cut (kill -9)."""
        member = self._running(port, "kill")
        await self._end(member, KILLED, signal.SIGKILL, STOP_GRACE_SECONDS)
        return member.describe()

    def _running(self, port: int, action: str) -> Member:
        member = self.member(port)
        if not member.running:
            raise DemoError(409, "not_running", f"cannot {action} the node on port {port}: it is {member.state}")
        return member

    async def _end(self, member: Member, ending: str, signum: int, grace: float) -> None:
        # A kill during a stop wins: the exit is then recorded as killed.
        if member.ending != KILLED:
            member.ending = ending
        _signal(member.process, signum)
        watcher = member.watcher
        try:
            await asyncio.wait_for(asyncio.shield(watcher), grace)
        except asyncio.TimeoutError:
            self.report(f"abcd demo: node on port {member.port} did not stop within {grace:.0f} s; killing it")
            member.ending = KILLED
            _signal(member.process, signal.SIGKILL)
            await asyncio.shield(watcher)

    async def _watch(self, member: Member, process: asyncio.subprocess.Process) -> None:
        code = await process.wait()
        member.state = member.ending or EXITED
        member.since, member.exit_code, member.ending = time.time(), code, None
        if member.state == EXITED and not self.shutting_down:
            self.report(
                f"abcd demo: node on port {member.port} exited with code {code}; "
                f"the dashboard (or POST /demo/members/{member.port}/restart) starts it again"
            )

    # -- the whole cluster ---------------------------------------------------------

    async def set_slow(self, slow: bool) -> dict:
        """Slow mode on or off: restart the running members one at a time with the new timers.

        One at a time, each healthy again before the next stops, so that a majority stays
        up and the cluster keeps serving (a leader hands its leadership over as it stops).
        A member that is not running gets the new timers when it is started again.
        """
        async with self.switching:
            self.slow = slow
            for member in list(self.members.values()):
                if member.running and member.slow != slow:
                    await self.stop(member.port)
                    await self.start(member.port)
                    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as http:
                        if not await self._wait_healthy(http, member.port, 60.0):
                            raise DemoError(
                                503, "unavailable",
                                f"the node on port {member.port} is not healthy after its restart; "
                                "the members not restarted yet keep their timers",
                            )
        return self.describe()

    async def start_all(self) -> bool:
        """Start every node; True once all are healthy, False if one could not become so.

        A new cluster: node 1 bootstraps and must be healthy before the others join
        through it.  A resumed one: all nodes start at once, those added from the
        dashboard in an earlier run too, since a resumed member can only become healthy
        once a majority of its cluster is back.
        """
        timeout = 60.0 if self.slow else 30.0
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as http:
            if self.resuming:
                for port in [*self.ports, *self.added_before]:
                    if not self.members[port].running:
                        await self.start(port)
                waiting_for = self.ports
            else:
                waiting_for = []
                for port in self.ports:
                    if not self.members[port].running:
                        await self.start(port)
                    if not await self._wait_healthy(http, port, timeout):
                        self.report(f"abcd demo: node on port {port} did not become healthy; stopping")
                        return False
            for port in waiting_for:
                if not await self._wait_healthy(http, port, timeout):
                    self.report(f"abcd demo: node on port {port} did not become healthy; stopping")
                    return False
        return True

    async def _wait_healthy(self, http: aiohttp.ClientSession, port: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                scheme, ssl = ("https", self.tls.client_context()) if self.tls is not None else ("http", True)
                async with http.get(f"{scheme}://127.0.0.1:{port}/healthz", ssl=ssl) as reply:
                    if reply.status == 200:
                        return True
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            if not self.members[port].running:
                return False  # it could not start (port taken, bad data dir...), or was stopped
            await asyncio.sleep(0.1)
        return False

    async def stop_all(self) -> None:
        """SIGTERM to every running node at once, wait for them, SIGKILL any still there after the grace period."""
        self.shutting_down = True
        for member in self.members.values():
            async with member.starting:  # a process being started is ended too
                pass
        running = [m for m in self.members.values() if m.running]
        for member in running:
            member.ending = STOPPED
            _signal(member.process, signal.SIGTERM)
        watchers = [m.watcher for m in running]
        if not watchers:
            return
        await asyncio.wait([asyncio.shield(w) for w in watchers], timeout=STOP_GRACE_SECONDS)
        for member in running:
            if member.running:
                self.report(f"abcd demo: node on port {member.port} did not stop within {STOP_GRACE_SECONDS:.0f} s; killing it")
                member.ending = KILLED
                _signal(member.process, signal.SIGKILL)
        await asyncio.gather(*watchers)


def _data_dir_ports() -> list[int]:
    """The ports of the nodes that ran here before: ./abcd-data/node-<port>/meta.json."""
    try:
        names = os.listdir(DATA_ROOT)
    except OSError:
        return []
    ports = []
    for name in names:
        head, _, number = name.partition("-")
        if head == "node" and number.isdigit() and os.path.exists(os.path.join(DATA_ROOT, name, "meta.json")):
            ports.append(int(number))
    return sorted(ports)


def _free_port_after(port: int) -> int | None:
    """The first port above `port` that nothing listens on (checked by binding it)."""
    for candidate in range(port + 1, min(port + 100, 65536)):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return candidate
    return None
