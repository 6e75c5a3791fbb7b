"""Azure virtual machines over Azure Resource Manager (see ``driver.py``)."""

from drivers.compute.azure.driver import AzureNodeDriver

__all__ = ["AzureNodeDriver"]
