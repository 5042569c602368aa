"""What every servicer needs of a request: its namespace, and batching of streamed lists."""
from .. import identifiers
from ..convert import NAMESPACE_KEY
from ..rpc import ServicerContext

DEFAULT_NAMESPACE = "default"
BATCH = 100  # items per message of streamed lists, as containerd batches them


def namespace(context: ServicerContext) -> str:
    for key, value in context.invocation_metadata():
        if key == NAMESPACE_KEY:
            identifiers.validate(value)
            return value
    return DEFAULT_NAMESPACE


def batched(items: list, size: int = BATCH):
    for i in range(0, len(items), size):
        yield items[i:i + size]
