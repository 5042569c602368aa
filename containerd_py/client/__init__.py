"""`containerd-py-ctl`, the command-line client (see cli.py)."""
from .cli import main

__all__ = ["main"]
