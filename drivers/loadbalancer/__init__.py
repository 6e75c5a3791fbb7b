"""Load balancers: the contract (``base``) and its drivers."""
