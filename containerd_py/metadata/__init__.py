"""Namespaced metadata: namespaces, images and leases (interfaces in store.py, SQLite in sqlite.py)."""
