"""Neural networks of the framework, one per module, each with a frozen config dataclass."""
