"""Prometheus metrics of a node, read from its live state at scrape time.

Nothing is updated per request: the collector reads the core's indexes and the
counters the pipeline's parts keep anyway.  Each node has its own registry, so
several nodes can live in one process (tests).
"""
from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from . import gcwatch

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class NodeCollector:
    def __init__(self, node) -> None:
        self._node = node

    def collect(self):
        node = self._node
        view = node.view
        # The log's bounds are no soft state: asked of the core's public status, per scrape.
        core_status = node.core.status()
        stats = node.stats
        labels = {"node": node.config.name}
        names = list(labels)
        values = list(labels.values())

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            g = GaugeMetricFamily(name, doc, labels=names)
            g.add_metric(values, value)
            return g

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            c = CounterMetricFamily(name, doc, labels=names)
            c.add_metric(values, value)
            return c

        yield gauge("abcd_term", "The node's current Raft term.", view.current_term)
        yield gauge("abcd_commit_index", "The highest log index known committed.", view.commit_index)
        yield gauge("abcd_applied_index", "The highest log index applied to the state machine.", node.store.applied_index)
        yield gauge("abcd_last_log_index", "The index of the last entry in the log.", core_status["last_log_index"])
        yield gauge("abcd_is_leader", "1 if this node is the leader.", 1 if view.is_leader() else 0)
        yield gauge("abcd_members", "Members in the configuration (voters and learners).", len(view.config.members))
        yield gauge("abcd_requests_waiting", "Client requests waiting for commit or a read index.", node.requests.waiting)
        # All of the loop's tasks (sessions, watches, links, timers): a number that keeps
        # growing under a steady load is a leak.  Counting them walks a weak set, at scrape time only.
        yield gauge("abcd_asyncio_tasks", "asyncio tasks alive in the node's event loop.", len(asyncio.all_tasks(node.loop)))
        yield gauge("abcd_kv_keys", "Live keys in the store.", len(node.store))
        yield gauge("abcd_kv_revision", "The store's revision.", node.store.current_revision)
        yield counter("abcd_proposals", "Proposals (batches of client writes) made to the core.", node.requests.proposals)
        yield counter("abcd_proposed_commands", "Client writes proposed.", node.requests.commands_proposed)
        yield counter("abcd_entries_applied", "Log entries applied (commits seen by this node).", node.applier.entries_applied)
        yield counter("abcd_elections", "Elections this node started (became candidate).", stats.elections)
        yield counter("abcd_leader_changes", "Times this node became leader.", stats.became_leader)
        yield counter("abcd_batches", "Batches stepped through the Raft core.", node.pipeline.batches)
        yield counter("abcd_events", "Events stepped through the Raft core.", node.pipeline.events)
        yield counter("abcd_wal_fsyncs", "WAL fsyncs (group commits).", node.wal_sink.fsyncs)
        yield counter("abcd_wal_fsync_seconds", "Time spent in WAL fsyncs.", node.wal_sink.fsync_seconds)
        yield counter("abcd_wal_records", "Persist effects written to the WAL.", node.wal_sink.records_written)
        yield counter("abcd_forwarded", "Requests forwarded to the leader.", node.forwarder.forwarded)
        yield counter("abcd_messages_sent", "Raft messages handed to the transport.", node.outbound.messages_sent)
        snaps = node.snapshots
        yield gauge("abcd_snapshot_index", "The index the in-memory log starts after (its snapshot).", core_status["snapshot_index"])
        yield gauge("abcd_newest_snapshot_index", "The index of the newest snapshot this node holds.", snaps.newest_index)
        yield counter("abcd_snapshots_taken", "Snapshots of the state machine taken by this node.", snaps.taken)
        yield counter("abcd_snapshot_seconds", "Time spent taking snapshots (capture, encoding, saving).", snaps.take_seconds)
        yield counter("abcd_snapshot_failures", "Snapshots this node failed to take.", snaps.failures)
        yield counter("abcd_snapshots_sent", "Snapshots sent to followers (InstallSnapshot).", snaps.sent)
        yield counter("abcd_snapshots_installed", "Snapshots from the leader installed (durable).", snaps.installed)
        yield counter("abcd_snapshots_refused", "Snapshots from the leader refused as malformed.", snaps.refused)
        watch = gcwatch.installed()
        if watch is not None:  # process-wide: `python -m abcd` installs it
            by_generation = names + ["generation"]
            collections = CounterMetricFamily(
                "abcd_gc_collections", "Garbage collections in the node's process, by generation.", labels=by_generation
            )
            pauses = CounterMetricFamily(
                "abcd_gc_pause_seconds",
                "Time the node's process stood still for garbage collections, by generation.",
                labels=by_generation,
            )
            for generation in range(gcwatch.GENERATIONS):
                collections.add_metric(values + [str(generation)], watch.collections[generation])
                pauses.add_metric(values + [str(generation)], watch.pause_seconds[generation])
            yield collections
            yield pauses
            yield gauge(
                "abcd_gc_longest_pause_seconds", "The longest garbage-collection pause so far.", watch.longest_seconds
            )


def make_registry(node) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(node))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
