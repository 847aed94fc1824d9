"""Push: protocol events from the coordinator log to WebSocket clients, across replicas.

    transaction_events INSERT --trigger--> NOTIFY transaction_events (on commit, migration 0004)
        --> listener.py: one LISTEN connection per process, reconnecting with bounded backoff
        --> notices.py: the payload parsed and routed (pure)
        --> hub.py: each subscriber's bounded send queue (a slow consumer is closed, 4008)
        --> socket.py: GET /ws, authenticated in-band, closed at the token's exp or on revocation

Push is a notification, not the record: a client that reconnects (or hears `resync`) re-reads state
over HTTP. Close codes are in socket.py.
"""
