"""The ``blsnode`` command groups; each command parses, calls one plain function, and reports."""
