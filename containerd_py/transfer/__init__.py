"""Pull, push, import and export of images over a Backend: the daemon's own
stores, or a daemon's over gRPC (what containerd-py-ctl uses, as ctr does)."""
