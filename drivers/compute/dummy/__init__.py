"""The dummy provider: a deterministic, thread-safe cloud that lives in SQLite."""

from drivers.compute.dummy.driver import DummyNodeDriver
from drivers.compute.dummy.faults import DummyFaults

__all__ = ["DummyFaults", "DummyNodeDriver"]
