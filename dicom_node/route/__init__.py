"""Routing: which received instances qualify for processing."""
