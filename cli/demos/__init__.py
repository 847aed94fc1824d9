"""`banking-cli demo`: why the two-phase commit matters, shown live against the running services over HTTP."""
