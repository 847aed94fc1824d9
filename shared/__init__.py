"""What every service needs: settings, errors, money, JSON, auth, logging, web glue, HTTP client, database."""
