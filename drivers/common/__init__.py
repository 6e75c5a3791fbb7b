"""Pieces shared by every provider driver: values, HTTP transport."""
