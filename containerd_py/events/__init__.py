"""Events: the in-process exchange that services publish to and clients subscribe to."""
