"""Outgoing notifications: the port and its HTTP adapter."""
