"""Errors a user of the runtime sees; each CLI verb prints the message and exits 1."""


class RuntimeFailure(Exception):
    """Any error that ends a runtime command with exit status 1."""


class ConfigError(RuntimeFailure):
    """config.json is malformed or invalid; the message starts with the JSON path."""


class ContainerNotFound(RuntimeFailure):
    def __init__(self, container_id=None):
        super().__init__("container does not exist")
        self.container_id = container_id


class ContainerExists(RuntimeFailure):
    def __init__(self):
        super().__init__("container with given ID already exists")


class HookFailure(RuntimeFailure):
    """A hook of create or start failed: the container is stopped and poststop runs."""


class WrongState(RuntimeFailure):
    """The verb does not apply to the container's current status."""
