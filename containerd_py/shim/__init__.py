"""The per-task shim (`python -m containerd_py.shim`); see containerd_py/tasks/DESIGN.md.

It imports only the standard library: one runs per task, for its whole life.
"""
