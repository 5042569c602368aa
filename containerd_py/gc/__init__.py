"""Garbage collection with containerd's rules: collector.py marks and sweeps, scheduler.py decides when."""
