"""Namespaced metadata: namespaces, images and leases (interfaces in store.py, SQLite in sqlite.py), and
containers (the interface in containerd_py/containers.py, SQLite in sqlite_containers.py)."""
