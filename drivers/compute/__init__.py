"""Compute drivers: one small API over many providers' nodes."""
