"""Prometheus metrics: what every process counts, and what ``/metrics`` answers.

Counted where it happens, per process: request latency per route and status
(API), messages consumed, failed and dead-lettered per queue (every
consumer), provider call latency and errors per provider and method
(workers). With ``PROMETHEUS_MULTIPROC_DIR`` set (``[metrics]
multiprocess_dir`` sets it), every process of the host writes its figures
there and a scrape of any API process sums them (prometheus-client's
multiprocess mode, for ``[api] workers`` > 1 and for schedulers and workers
on the same host). What is about the whole deployment is read from the
database at scrape time: nodes by state, the outbox backlog, each account's
catalog age, price refresh failures.

prometheus-client chooses its storage when first imported, so it is imported
here lazily, after :func:`configure`.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from services.common.db.models import Account, Node, Outbox, PriceRefresh, utcnow
from services.common.db.session import SessionFactory, session_scope

if TYPE_CHECKING:
    from prometheus_client import Counter, Histogram

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def configure(multiprocess_dir: str) -> None:
    """Use ``multiprocess_dir`` for this process's figures (before any is counted)."""
    if multiprocess_dir and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        Path(multiprocess_dir).mkdir(parents=True, exist_ok=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = multiprocess_dir


class _Metrics:
    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        self.request_seconds: Histogram = Histogram(
            "overcast_http_request_duration_seconds",
            "API request latency, by route and status.",
            ["route", "method", "status"],
        )
        self.messages_consumed: Counter = Counter(
            "overcast_messages_consumed_total", "Messages handled, by queue.", ["queue"]
        )
        self.messages_failed: Counter = Counter(
            "overcast_messages_failed_total", "Message attempts that failed, by queue.", ["queue"]
        )
        self.messages_dead: Counter = Counter(
            "overcast_messages_dead_lettered_total",
            "Messages given up on and dead-lettered, by queue.",
            ["queue"],
        )
        self.provider_seconds: Histogram = Histogram(
            "overcast_provider_call_duration_seconds",
            "Provider call latency, by provider and method.",
            ["provider", "method"],
        )
        self.provider_errors: Counter = Counter(
            "overcast_provider_call_errors_total",
            "Provider calls that raised, by provider, method and error.",
            ["provider", "method", "error"],
        )


@functools.cache
def current() -> _Metrics:
    """This process's metrics (made on first use)."""
    return _Metrics()


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    current().request_seconds.labels(route, method, str(status)).observe(seconds)


def count_message(queue: str, outcome: str) -> None:
    """``outcome``: ``consumed``, ``failed`` or ``dead``."""
    metrics = current()
    counter = {
        "consumed": metrics.messages_consumed,
        "failed": metrics.messages_failed,
        "dead": metrics.messages_dead,
    }[outcome]
    counter.labels(queue).inc()


def timed_provider_call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``function`` (a driver method, or a partial of one), timing it
    and counting what it raises, by provider and method."""
    provider, method = _describe(function)
    started = time.perf_counter()
    try:
        return function(*args, **kwargs)
    except Exception as error:
        current().provider_errors.labels(provider, method, type(error).__name__).inc()
        raise
    finally:
        current().provider_seconds.labels(provider, method).observe(time.perf_counter() - started)


def _describe(function: Callable[..., Any]) -> tuple[str, str]:
    while isinstance(function, functools.partial):
        function = function.func
    owner = getattr(function, "__self__", None)
    provider = str(getattr(owner, "provider", None) or "unknown")
    return provider, getattr(function, "__name__", "call")


class DeploymentCollector:
    """Figures about the whole deployment, read from the database per scrape."""

    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        nodes = GaugeMetricFamily("overcast_nodes", "Live nodes, by state.", labels=["state"])
        backlog = GaugeMetricFamily("overcast_outbox_backlog", "Messages not yet published.")
        catalog_age = GaugeMetricFamily(
            "overcast_catalog_age_seconds",
            "Seconds since each account's catalog was synced.",
            labels=["account_id", "provider"],
        )
        price_failures = GaugeMetricFamily(
            "overcast_price_refresh_failures",
            "Failed price refreshes in a row, by provider.",
            labels=["provider"],
        )
        now = utcnow()
        with session_scope(self.sessions) as session:
            for state, count in session.execute(
                select(Node.state, func.count())
                .where(Node.deleted_at.is_(None))
                .group_by(Node.state)
            ):
                nodes.add_metric([state], count)
            backlog.add_metric([], session.scalar(select(func.count()).select_from(Outbox)) or 0)
            for account_id, provider, synced in session.execute(
                select(Account.id, Account.provider, Account.catalog_synced_at).where(
                    Account.deleted_at.is_(None)
                )
            ):
                if synced is not None:
                    catalog_age.add_metric([account_id, provider], (now - synced).total_seconds())
            for provider, failures in session.execute(
                select(PriceRefresh.provider, PriceRefresh.consecutive_failures)
            ):
                price_failures.add_metric([provider], failures)
        yield from (nodes, backlog, catalog_age, price_failures)


def exposition(sessions: SessionFactory) -> bytes:
    """The text a scrape gets: this host's processes' figures (all of them in
    multiprocess mode, else this process's) and the deployment's."""
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess

    current()  # every series is declared, even before its first event
    deployment = CollectorRegistry()
    deployment.register(DeploymentCollector(sessions))
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        processes = CollectorRegistry()
        multiprocess.MultiProcessCollector(processes)  # type: ignore[no-untyped-call]
    else:
        processes = REGISTRY
    return generate_latest(processes) + generate_latest(deployment)


def process_exited(pid: int) -> None:
    """Drop a dead process's live-only figures (multiprocess mode)."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
