"""The content store: interface in store.py, blobs on local disk in local.py."""
