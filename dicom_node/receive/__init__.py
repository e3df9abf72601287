"""Receiving: the C-STORE listener, header checks, the durable spool, booking and crash recovery."""
