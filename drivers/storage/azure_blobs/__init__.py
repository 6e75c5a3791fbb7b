"""``azure_blobs``: Azure Blob Storage (see ``driver``)."""

from drivers.storage.azure_blobs.auth import DEVELOPMENT_ACCOUNT, development_secret
from drivers.storage.azure_blobs.driver import AzureBlobsStorageDriver

__all__ = ["DEVELOPMENT_ACCOUNT", "AzureBlobsStorageDriver", "development_secret"]
