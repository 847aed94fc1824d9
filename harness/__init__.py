"""Tools that run the system and look behind its API on purpose: the local PostgreSQL cluster, the
system runner, the databases, the invariant auditor, the bank checker and the bench baseline.

The client (cli/) talks HTTP only, like any client. These modules start processes and read the services'
own databases directly, because an auditor must see what the API would hide. The cli commands that need
them (`up`, `check`, `bench`) import them inside the command, so ordinary commands stay fast; the tests
and scripts/ import them too.
"""
