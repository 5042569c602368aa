"""containerd_py: a containerd-compatible daemon speaking containerd's v1 gRPC API."""

__version__ = "0.1.0"
