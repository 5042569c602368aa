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


@dataclass
class ProcessState:
    """A task's init (id "") or exec'd process as the tasks service reports it."""

    container_id: str
    id: str
    pid: int
    status: str  # created, running, stopped, paused, pausing or unknown
    exit_status: int = 0
    exited_at: int = 0  # nanoseconds since the epoch
    stdin: str = ""
    stdout: str = ""
    stderr: str = ""
    terminal: bool = False


@dataclass
class Stdio:
    """Where a process's streams go: paths the daemon opens (FIFOs, usually), "" for none."""

    stdin: str = ""
    stdout: str = ""
    stderr: str = ""
    terminal: bool = False


@dataclass
class Envelope:
    """An event as the exchange carries it."""

    timestamp: int  # nanoseconds since the epoch
    namespace: str
    topic: str
    event: AnyValue
