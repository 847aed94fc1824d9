"""banking-cli: the commands, the interactive shell, the demos and the one-command local run."""
