"""OpenStack (Keystone v3, Nova v2.1, Glance v2, Cinder v3) over requests."""

from drivers.compute.openstack.driver import OpenStackNodeDriver

__all__ = ["OpenStackNodeDriver"]
