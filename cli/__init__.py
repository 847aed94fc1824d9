"""banking-cli, the client: commands, the interactive shell, the demos and the bench's load generator, over HTTP."""
