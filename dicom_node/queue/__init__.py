"""Queueing: the broker connection and the publisher that hands job and dispatch ids to it."""
