"""gRPC servicers: thin adapters from containerd's API onto the stores."""
