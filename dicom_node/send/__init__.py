"""Sending: destinations, the C-STORE SCU and the dispatch of results."""
