"""What every command stands on: the config, the session, the HTTP client, errors, inputs and rendering."""
