"""``swift``: OpenStack Swift (see ``driver``)."""

from drivers.storage.swift.driver import SwiftStorageDriver

__all__ = ["SwiftStorageDriver"]
