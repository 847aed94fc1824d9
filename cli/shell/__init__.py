"""`banking-cli interactive`: the prompt, its menu, Tab completion, line editing and live notifications."""
