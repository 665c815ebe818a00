"""Sessions: a small store interface and a manager that adds tickets, sealing and expiry.

- ``store``   the SessionStore protocol (bytes with TTLs, indexes, locks, pub/sub)
- ``memory``  MemoryStore: one process
- ``redis``   RedisStore: standalone, TLS, Sentinel or Cluster (the only redis-py user)
- ``manager`` SessionManager, LoadedSession, SessionSummary
- ``codec``, ``layout``, ``cache``: the stored form, the key layout, the per-instance cache
"""
