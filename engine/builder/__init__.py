"""Builds (the legacy builder of `POST /build`): the Dockerfile parser, the
variable substitution of its instructions, and the .dockerignore patterns."""
