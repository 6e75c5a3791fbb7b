"""``gcs``: Google Cloud Storage (see ``driver``)."""

from drivers.storage.gcs.driver import GCSStorageDriver
from drivers.storage.gcs.signing import signed_url

__all__ = ["GCSStorageDriver", "signed_url"]
