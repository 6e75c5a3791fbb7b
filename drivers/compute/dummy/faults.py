"""Fault injection for the dummy provider: what to get wrong, and how often."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from drivers.errors import AuthError, ProviderError, RateLimited

PROVIDER = "dummy"


@dataclass(frozen=True)
class DummyFaults:
    """What the dummy provider should get wrong, and how often.

    Rates are probabilities per call, drawn from a generator seeded with
    ``seed`` so that runs repeat.
    """

    capacity_locations: frozenset[str] = frozenset()
    quota_exceeded: bool = False
    transient_error_rate: float = 0.0
    timeout_rate: float = 0.0
    rate_limit_rate: float = 0.0
    retry_after: float = 0.05
    latency: float = 0.0
    #: Seconds ``create_node`` takes to answer *after* it created the node (a slow answer).
    answer_delay: float = 0.0
    reject_auth: bool = False
    seed: int = 0
    #: Which calls the rates, latency and auth faults hit (empty: every call).
    operations: frozenset[str] = frozenset()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> DummyFaults:
        """Build from JSON-ish options (lists become frozensets)."""
        values = dict(data)
        for name in ("capacity_locations", "operations"):
            if name in values:
                values[name] = frozenset(values[name])
        return cls(**values)


class FaultInjector:
    """Draws the fault of each call from a generator seeded with ``faults.seed``."""

    def __init__(self, faults: DummyFaults) -> None:
        self.faults = faults
        self._random = random.Random(faults.seed)
        self._lock = threading.Lock()
        #: Calls started, by operation (so tests can wait for a call to be under way).
        self.started: Counter[str] = Counter()

    def inject(self, operation: str, acts: bool = False) -> bool:
        """Raise the fault drawn for this call. For a call that ``acts`` (creates
        something), a timeout is returned instead: the caller does the work and
        then times out, like a real provider whose answer was lost."""
        faults = self.faults
        with self._lock:
            self.started[operation] += 1
        if faults.operations and operation not in faults.operations:
            return False
        if faults.latency:
            time.sleep(faults.latency)  # a slow provider is the fault being simulated
        if faults.reject_auth:
            raise AuthError("invalid credentials", provider=PROVIDER)
        with self._lock:
            draw = self._random.random()
        if draw < faults.transient_error_rate:
            raise ProviderError(
                f"{operation}: internal error (injected)",
                transient=True,
                status=503,
                provider=PROVIDER,
            )
        draw -= faults.transient_error_rate
        if draw < faults.timeout_rate:
            if acts:
                return True
            raise timeout_error(operation)
        draw -= faults.timeout_rate
        if draw < faults.rate_limit_rate:
            raise RateLimited(
                f"{operation}: slow down (injected)",
                retry_after=faults.retry_after,
                provider=PROVIDER,
            )
        return False


def timeout_error(operation: str) -> ProviderError:
    return ProviderError(f"{operation}: timed out (injected)", transient=True, provider=PROVIDER)
