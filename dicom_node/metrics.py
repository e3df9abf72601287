"""Prometheus metrics of one node process, in a registry of its own (no global state)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)


class StatusCollector(Collector):
    """Turns a ``node_status`` snapshot into gauges at scrape time."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        status = self.snapshot()
        yield GaugeMetricFamily("blsnode_instances", "Instances stored.", value=status["instances"])
        for name, key, help_text in (
            ("blsnode_jobs", "jobs", "Processing jobs by state."),
            ("blsnode_dispatches", "dispatches", "Dispatches to destinations by state."),
        ):
            family = GaugeMetricFamily(name, help_text, labels=["state"])
            for state, count in status[key].items():
                family.add_metric([state], count)
            yield family
        yield GaugeMetricFamily(
            "blsnode_disk_free_bytes", "Free bytes on the spool's file system.",
            value=status["disk_free_bytes"],
        )  # fmt: skip
        depths = GaugeMetricFamily("blsnode_queue_depth", "Messages waiting.", labels=["queue"])
        for queue, depth in (status["queues"] or {}).items():
            depths.add_metric([queue], depth)
        yield depths
        yield GaugeMetricFamily(
            "blsnode_broker_up",
            "1 if the broker answered.",
            value=int(status["broker"]["reachable"]),
        )


class NodeMetrics:
    """The counters the listener and the publisher update."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.stores = Counter(
            "blsnode_cstore",
            "C-STORE requests answered, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.received_bytes = Counter(
            "blsnode_received_bytes", "Bytes of data sets stored.", registry=self.registry
        )
        self.store_seconds = Histogram(
            "blsnode_cstore_seconds",
            "Time from a complete C-STORE request to its response.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.echoes = Counter("blsnode_cecho", "C-ECHO requests answered.", registry=self.registry)
        self.associations = Counter(
            "blsnode_associations",
            "Association requests, by result.",
            ["result"],
            registry=self.registry,
        )
        self.active_associations = Gauge(
            "blsnode_associations_active", "Associations open now.", registry=self.registry
        )
        self.published = Counter(
            "blsnode_published", "Ids published to the broker.", ["kind"], registry=self.registry
        )
        self.worker_restarts = Counter(
            "blsnode_worker_restarts",
            "Times the embedded worker exited unasked and was started again.",
            registry=self.registry,
        )
        self.publish_failures = Counter(
            "blsnode_publish_failures",
            "Ids that could not be published (left for the sweeper).",
            registry=self.registry,
        )

    def watch_status(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        """Expose the bookkeeping counts, taken fresh at every scrape."""
        self.registry.register(StatusCollector(snapshot))
