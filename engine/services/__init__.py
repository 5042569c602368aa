"""The engine's backend: what the API routes (and tests) call."""
