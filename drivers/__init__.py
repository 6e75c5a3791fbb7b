"""Overcast's provider library: one small API over many clouds.

>>> from drivers import get_driver, DriverType, Provider
>>> driver = get_driver(DriverType.COMPUTE, Provider.DUMMY)()
>>> driver.list_sizes()[0].ram_mb
512

Drivers are imported lazily, on first use. Third-party packages add drivers
through the entry-point groups ``overcast.drivers.compute`` (and
``overcast.drivers.storage`` / ``overcast.drivers.loadbalancer``), with the
provider name as the entry point's name.
"""

from __future__ import annotations

import enum
import importlib
import threading
from importlib.metadata import entry_points
from typing import Any

__all__ = [
    "DriverType",
    "Provider",
    "account_driver",
    "get_driver",
    "providers",
    "register_driver",
]


class DriverType(enum.Enum):
    COMPUTE = "compute"
    STORAGE = "storage"
    LOADBALANCER = "loadbalancer"


class Provider(enum.StrEnum):
    """Built-in providers. Any other name may come from an entry point."""

    DUMMY = "dummy"
    LOCAL = "local"
    EC2 = "ec2"
    OPENSTACK = "openstack"

    def __str__(self) -> str:
        return self.value


_BUILTIN: dict[tuple[DriverType, str], str] = {
    (DriverType.COMPUTE, "dummy"): "drivers.compute.dummy:DummyNodeDriver",
    (DriverType.COMPUTE, "local"): "drivers.compute.local:LocalNodeDriver",
    (DriverType.COMPUTE, "ec2"): "drivers.compute.ec2:EC2NodeDriver",
    (DriverType.COMPUTE, "openstack"): "drivers.compute.openstack:OpenStackNodeDriver",
    (DriverType.COMPUTE, "libvirt"): "drivers.compute.libvirt_domains:LibvirtNodeDriver",
    (DriverType.COMPUTE, "gce"): "drivers.compute.gce:GCENodeDriver",
    (DriverType.COMPUTE, "azure"): "drivers.compute.azure:AzureNodeDriver",
    (DriverType.STORAGE, "local"): "drivers.storage.local:LocalStorageDriver",
    (DriverType.STORAGE, "s3"): "drivers.storage.s3:S3StorageDriver",
    (DriverType.STORAGE, "azure_blobs"): "drivers.storage.azure_blobs:AzureBlobsStorageDriver",
    (DriverType.STORAGE, "gcs"): "drivers.storage.gcs:GCSStorageDriver",
    (DriverType.STORAGE, "swift"): "drivers.storage.swift:SwiftStorageDriver",
    (DriverType.LOADBALANCER, "haproxy"): "drivers.loadbalancer.haproxy:HAProxyLoadBalancerDriver",
    (DriverType.LOADBALANCER, "alb"): "drivers.loadbalancer.alb:ALBLoadBalancerDriver",
    (DriverType.LOADBALANCER, "elb"): "drivers.loadbalancer.elb:ELBLoadBalancerDriver",
    (DriverType.LOADBALANCER, "gce"): "drivers.loadbalancer.gce:GCELoadBalancerDriver",
}

#: Drivers an account of one provider also serves under another name: the
#: credentials of an AWS (``ec2``) account also give S3 containers.
_SERVED_AS: dict[tuple[str, DriverType], str] = {
    ("ec2", DriverType.STORAGE): "s3",
    ("openstack", DriverType.STORAGE): "swift",
    ("ec2", DriverType.LOADBALANCER): "alb",
}

_lock = threading.Lock()
_registered: dict[tuple[DriverType, str], Any] = {}


def register_driver(driver_type: DriverType, provider: str, target: Any) -> None:
    """Register a driver class, or a ``"module:Class"`` path to import lazily."""
    with _lock:
        _registered[(driver_type, str(provider))] = target


def providers(driver_type: DriverType) -> list[str]:
    """Names of every provider known for ``driver_type``."""
    names = {name for (kind, name) in (*_BUILTIN, *_registered) if kind is driver_type}
    names.update(ep.name for ep in entry_points(group=f"overcast.drivers.{driver_type.value}"))
    return sorted(names)


def account_driver(provider: str, driver_type: DriverType) -> str | None:
    """The provider name of the ``driver_type`` driver that an account of
    ``provider`` serves, or None when it serves no such kind."""
    name = _SERVED_AS.get((str(provider), driver_type), str(provider))
    return name if name in providers(driver_type) else None


def get_driver(driver_type: DriverType, provider: str) -> Any:
    """Return the driver class for ``provider``; raises ``LookupError``."""
    key = (driver_type, str(provider))
    with _lock:
        target = _registered.get(key) or _BUILTIN.get(key)
    if target is None:
        group = f"overcast.drivers.{driver_type.value}"
        for entry_point in entry_points(group=group, name=str(provider)):
            target = entry_point.load()
            break
    if target is None:
        raise LookupError(f"no {driver_type.value} driver for provider {provider!r}")
    if isinstance(target, str):
        module_name, _, attribute = target.partition(":")
        target = getattr(importlib.import_module(module_name), attribute)
        register_driver(driver_type, str(provider), target)
    return target
