"""The banking-cli commands that cli.main gathers, each a thin typer function over cli.core."""
