"""Training of the front end's two networks: the MCP localiser and the bone segmenter."""
