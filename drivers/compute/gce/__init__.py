"""Google Compute Engine (see ``driver.py``)."""

from drivers.compute.gce.driver import GCENodeDriver

__all__ = ["GCENodeDriver"]
