"""Forges: the port (ports.py) and one kit per forge, registered in one place."""
