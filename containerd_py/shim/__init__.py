"""The per-process shim, a small C program (shim.c) built at install time next
to this file; see containerd_py/tasks/DESIGN.md."""
import os

BINARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "containerd-py-shim")
