"""Plain functions behind the administrative commands (the CLI only parses and prints)."""
