"""Value types shared by several services (mirrors of containerd.types)."""
from dataclasses import dataclass, field


@dataclass
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass
class Mount:
    """One mount(2) call; `target` is relative to where the set is mounted (usually empty)."""

    type: str
    source: str
    options: list[str] = field(default_factory=list)
    target: str = ""


@dataclass
class AnyValue:
    """A protobuf Any kept opaque: the daemon stores what clients send and returns it as is."""

    type_url: str
    value: bytes = b""
