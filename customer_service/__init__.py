"""customer_service: customers, their logins, and the tokens every service trusts."""
