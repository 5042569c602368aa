"""Applying layers to snapshots (the `walking` differ's Apply half)."""
