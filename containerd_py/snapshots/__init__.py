"""Snapshotters: interface in snapshotter.py, `overlayfs` and `native` implementations."""
