"""Talking to image registries: the distribution API, authentication, per-host settings."""
